"""Read a Hugging Face model folder (config.json + *.safetensors) of the GPT-2, Llama, Mistral,
Qwen2, Qwen3, Gemma 2, Gemma 3 or Phi-3 family.

Each family has a config mapping (config.json -> ModelConfig) and a weight converter (the
checkpoint's tensors -> the canonical names and layouts of model/transformer.py). Most are
Llama's layout plus a little: Qwen2's q/k/v biases, Qwen3's and Gemma 3's query/key norms,
the Gemmas' four norms per layer, Phi-3's fused qkv_proj and gate_up_proj (split here).

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
SUPPORTED = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3")  # config.json's model_type


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
        raise UserError(f"model architecture {kind!r} in {folder} is not supported (supported: {', '.join(SUPPORTED)}: "
                        "the GPT-2, Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 and Phi-3 families)")
    try:
        configs = {"gpt2": gpt2_config, "llama": llama_config, "mistral": mistral_config, "qwen2": qwen2_config,
                   "qwen3": qwen3_config, "gemma2": gemma2_config, "gemma3_text": gemma3_config, "phi3": phi3_config}
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


FAMILY_NAMES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3", "phi3": "Phi-3"}


def plain_rope(c: dict, family: str) -> dict:
    """The rotary settings, refused unless plain RoPE over the whole head; returns rope_parameters."""
    rope = c.get("rope_scaling") or {}
    params = c.get("rope_parameters") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default" or params.get("rope_type", "default") != "default":
        kind = rope.get("rope_type", rope.get("type")) or params.get("rope_type")
        raise UserError(f"{family} config sets rope scaling ({kind!r}): not supported, plain RoPE only")
    partial = params.get("partial_rotary_factor", c.get("partial_rotary_factor", 1.0))
    if float(partial if partial is not None else 1.0) != 1.0:
        raise UserError(f"{family} config turns only part of each head (partial_rotary_factor {partial}): not supported")
    return params


def layer_windows(c: dict, n_layers: int) -> tuple[int, tuple[int, ...]]:
    """(sliding_window, local layers) from layer_types (Qwen2/Qwen3/Gemma: "sliding_attention"
    layers), or, without layer_types, every layer when the config sets a window (Mistral, Phi-3)."""
    window = int(c.get("sliding_window") or 0)
    if "use_sliding_window" in c and not c["use_sliding_window"]:  # Qwen: the window is off unless switched on
        window = 0
    types = c.get("layer_types")
    if types is not None:
        if len(types) != n_layers or not set(types) <= {"full_attention", "sliding_attention"}:
            raise UserError(f"config layer_types must name {n_layers} layers, each full_attention or sliding_attention: {types!r}")
        local = tuple(L for L, kind in enumerate(types) if kind == "sliding_attention")
    elif "max_window_layers" in c:  # Qwen's older configs: layers from max_window_layers on slide
        local = tuple(range(int(c["max_window_layers"]), n_layers))
    else:
        local = tuple(range(n_layers))
    return (window, local) if window and local else (0, ())


def llama_config(name: str, c: dict, family: str = "llama", **extra) -> ModelConfig:
    """Llama, and the families that keep its layout: Mistral, Qwen2, Qwen3 and Phi-3 (extra: their flags)."""
    title = FAMILY_NAMES[family]
    if c.get("hidden_act", "silu") != "silu":
        raise UserError(f"{title} activation {c['hidden_act']!r} is not supported (silu only)")
    params = plain_rope(c, title)
    if family != "qwen3" and (c.get("attention_bias") or c.get("mlp_bias")):
        raise UserError(f"{title} models with attention or MLP biases are not supported")
    if family == "llama" and c.get("sliding_window"):
        raise UserError("Llama config sets a sliding window: not supported for this family")
    n_layers, d, heads = int(c["num_hidden_layers"]), int(c["hidden_size"]), int(c["num_attention_heads"])
    window, local = layer_windows(c, n_layers) if family != "llama" else (0, ())
    return ModelConfig(
        name=name, family=family, n_layers=n_layers, d_model=d,
        n_heads=heads, n_kv_heads=int(c.get("num_key_value_heads") or heads),
        d_head=int(c.get("head_dim") or d // heads), d_mlp=int(c["intermediate_size"]),
        vocab_size=int(c["vocab_size"]), n_ctx=int(c.get("max_position_embeddings", 2048)),
        norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        rope_base=float(params.get("rope_theta", c.get("rope_theta", 10000.0))),
        activation="silu", tied_embeddings=bool(c.get("tie_word_embeddings", False)),
        sliding_window=window, local_layers=local, **extra,
    )


def mistral_config(name: str, c: dict) -> ModelConfig:
    """Llama's, plus a sliding window on every layer when config.json sets sliding_window."""
    if c.get("layer_types"):  # Ministral's alternating layers: transformers reads them with another class
        raise UserError("Mistral config with layer_types (alternating attention) is not supported")
    return llama_config(name, c, "mistral")


