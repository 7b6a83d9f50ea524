"""Read a Llama-family GGUF file: config, dequantized float32 weights, tokenizer fields.

GGUF stores each matrix as numpy [out, in] (the reverse of its `ne` dimensions). The Q and K
rows are already permuted so that RoPE rotates adjacent pairs, which is exactly the
convention of `model/transformer.py`: no un-permuting needed.
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


def read_config(reader, name: str) -> ModelConfig:
    arch = field(reader, "general.architecture")
    if arch != "llama":
        raise UserError(f"GGUF architecture {arch!r} is not supported (this tool reads Llama-family GGUF files)")
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
    return shapes


def gguf_to_canonical(cfg: ModelConfig, w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """GGUF names and [out, in] layout -> TransformerLens names and layout (see transformer.py)."""
    H, K, E, D = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
    t = lambda name: torch.from_numpy(np.array(w[name], dtype=np.float32))  # noqa: E731

    def heads_in(name: str, n: int) -> torch.Tensor:  # [n*E, D] -> [n, D, E]
        return t(name).reshape(n, E, D).transpose(1, 2)

    out = {"embed.W_E": t("token_embd.weight"), "ln_final.w": t("output_norm.weight")}
    if not cfg.tied_embeddings:
        out["unembed.W_U"] = t("output.weight").T
    for L in range(cfg.n_layers):
        g, c = f"blk.{L}.", f"blocks.{L}."
        out |= {
            c + "ln1.w": t(g + "attn_norm.weight"),
            c + "attn.W_Q": heads_in(g + "attn_q.weight", H),
            c + "attn.W_K": heads_in(g + "attn_k.weight", K),
            c + "attn.W_V": heads_in(g + "attn_v.weight", K),
            c + "attn.W_O": t(g + "attn_output.weight").T.reshape(H, E, D),
            c + "ln2.w": t(g + "ffn_norm.weight"),
            c + "mlp.W_gate": t(g + "ffn_gate.weight").T,
            c + "mlp.W_in": t(g + "ffn_up.weight").T,
            c + "mlp.W_out": t(g + "ffn_down.weight").T,
        }
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
    if model != "gpt2":
        raise UserError(f"GGUF tokenizer type {model!r} is not supported (byte-level BPE, 'gpt2', only)")
    return {
        "tokens": field(reader, "tokenizer.ggml.tokens"),
        "token_types": field(reader, "tokenizer.ggml.token_type"),
        "merges": field(reader, "tokenizer.ggml.merges"),
        "pre": field(reader, "tokenizer.ggml.pre", "default"),
    }
