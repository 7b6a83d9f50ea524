"""The MLP: which of one token's hidden neurons fire. Never imports manim."""

from __future__ import annotations

from model.trace import Trace

NEAR_ZERO = 0.05  # a neuron is "near zero" when |value| < 5% of the token's strongest neuron


def mlp_neurons(trace: Trace, layer: int, position: int, top_k: int = 5, near_zero: float = NEAR_ZERO) -> dict:
    """One token's hidden neurons at one layer: the top_k by |value| and how many are near zero.

    Returns {"top": [{"neuron", "value"}], "near_zero": count, "d_mlp", "threshold" (absolute),
    "fraction", "max"}; values read from blocks.L.mlp.hook_post.
    """
    post = trace[f"blocks.{layer}.mlp.hook_post"][position]  # [d_mlp]
    strongest = float(post.abs().max())
    threshold = near_zero * strongest
    quiet = int((post.abs() < threshold).sum())
    values, idx = post.abs().topk(min(top_k, post.numel()))
    return {
        "top": [{"neuron": int(i), "value": float(post[i])} for i in idx],
        "near_zero": quiet,
        "d_mlp": int(post.numel()),
        "threshold": threshold,
        "fraction": quiet / post.numel(),
        "max": strongest,
    }