def qwen2_config(name: str, c: dict) -> ModelConfig:
    """Llama's, plus a bias on every query, key and value (always: Qwen2's q/k/v_proj have one)."""
    return llama_config(name, c, "qwen2", qkv_bias=True)


def qwen3_config(name: str, c: dict) -> ModelConfig:
    """Llama's, plus QK-norm: each head's query and key RMS-normalised (a plain RMSNorm weight)."""
    if c.get("attention_bias"):
        raise UserError("Qwen3 models with attention biases are not supported")
    return llama_config(name, c, "qwen3", qk_norm=True)


def phi3_config(name: str, c: dict) -> ModelConfig:
    """Llama's numbers (a sliding window on every layer when set); phi3_weights splits its fused weights."""
    return llama_config(name, c, "phi3")


def gemma2_config(name: str, c: dict) -> ModelConfig:
    """Gemma 2: Gemma 3 without QK-norm and with one rotary base, a sliding window on every
    other layer (layer_types, or layers 0, 2, 4 ...), and soft-capping of the attention scores
    and the output logits (attn_logit_softcapping, final_logit_softcapping)."""
    if c.get("hidden_activation", c.get("hidden_act", "gelu_pytorch_tanh")) != "gelu_pytorch_tanh":
        raise UserError(f"Gemma 2 activation {c.get('hidden_activation', c.get('hidden_act'))!r} is not supported (gelu_pytorch_tanh only)")
    if c.get("attention_bias") or c.get("use_bidirectional_attention"):
        raise UserError("Gemma 2 models with attention biases or bidirectional attention are not supported")
    params = plain_rope(c, "Gemma 2")
    n_layers, d, heads = int(c["num_hidden_layers"]), int(c["hidden_size"]), int(c["num_attention_heads"])
    types = c.get("layer_types") or ["sliding_attention" if L % 2 == 0 else "full_attention" for L in range(n_layers)]
    window, local = layer_windows({**c, "layer_types": types}, n_layers)
    d_head = int(c.get("head_dim") or d // heads)
    return ModelConfig(
        name=name, family="gemma2", n_layers=n_layers, d_model=d,
        n_heads=heads, n_kv_heads=int(c.get("num_key_value_heads") or heads), d_head=d_head,
        d_mlp=int(c["intermediate_size"]), vocab_size=int(c["vocab_size"]),
        n_ctx=int(c.get("max_position_embeddings", 8192)), norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        rope_base=float(params.get("rope_theta", c.get("rope_theta", 10000.0))),
        activation="gelu_tanh", tied_embeddings=bool(c.get("tie_word_embeddings", True)),
        embed_scale=d ** 0.5, post_norms=True, sliding_window=window, local_layers=local,
        query_pre_attn_scalar=float(c.get("query_pre_attn_scalar") or d_head),
        attn_softcap=float(c.get("attn_logit_softcapping") or 0.0),
        final_softcap=float(c.get("final_logit_softcapping") or 0.0),
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


def pairs_adjacent(w: torch.Tensor) -> torch.Tensor:
    """[..., E] with HF's rotary pairs (i, i + E/2) -> pairs (2i, 2i+1), as llama_weights' rope_heads
    reorders W_Q and W_K: for what follows them inside a head (a bias, a query/key norm's weight)."""
    E = w.shape[-1]
    return w.reshape(*w.shape[:-1], 2, E // 2).transpose(-1, -2).reshape(w.shape)


def qwen2_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Llama's layout, plus the q/k/v biases ([H*E] -> [H, E]; the query's and key's pairs made adjacent)."""
    H, K, E = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    out = llama_weights(cfg, t)
    for L in range(cfg.n_layers):
        h, c = f"layers.{L}.self_attn.", f"blocks.{L}.attn."
        out |= {
            c + "b_Q": pairs_adjacent(take(t, h + "q_proj.bias", (H * E,)).reshape(H, E)),
            c + "b_K": pairs_adjacent(take(t, h + "k_proj.bias", (K * E,)).reshape(K, E)),
            c + "b_V": take(t, h + "v_proj.bias", (K * E,)).reshape(K, E),
        }
    return out


def qwen3_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Llama's layout, plus the query and key norms' weights (used as stored, unlike Gemma's)."""
    out = llama_weights(cfg, t)
    for L in range(cfg.n_layers):
        h, c = f"layers.{L}.self_attn.", f"blocks.{L}.attn."
        out |= {c + "q_norm.w": pairs_adjacent(take(t, h + "q_norm.weight", (cfg.d_head,))),
                c + "k_norm.w": pairs_adjacent(take(t, h + "k_norm.weight", (cfg.d_head,)))}
    return out


def phi3_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Phi-3 fuses Q, K and V into one qkv_proj ([(H + 2K) * E, D], in that order) and the MLP's gate
    and up-projection into gate_up_proj ([2M, D], gate first): split into Llama's names, then Llama's layout."""
    H, K, E, D, M = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model, cfg.d_mlp
    split = dict(t)
    for L in range(cfg.n_layers):
        h = f"layers.{L}."
        q, k, v = take(t, h + "self_attn.qkv_proj.weight", ((H + 2 * K) * E, D)).split([H * E, K * E, K * E])
        gate, up = take(t, h + "mlp.gate_up_proj.weight", (2 * M, D)).split([M, M])
        split |= {h + "self_attn.q_proj.weight": q, h + "self_attn.k_proj.weight": k, h + "self_attn.v_proj.weight": v,
                  h + "mlp.gate_proj.weight": gate, h + "mlp.up_proj.weight": up}
    return llama_weights(cfg, split)


def gemma_weights(cfg: ModelConfig, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Gemma 2 and 3: Llama's layout, plus sandwich norms (and on Gemma 3, QK-norm). Gemma stores
    each norm's w and multiplies by (1 + w): the 1 is added here, so ModelConfig's norms multiply
    by their weight as stored."""
    E = cfg.d_head
    out = llama_weights(cfg, t)  # embeddings, Q K V O and the MLP; its four norms are replaced below
    one_plus = lambda name, n: 1 + take(t, name, (n,))  # noqa: E731

    out["ln_final.w"] = one_plus("norm.weight", cfg.d_model)
    for L in range(cfg.n_layers):
        h, c = f"layers.{L}.", f"blocks.{L}."
        out |= {
            c + "ln1.w": one_plus(h + "input_layernorm.weight", cfg.d_model),
            c + "ln2.w": one_plus(h + "pre_feedforward_layernorm.weight", cfg.d_model),
            c + "ln1_post.w": one_plus(h + "post_attention_layernorm.weight", cfg.d_model),
            c + "ln2_post.w": one_plus(h + "post_feedforward_layernorm.weight", cfg.d_model),
        }
        if cfg.qk_norm:
            out |= {c + "attn.q_norm.w": pairs_adjacent(one_plus(h + "self_attn.q_norm.weight", E)),
                    c + "attn.k_norm.w": pairs_adjacent(one_plus(h + "self_attn.k_norm.weight", E))}
    return out


def read_weights(folder: Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    tensors = read_tensors(folder)
    converters = {"gpt2": gpt2_weights, "llama": llama_weights, "mistral": llama_weights, "qwen2": qwen2_weights,
                  "qwen3": qwen3_weights, "gemma2": gemma_weights, "gemma3": gemma_weights, "phi3": phi3_weights}
    weights = converters[cfg.family](cfg, tensors)
    return {k: v.contiguous() for k, v in weights.items()}
