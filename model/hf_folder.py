"""Read a Hugging Face model folder (config.json + *.safetensors) of the GPT-2, Llama or Gemma 3 family.

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
SUPPORTED = ("gpt2", "llama", "gemma3_text")


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
        configs = {"gpt2": gpt2_config, "llama": llama_config, "gemma3_text": gemma3_config}
        cfg = configs[kind](folder.name, c)
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


def gemma3_config(name: str, c: dict) -> ModelConfig:
    """Gemma 3's text model. Its sliding-window layers are listed in layer_types (or, in older
    configs, every sliding_window_pattern-th layer is global); its two rotary bases sit in
    rope_parameters (or rope_theta / rope_local_base_freq)."""
    if c.get("hidden_activation", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
        raise UserError(f"Gemma 3 activation {c['hidden_activation']!r} is not supported (gelu_pytorch_tanh only)")
    if c.get("final_logit_softcapping") or c.get("attn_logit_softcapping"):
        raise UserError("Gemma models with logit soft-capping are not supported")
    if c.get("attention_bias") or c.get("use_bidirectional_attention"):
        raise UserError("Gemma 3 models with attention biases or bidirectional attention are not supported")
    params = c.get("rope_parameters") or {}
    full, local = params.get("full_attention") or {}, params.get("sliding_attention") or {}
    for rope in (full, local, c.get("rope_scaling") or {}):
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise UserError("rope scaling is not supported (plain RoPE only)")
    n_layers, d, heads = int(c["num_hidden_layers"]), int(c["hidden_size"]), int(c["num_attention_heads"])
    every = int(c.get("sliding_window_pattern", c.get("_sliding_window_pattern", 6)))
    types = c.get("layer_types") or ["full_attention" if (L + 1) % every == 0 else "sliding_attention" for L in range(n_layers)]
    d_head = int(c.get("head_dim") or d // heads)
    return ModelConfig(
        name=name, family="gemma3", n_layers=n_layers, d_model=d,
        n_heads=heads, n_kv_heads=int(c.get("num_key_value_heads") or heads), d_head=d_head,
        d_mlp=int(c["intermediate_size"]), vocab_size=int(c["vocab_size"]),
        n_ctx=int(c.get("max_position_embeddings", 131072)), norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        rope_base=float(full.get("rope_theta", c.get("rope_theta", 1000000.0))),
        activation="gelu_tanh", tied_embeddings=bool(c.get("tie_word_embeddings", True)),
        embed_scale=d ** 0.5, qk_norm=True, post_norms=True,
        sliding_window=int(c.get("sliding_window") or 0),
        local_layers=tuple(L for L, kind in enumerate(types) if kind == "sliding_attention"),
        rope_base_local=float(local.get("rope_theta", c.get("rope_local_base_freq", 10000.0))),
        query_pre_attn_scalar=float(c.get("query_pre_attn_scalar") or d_head),
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


def gemma3_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Llama's layout, plus QK-norm and sandwich norms. Gemma stores each norm's w and multiplies
    by (1 + w): the 1 is added here, so ModelConfig's norms multiply by their weight as stored."""
    E = cfg.d_head
    out = llama_weights(cfg, t)  # embeddings, Q K V O and the MLP; its four norms are replaced below
    one_plus = lambda name, n: 1 + take(t, name, (n,))  # noqa: E731

    def pairs_adjacent(w: torch.Tensor) -> torch.Tensor:  # [E], pairs (i, i + E/2) -> (2i, 2i+1), as rope_heads does
        return w.reshape(2, E // 2).T.reshape(E)

    out["ln_final.w"] = one_plus("norm.weight", cfg.d_model)
    for L in range(cfg.n_layers):
        h, c = f"layers.{L}.", f"blocks.{L}."
        out |= {
            c + "ln1.w": one_plus(h + "input_layernorm.weight", cfg.d_model),
            c + "ln2.w": one_plus(h + "pre_feedforward_layernorm.weight", cfg.d_model),
            c + "ln1_post.w": one_plus(h + "post_attention_layernorm.weight", cfg.d_model),
            c + "ln2_post.w": one_plus(h + "post_feedforward_layernorm.weight", cfg.d_model),
            c + "attn.q_norm.w": pairs_adjacent(one_plus(h + "self_attn.q_norm.weight", E)),
            c + "attn.k_norm.w": pairs_adjacent(one_plus(h + "self_attn.k_norm.weight", E)),
        }
    return out


def read_weights(folder: Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    tensors = read_tensors(folder)
    converters = {"gpt2": gpt2_weights, "llama": llama_weights, "gemma3": gemma3_weights}
    weights = converters[cfg.family](cfg, tensors)
    return {k: v.contiguous() for k, v in weights.items()}
