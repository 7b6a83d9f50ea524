"""Read a Llama or Gemma 3 GGUF file: config, dequantized float32 weights, tokenizer fields.

GGUF stores each matrix as numpy [out, in] (the reverse of its `ne` dimensions). In a Llama
file the Q and K rows are already permuted so that RoPE rotates adjacent pairs, which is
exactly the convention of `model/transformer.py`. A Gemma 3 file keeps Hugging Face's order
(llama.cpp turns the pairs (i, i + d_head/2) for it), so its Q and K rows, and the QK-norm
weights that scale them, are interleaved here into adjacent pairs.

Gemma 3's norm weights are stored as the factor they multiply by: llama.cpp's converter adds
the 1 of Gemma's (1 + w) when it writes the file, which is the convention of ModelConfig.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .errors import UserError

MAGIC = b"GGUF"


def open_reader(path: Path):
    import gguf

    with open(path, "rb") as f:
        head = f.read(4)
    if head != MAGIC:
        raise UserError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    try:
        return gguf.GGUFReader(path)
    except Exception as e:  # the reader raises many kinds of errors on a damaged file
        raise UserError(f"{path} is a truncated or corrupted GGUF file ({type(e).__name__}: {str(e)[:120]})") from None


def field(reader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise UserError(f"GGUF file lacks the metadata key {key!r}")
        return default
    return f.contents()


ARCHITECTURES = ("llama", "gemma3")  # general.architecture values this tool reads

# Gemma 3 facts llama.cpp does not write into the file but applies for every gemma3 file
# (llama-model.cpp): the rotary base of the sliding-window layers, and which layers slide:
# five of every six, the sixth sees the whole context. Read from the file when it has them.
GEMMA3_ROPE_BASE_LOCAL = 10000.0
GEMMA3_GLOBAL_EVERY = 6


def read_config(reader, name: str) -> ModelConfig:
    arch = field(reader, "general.architecture")
    if arch not in ARCHITECTURES:
        raise UserError(f"GGUF architecture {arch!r} is not supported (this tool reads these families: {', '.join(ARCHITECTURES)})")
    if arch == "gemma3":
        return read_gemma3_config(reader, name)
    a = "llama."
    n_heads = int(field(reader, a + "attention.head_count"))
    d_model = int(field(reader, a + "embedding_length"))
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = int(field(reader, a + "vocab_size", len(tokens.data) if tokens else 0))
    cfg = ModelConfig(
        name=name,
        family="llama",
        n_layers=int(field(reader, a + "block_count")),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=int(field(reader, a + "attention.head_count_kv", n_heads)),
        d_head=int(field(reader, a + "rope.dimension_count", d_model // max(n_heads, 1))),
        d_mlp=int(field(reader, a + "feed_forward_length")),
        vocab_size=vocab,
        n_ctx=int(field(reader, a + "context_length")),
        norm_eps=float(field(reader, a + "attention.layer_norm_rms_epsilon")),
        rope_base=float(field(reader, a + "rope.freq_base", 10000.0)),
        activation="silu",
        tied_embeddings="output.weight" not in {t.name for t in reader.tensors},
    )
    cfg.validate()
    return cfg


def read_gemma3_config(reader, name: str) -> ModelConfig:
    a = "gemma3."
    for key in ("final_logit_softcapping", "attn_logit_softcapping"):
        if float(field(reader, a + key, 0.0)):  # Gemma 2 had them; Gemma 3 dropped them
            raise UserError(f"GGUF file sets {a + key}: logit soft-capping is not supported")
    n_heads = int(field(reader, a + "attention.head_count"))
    n_layers = int(field(reader, a + "block_count"))
    d_model = int(field(reader, a + "embedding_length"))
    d_head = int(field(reader, a + "attention.key_length"))
    if int(field(reader, a + "attention.value_length", d_head)) != d_head:
        raise UserError("GGUF file: keys and values of different widths are not supported")
    pattern = reader.fields.get(a + "attention.sliding_window_pattern")  # per layer: True = sliding window
    if pattern is not None:
        local = tuple(L for L, sliding in enumerate(pattern.contents()) if sliding)
    else:
        local = tuple(L for L in range(n_layers) if (L + 1) % GEMMA3_GLOBAL_EVERY)
    scale = float(field(reader, a + "attention.scale", 0.0))  # llama.cpp's multiplier, 1/sqrt(scalar)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    cfg = ModelConfig(
        name=name,
        family="gemma3",
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=int(field(reader, a + "attention.head_count_kv", n_heads)),
        d_head=d_head,
        d_mlp=int(field(reader, a + "feed_forward_length")),
        vocab_size=int(field(reader, a + "vocab_size", len(tokens.data) if tokens else 0)),
        n_ctx=int(field(reader, a + "context_length")),
        norm_eps=float(field(reader, a + "attention.layer_norm_rms_epsilon")),
        rope_base=float(field(reader, a + "rope.freq_base", 1000000.0)),
        activation="gelu_tanh",
        tied_embeddings="output.weight" not in {t.name for t in reader.tensors},
        embed_scale=d_model ** 0.5,
        qk_norm=True,
        post_norms=True,
        sliding_window=int(field(reader, a + "attention.sliding_window")),
        local_layers=local,
        rope_base_local=float(field(reader, a + "rope.freq_base_swa", GEMMA3_ROPE_BASE_LOCAL)),
        query_pre_attn_scalar=1 / scale ** 2 if scale else float(d_head),
    )
    cfg.validate()
    return cfg


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """GGUF tensor name -> numpy shape it must have. Checked before anything is dequantized."""
    H, K, E, D, M, V = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model, cfg.d_mlp, cfg.vocab_size
    shapes = {"token_embd.weight": (V, D), "output_norm.weight": (D,)}
    if not cfg.tied_embeddings:
        shapes["output.weight"] = (V, D)
    for L in range(cfg.n_layers):
        b = f"blk.{L}."
        shapes |= {
            b + "attn_norm.weight": (D,), b + "ffn_norm.weight": (D,),
            b + "attn_q.weight": (H * E, D), b + "attn_k.weight": (K * E, D), b + "attn_v.weight": (K * E, D),
            b + "attn_output.weight": (D, H * E),
            b + "ffn_gate.weight": (M, D), b + "ffn_up.weight": (M, D), b + "ffn_down.weight": (D, M),
        }
        if cfg.qk_norm:
            shapes |= {b + "attn_q_norm.weight": (E,), b + "attn_k_norm.weight": (E,)}
        if cfg.post_norms:
            shapes |= {b + "post_attention_norm.weight": (D,), b + "post_ffw_norm.weight": (D,)}
    return shapes


def gguf_to_canonical(cfg: ModelConfig, w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """GGUF names and [out, in] layout -> TransformerLens names and layout (see transformer.py)."""
    H, K, E, D = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
    t = lambda name: torch.from_numpy(np.array(w[name], dtype=np.float32))  # noqa: E731

    interleave = cfg.family == "gemma3"  # this file's RoPE pairs are (i, i + E/2): make them adjacent

    def pairs_adjacent(x: torch.Tensor) -> torch.Tensor:  # [..., E] with pairs (i, i + E/2) -> pairs (2i, 2i+1)
        return x.reshape(*x.shape[:-1], 2, E // 2).transpose(-1, -2).reshape(x.shape) if interleave else x

    def heads_in(name: str, n: int) -> torch.Tensor:  # [n*E, D] -> [n, D, E]
        return t(name).reshape(n, E, D).transpose(1, 2)

    def rope_heads_in(name: str, n: int) -> torch.Tensor:  # Q or K: [n*E, D] -> [n, D, E], pairs adjacent
        return pairs_adjacent(heads_in(name, n))

    out = {"embed.W_E": t("token_embd.weight"), "ln_final.w": t("output_norm.weight")}
    if not cfg.tied_embeddings:
        out["unembed.W_U"] = t("output.weight").T
    for L in range(cfg.n_layers):
        g, c = f"blk.{L}.", f"blocks.{L}."
        out |= {
            c + "ln1.w": t(g + "attn_norm.weight"),
            c + "attn.W_Q": rope_heads_in(g + "attn_q.weight", H),
            c + "attn.W_K": rope_heads_in(g + "attn_k.weight", K),
            c + "attn.W_V": heads_in(g + "attn_v.weight", K),
            c + "attn.W_O": t(g + "attn_output.weight").T.reshape(H, E, D),
            c + "ln2.w": t(g + "ffn_norm.weight"),
            c + "mlp.W_gate": t(g + "ffn_gate.weight").T,
            c + "mlp.W_in": t(g + "ffn_up.weight").T,
            c + "mlp.W_out": t(g + "ffn_down.weight").T,
        }
        if cfg.qk_norm:  # the per-head norm weights follow their query/key dimensions
            out[c + "attn.q_norm.w"] = pairs_adjacent(t(g + "attn_q_norm.weight"))
            out[c + "attn.k_norm.w"] = pairs_adjacent(t(g + "attn_k_norm.weight"))
        if cfg.post_norms:
            out[c + "ln1_post.w"] = t(g + "post_attention_norm.weight")
            out[c + "ln2_post.w"] = t(g + "post_ffw_norm.weight")
    return {k: v.contiguous() for k, v in out.items()}


def read_weights(reader, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    import gguf

    shapes = expected_shapes(cfg)
    tensors = {t.name: t for t in reader.tensors}
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise UserError(f"GGUF file lacks tensor {missing[0]!r} (and {len(missing) - 1} more)" if len(missing) > 1 else f"GGUF file lacks tensor {missing[0]!r}")
    for name, shape in shapes.items():
        found = tuple(int(n) for n in reversed(tensors[name].shape))
        if found != shape:
            raise UserError(f"GGUF tensor {name!r} has shape {found}, expected {shape} from the file's own config")
    arrays = {}
    for name in shapes:
        t = tensors[name]
        try:
            arrays[name] = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shapes[name])
        except Exception as e:
            raise UserError(f"cannot dequantize GGUF tensor {name!r} ({t.tensor_type.name}): {e}") from None
    return gguf_to_canonical(cfg, arrays)


def read_tokenizer_fields(reader) -> dict:
    model = field(reader, "tokenizer.ggml.model", "")
    if model == "llama" and field(reader, "general.architecture") == "gemma3":
        return {  # SentencePiece BPE: no merges in the file, its token order is the merge order
            "model": "gemma",
            "tokens": field(reader, "tokenizer.ggml.tokens"),
            "token_types": field(reader, "tokenizer.ggml.token_type"),
            "bos": int(field(reader, "tokenizer.ggml.bos_token_id")) if field(reader, "tokenizer.ggml.add_bos_token", False) else None,
        }
    if model != "gpt2":
        raise UserError(f"GGUF tokenizer type {model!r} is not supported (byte-level BPE 'gpt2', or Gemma's sentencepiece)")
    return {
        "tokens": field(reader, "tokenizer.ggml.tokens"),
        "token_types": field(reader, "tokenizer.ggml.token_type"),
        "merges": field(reader, "tokenizer.ggml.merges"),
        "pre": field(reader, "tokenizer.ggml.pre", "default"),
    }
