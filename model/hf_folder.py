"""Read a Hugging Face model folder (config.json + *.safetensors) of the GPT-2 or Llama family.

Pickle checkpoints (pytorch_model.bin, *.pt, ...) are refused without being opened:
unpickling runs whatever code the file carries.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from .config import ModelConfig
from .errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SUPPORTED = ("gpt2", "llama")


def refuse_pickle(path: Path) -> None:
    raise UserError(f"{path} is a pickle checkpoint, which can run code when loaded; it is refused. Convert it to safetensors first.")


def read_config(folder: Path) -> ModelConfig:
    try:
        c = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder} has no config.json (a Hugging Face model folder needs one)") from None
    except ValueError as e:
        raise UserError(f"{folder / 'config.json'} is not valid JSON: {e}") from None
    kind = c.get("model_type")
    if kind not in SUPPORTED:
        raise UserError(f"model architecture {kind!r} in {folder} is not supported (supported: {', '.join(SUPPORTED)})")
    try:
        cfg = gpt2_config(folder.name, c) if kind == "gpt2" else llama_config(folder.name, c)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{folder / 'config.json'} lacks or garbles a needed field: {e}") from None
    cfg.validate()
    return cfg


def gpt2_config(name: str, c: dict) -> ModelConfig:
    d = int(c["n_embd"])
    return ModelConfig(
        name=name, family="gpt2", n_layers=int(c["n_layer"]), d_model=d,
        n_heads=int(c["n_head"]), n_kv_heads=int(c["n_head"]), d_head=d // int(c["n_head"]),
        d_mlp=int(c.get("n_inner") or 4 * d), vocab_size=int(c["vocab_size"]), n_ctx=int(c["n_positions"]),
        norm_eps=float(c.get("layer_norm_epsilon", 1e-5)), activation=c.get("activation_function", "gelu_new"),
        tied_embeddings=bool(c.get("tie_word_embeddings", True)),
    )


def llama_config(name: str, c: dict) -> ModelConfig:
    if c.get("hidden_act", "silu") != "silu":
        raise UserError(f"Llama activation {c['hidden_act']!r} is not supported (silu only)")
    rope = c.get("rope_scaling") or {}
    params = c.get("rope_parameters") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default" or params.get("rope_type", "default") != "default":
        raise UserError("rope scaling is not supported (plain RoPE only)")
    if c.get("attention_bias") or c.get("mlp_bias"):
        raise UserError("Llama models with attention or MLP biases are not supported")
    d, heads = int(c["hidden_size"]), int(c["num_attention_heads"])
    return ModelConfig(
        name=name, family="llama", n_layers=int(c["num_hidden_layers"]), d_model=d,
        n_heads=heads, n_kv_heads=int(c.get("num_key_value_heads") or heads),
        d_head=int(c.get("head_dim") or d // heads), d_mlp=int(c["intermediate_size"]),
        vocab_size=int(c["vocab_size"]), n_ctx=int(c.get("max_position_embeddings", 2048)),
        norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        rope_base=float(params.get("rope_theta", c.get("rope_theta", 10000.0))),
        activation="silu", tied_embeddings=bool(c.get("tie_word_embeddings", False)),
    )


def safetensors_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = [p for p in sorted(folder.iterdir()) if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            refuse_pickle(pickles[0])
        raise UserError(f"{folder} has no *.safetensors weights")
    return files


def read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in safetensors_files(folder):
        try:
            with safe_open(path, framework="pt") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key).float()
        except Exception as e:  # safetensors validates the header and every offset against the file size
            raise UserError(f"{path} is not a valid safetensors file ({str(e)[:160]})") from None
    return tensors


def take(tensors: dict[str, torch.Tensor], name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One checkpoint tensor, checked against the shape the config implies."""
    for key in (name, "transformer." + name, "model." + name):
        if key in tensors:
            t = tensors[key]
            if tuple(t.shape) != shape:
                raise UserError(f"checkpoint tensor {key!r} has shape {tuple(t.shape)}, config implies {shape}")
            return t
    raise UserError(f"checkpoint lacks tensor {name!r}")


