"""Counting: parameters by where they live, multiply-adds with and without the KV cache.

Every count is measured, not derived from a formula: parameters from the weights' own shapes,
multiply-adds by torch's FlopCounterMode while the model runs.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from model.cache import cached
from model.loading import LoadedModel, shared
from model.trace import Trace
from model.transformer import KVCache

ATTENTION_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O")


@cached("parameters")
def parameter_counts(model: str) -> dict:
    """Parameters of the model, each tensor once (tied embeddings once):

    {"total", "embedding", "layers", "attention": {"W_Q", "W_K", "W_V", "W_O", "biases", "layer", "qk_norms",
    "per_query_head", "per_kv_head"}, "attention_all", "mlp" (one layer), "mlp_all", "mlp_share"
    (MLP / (attention + MLP) in one layer)}. Norm scales count in the total only.
    """
    net = shared(model).model
    cfg = net.cfg
    attn = net.blocks[0].attn
    attention = {n: int(getattr(attn, n).numel()) for n in ATTENTION_WEIGHTS}
    attention["biases"] = sum(int(p.numel()) for n, p in attn.named_parameters() if n.startswith("b_"))
    attention["layer"] = sum(int(p.numel()) for p in attn.parameters())
    attention["qk_norms"] = sum(int(p.numel()) for n, p in attn.named_parameters() if n.startswith(("q_norm.", "k_norm.")))
    attention["per_query_head"] = (attention["W_Q"] + attention["W_O"]) // cfg.n_heads
    attention["per_kv_head"] = (attention["W_K"] + attention["W_V"]) // cfg.n_kv_heads
    mlp = sum(int(p.numel()) for p in net.blocks[0].mlp.parameters())
    layers = len(net.blocks)
    return {"total": sum(int(p.numel()) for p in net.parameters()), "embedding": int(net.embed.W_E.numel()),
            "layers": layers, "attention": attention, "attention_all": attention["layer"] * layers,
            "mlp": mlp, "mlp_all": mlp * layers, "mlp_share": mlp / (attention["layer"] + mlp)}


def multiply_adds(loaded: LoadedModel, ids: list[int], with_cache: bool) -> int:
    """Multiply-adds to get the next-token logits after `ids`, counted by torch as it runs.

    Without a cache the whole sequence is recomputed; with one, the earlier tokens' keys and
    values are already stored and only the last token is pushed through the model.
    """
    tokens = torch.tensor(ids, device=loaded.device)
    past = None
    if with_cache:
        past = KVCache()
        loaded.model(tokens[:-1], past=past)  # done earlier, while generating the previous tokens
        tokens = tokens[-1:]
    with FlopCounterMode(display=False) as counter:
        loaded.model(tokens, past=past)
    return counter.get_total_flops() // 2  # one multiply-add = two floating-point operations


@cached("kv-counts")
def kv_cache_counts(trace: Trace, model: str) -> dict:
    """Multiply-adds for the next-token step after the prompt, with and without the KV cache,
    and how many numbers the cache keeps per token."""
    loaded = shared(model)
    cfg = loaded.config
    full = multiply_adds(loaded, trace.tokens, with_cache=False)
    reused = multiply_adds(loaded, trace.tokens, with_cache=True)
    return {"tokens": len(trace.tokens), "full": int(full), "cached": int(reused), "ratio": full / reused,
            # numbers kept per token: a key and a value for each kv head in each layer
            "cache_per_token": 2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head}


def causal_cells(n: int) -> int:
    """Cells of an n x n attention grid that a causal model computes (key not after query)."""
    return n * (n + 1) // 2


def window_cells(n: int, window: int) -> int:
    """Cells a sliding-window layer computes for n tokens: each query sees at most `window` keys
    (itself and the window - 1 before it)."""
    inside = min(n, window)
    return inside * (inside + 1) // 2 + (n - inside) * window


def _piece_bytes(piece: str) -> bytes:
    """A token piece back to its bytes: "<0xE2><0x80>" pieces are raw bytes, anything else UTF-8."""
    import re

    if re.fullmatch(r"(<0x[0-9A-F]{2}>)+", piece):
        return bytes(int(piece[i + 3:i + 5], 16) for i in range(0, len(piece), 6))
    return piece.encode("utf-8")


def added_tokens(trace: Trace) -> int:
    """How many tokens the tokenizer put in front of the prompt's own text (Gemma's <bos>; 0 for
    SmolLM2): the fewest leading tokens whose removal leaves exactly the prompt's bytes."""
    text = trace.prompt.encode("utf-8")
    pieces = [_piece_bytes(p) for p in trace.pieces]
    for k in range(min(len(pieces), 4)):
        if b"".join(pieces[k:]) == text:
            return k
    return 0


def start_token_heads(trace: Trace, share: float = 0.5, position: int = -1) -> dict:
    """Heads (every layer) in which the token at `position` gives at least `share` of its
    attention to the very first token: {"heads": count, "total": n_layers * n_heads}."""
    cfg = trace.config
    heads = sum(int((trace[f"blocks.{L}.attn.hook_pattern"][:, position, 0] >= share).sum())
                for L in range(cfg.n_layers))
    return {"heads": heads, "total": cfg.n_layers * cfg.n_heads}
