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

    {"total", "embedding", "layers", "attention": {"W_Q", "W_K", "W_V", "W_O", "biases", "layer",
    "per_query_head", "per_kv_head"}, "attention_all", "mlp" (one layer), "mlp_all", "mlp_share"
    (MLP / (attention + MLP) in one layer)}. Norm scales count in the total only.
    """
    net = shared(model).model
    cfg = net.cfg
    attn = net.blocks[0].attn
    attention = {n: int(getattr(attn, n).numel()) for n in ATTENTION_WEIGHTS}
    attention["biases"] = sum(int(p.numel()) for n, p in attn.named_parameters() if n.startswith("b_"))
    attention["layer"] = sum(int(p.numel()) for p in attn.parameters())
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