def gpt2_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GPT-2's Conv1D layers store [in, out]; c_attn holds Q, K and V side by side."""
    H, E, D, M = cfg.n_heads, cfg.d_head, cfg.d_model, cfg.d_mlp
    out = {"embed.W_E": take(t, "wte.weight", (cfg.vocab_size, D)), "pos_embed.W_pos": take(t, "wpe.weight", (cfg.n_ctx, D)),
           "ln_final.w": take(t, "ln_f.weight", (D,)), "ln_final.b": take(t, "ln_f.bias", (D,))}
    if not cfg.tied_embeddings:
        out["unembed.W_U"] = take(t, "lm_head.weight", (cfg.vocab_size, D)).T
    for L in range(cfg.n_layers):
        h, c = f"h.{L}.", f"blocks.{L}."
        qkv_w = take(t, h + "attn.c_attn.weight", (D, 3 * D)).split(D, dim=1)  # 3 x [D, H*E]
        qkv_b = take(t, h + "attn.c_attn.bias", (3 * D,)).split(D)  # 3 x [H*E]
        for name, w, b in zip("QKV", qkv_w, qkv_b):
            out[c + f"attn.W_{name}"] = w.reshape(D, H, E).permute(1, 0, 2)  # [H, D, E]
            out[c + f"attn.b_{name}"] = b.reshape(H, E)
        out |= {
            c + "attn.W_O": take(t, h + "attn.c_proj.weight", (D, D)).reshape(H, E, D),
            c + "attn.b_O": take(t, h + "attn.c_proj.bias", (D,)),
            c + "ln1.w": take(t, h + "ln_1.weight", (D,)), c + "ln1.b": take(t, h + "ln_1.bias", (D,)),
            c + "ln2.w": take(t, h + "ln_2.weight", (D,)), c + "ln2.b": take(t, h + "ln_2.bias", (D,)),
            c + "mlp.W_in": take(t, h + "mlp.c_fc.weight", (D, M)), c + "mlp.b_in": take(t, h + "mlp.c_fc.bias", (M,)),
            c + "mlp.W_out": take(t, h + "mlp.c_proj.weight", (M, D)), c + "mlp.b_out": take(t, h + "mlp.c_proj.bias", (D,)),
        }
    return out


def llama_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Llama's Linear layers store [out, in]. HF rotates (i, i + d_head/2) pairs; we rotate
    adjacent pairs, so Q and K rows are interleaved (as llama.cpp does when writing GGUF)."""
    H, K, E, D, M = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model, cfg.d_mlp

    def rope_heads(name: str, n: int) -> torch.Tensor:  # [n*E, D] -> [n, D, E], pairs made adjacent
        w = take(t, name, (n * E, D)).reshape(n, 2, E // 2, D).transpose(1, 2).reshape(n, E, D)
        return w.transpose(1, 2)

    out = {"embed.W_E": take(t, "embed_tokens.weight", (cfg.vocab_size, D)), "ln_final.w": take(t, "norm.weight", (D,))}
    if not cfg.tied_embeddings:
        out["unembed.W_U"] = take(t, "lm_head.weight", (cfg.vocab_size, D)).T
    for L in range(cfg.n_layers):
        h, c = f"layers.{L}.", f"blocks.{L}."
        out |= {
            c + "ln1.w": take(t, h + "input_layernorm.weight", (D,)),
            c + "attn.W_Q": rope_heads(h + "self_attn.q_proj.weight", H),
            c + "attn.W_K": rope_heads(h + "self_attn.k_proj.weight", K),
            c + "attn.W_V": take(t, h + "self_attn.v_proj.weight", (K * E, D)).reshape(K, E, D).transpose(1, 2),
            c + "attn.W_O": take(t, h + "self_attn.o_proj.weight", (D, H * E)).T.reshape(H, E, D),
            c + "ln2.w": take(t, h + "post_attention_layernorm.weight", (D,)),
            c + "mlp.W_gate": take(t, h + "mlp.gate_proj.weight", (M, D)).T,
            c + "mlp.W_in": take(t, h + "mlp.up_proj.weight", (M, D)).T,
            c + "mlp.W_out": take(t, h + "mlp.down_proj.weight", (D, M)).T,
        }
    return out


def read_weights(folder: Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    tensors = read_tensors(folder)
    weights = gpt2_weights(cfg, tensors) if cfg.family == "gpt2" else llama_weights(cfg, tensors)
    return {k: v.contiguous() for k, v in weights.items()}
