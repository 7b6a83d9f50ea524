"""Facts the story scenes show (mlp, prediction, cost, orthogonality, layers, kv-cache).

Each is a pure function of a Trace, or computed once from the weights and cached as JSON
under the model fingerprint (and the trace hash where it depends on the prompt), so a
scene never does maths itself and a render's worker processes never redo it.

Never imports manim.
"""

from __future__ import annotations

import math

import torch

from . import lens
from .analysis import _cached, _load
from .generate import cached_generation, multiply_adds, softmax_with_temperature
from .loading import resolve
from .orthogonality import experiment, welch_bound
from .trace import Trace

NEAR_ZERO = 0.05  # a neuron is "near zero" when |value| < 5% of the token's strongest neuron
TEMPERATURES = (0.0, 0.5, 1.0, 2.0)
SAMPLE_TEMPERATURE = 1.0  # the prediction scene samples from the model's own distribution
ORTHOGONALITY_DIMS = (8, 16, 32, 64, 128, 192, 256, 320, 384)
TOLERANCE_DEG = 2.0


# --------------------------------------------------------------------------- mlp

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


def parameter_counts(model: str) -> dict:
    """Parameters of one layer's attention and MLP (weights + biases, norms apart), all layers,
    the embeddings, and the total (each tensor once)."""
    def compute():
        net = _load(model).model
        block = net.blocks[0]
        attention = sum(p.numel() for p in block.attn.parameters())
        mlp = sum(p.numel() for p in block.mlp.parameters())
        layers = len(net.blocks)
        total = sum(p.numel() for p in net.parameters())
        return {"attention": int(attention), "mlp": int(mlp), "layers": layers,
                "attention_all": int(attention * layers), "mlp_all": int(mlp * layers),
                "embedding": int(net.embed.W_E.numel()), "total": int(total),
                "mlp_share": mlp / (attention + mlp)}
    return _cached("param-counts", (resolve(model).fingerprint,), compute)


# --------------------------------------------------------------------------- prediction

def temperature_table(trace: Trace, model: str, temperatures=TEMPERATURES, top_k: int = 5, position: int = -1) -> dict:
    """The last position's real top_k tokens (by logit) and their probability at each temperature.

    Returns {"ids", "pieces", "logits", "probs": {T: [p per id]}} (T as repr(float), e.g. "0.5"),
    cached by (model, trace).
    """
    def compute():
        from .tokenizer import token_pieces

        logits = trace["logits"][position]
        top_logits, ids = logits.topk(top_k)
        return {
            "ids": [int(i) for i in ids],
            "pieces": token_pieces(_load(model).encoding, ids.tolist()),
            "logits": [float(v) for v in top_logits],
            "probs": {repr(float(t)): [float(p) for p in softmax_with_temperature(logits, t)[ids]] for t in temperatures},
        }
    key = (resolve(model).fingerprint, trace.hash, repr(tuple(temperatures)), str(top_k), str(position))
    return _cached("temperatures", key, compute)


def sampled_steps(model: str, prompt: str, steps: int, seed: int, temperature: float = SAMPLE_TEMPERATURE,
                  top_k: int = 5) -> list[dict]:
    """`model.generate.cached_generation`: seeded sampling with a KV cache, each step's real top_k."""
    return cached_generation(resolve(model).fingerprint, lambda: _load(model), prompt, steps, temperature, seed, top_k)


# --------------------------------------------------------------------------- layers (logit lens)

def lens_rows(trace: Trace, model: str, position: int = -1, top_k: int = 3) -> list[dict]:
    """`model.lens.logit_lens`, cached by (model, trace, position, top_k)."""
    return _cached("lens", (resolve(model).fingerprint, trace.hash, str(position), str(top_k)),
                   lambda: lens.logit_lens(_load(model), trace, position, top_k))


def settling_layer(rows: list[dict]) -> int:
    """The first layer from which the top token is the model's final answer all the way up."""
    final = rows[-1]["top"][0]["id"]
    layer = len(rows) - 1
    while layer > 0 and rows[layer - 1]["top"][0]["id"] == final:
        layer -= 1
    return layer


# --------------------------------------------------------------------------- cost

def cost_summary(trace: Trace) -> dict:
    """Per position: p of the token that followed and -log p; their mean; the cheapest and dearest."""
    rows = lens.next_token_costs(trace)
    if not rows:
        return {"rows": [], "mean": math.nan, "best": None, "worst": None}
    best = min(range(len(rows)), key=lambda i: rows[i]["cost"])
    worst = max(range(len(rows)), key=lambda i: rows[i]["cost"])
    return {"rows": rows, "mean": lens.mean_cost(trace), "best": best, "worst": worst}


# --------------------------------------------------------------------------- kv cache

# Bump when the counting changes: v2 counts q.k as a matmul, so torch's counter sees the
# one-token product too (entries cached by v1 are 17,280 short for 1-token prompts).
KV_COUNTS_VERSION = "v2"


def kv_cache_counts(trace: Trace, model: str) -> dict:
    """Multiply-adds (measured by torch) for the next-token step after the prompt, with and
    without the KV cache, and the sizes of what the cache holds."""
    def compute():
        loaded = _load(model)
        cfg = loaded.config
        n = len(trace.tokens)
        full = multiply_adds(loaded, trace.tokens, with_cache=False)
        cached = multiply_adds(loaded, trace.tokens, with_cache=True)
        return {"tokens": n, "full": int(full), "cached": int(cached), "ratio": full / cached,
                # numbers kept per token: a key and a value for each kv head in each layer
                "cache_per_token": 2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head}
    return _cached("kv-counts", (resolve(model).fingerprint, trace.hash, KV_COUNTS_VERSION), compute)


# --------------------------------------------------------------------------- orthogonality

def orthogonality(d_model: int, seed: int, dims=ORTHOGONALITY_DIMS, tolerance_deg: float = TOLERANCE_DEG) -> dict:
    """The near-perpendicular experiment (cached, seeded) plus what it says about d_model.

    Returns {"rows" (dim, count, welch_bound per measured dim), "d_model", "welch_at_d_model"
    (math.inf when the bound says nothing), "welch_finite_until" (the last dimension with a
    finite bound), "ratio_at_largest" (count / dim at the largest measured dim)}.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is fastest (~30 s here), and stays fast on a busy machine
    try:
        rows = experiment(tuple(dims), tolerance_deg, seed)
    finally:
        torch.set_num_threads(threads)
    last = rows[-1]
    e2 = math.sin(math.radians(tolerance_deg)) ** 2
    return {
        "rows": rows,
        "tolerance_deg": tolerance_deg,
        "seed": seed,
        "d_model": d_model,
        "welch_at_d_model": welch_bound(d_model, tolerance_deg),
        "welch_finite_until": math.ceil(1 / e2) - 1,
        "ratio_at_largest": last["count"] / last["dim"],
    }
