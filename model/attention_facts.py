"""The maths behind the attention scenes (qkv, attention-pattern, softmax, masking, values,
multi-head), computed from a Trace or the weights so that scenes only draw. Never imports manim.

- `kv_head`: which key/value head a query head reads (grouped-query attention).
- `grid_window`: which token positions a grid of at most `limit` rows/columns shows.
- `dot_products`: the raw q . k of one head (before / sqrt(d_head)), with RoPE applied.
- `qk_plane`: a 2-D picture of one head's queries and keys that keeps what attention uses.
- `temperature_weights`: the same scores turned into weights at several temperatures.
- `weight_corners`, `parameter_counts`: elided corners of W_Q/W_K/W_V/W_O and real counts
  (cached as JSON, like model/analysis.py's facts).
- `head_norms`: how large each head's contribution to one token's vector is.
"""

from __future__ import annotations

import math

import torch

from .analysis import _cached, _load
from .config import ModelConfig
from .generate import softmax_with_temperature
from .loading import resolve
from .trace import Trace

TEMPERATURES = (0.0, 0.5, 1.0, 2.0)
CORNER = (3, 2)  # first and last entries shown of each matrix dimension


def kv_head(cfg: ModelConfig, head: int) -> int:
    """Query head `head` reads key/value head head // (n_heads // n_kv_heads)."""
    return head // cfg.heads_per_kv


def sharing(cfg: ModelConfig) -> list[list[int]]:
    """For each key/value head, the query heads that read it."""
    return [[h for h in range(cfg.n_heads) if kv_head(cfg, h) == g] for g in range(cfg.n_kv_heads)]


def grid_window(n: int, focus: list[int], limit: int) -> list[int | None]:
    """Token positions for an attention grid with at most `limit` shown positions; None marks
    an elided run. Keeps the focus positions, the first token, then the positions nearest the
    focus (earlier ones first: a causal query only sees earlier keys)."""
    if n <= limit:
        return list(range(n))
    focus = sorted({f for f in focus if 0 <= f < n}) or [n - 1]
    chosen = set(focus) | {0}
    last = max(focus)
    order = sorted(range(n), key=lambda i: (min(abs(i - f) for f in focus) + (0.5 if i > last else 0), i))
    for i in order:
        if len(chosen) >= limit:
            break
        chosen.add(i)
    out: list[int | None] = []
    ordered = sorted(chosen)
    for k, p in enumerate(ordered):
        if (k == 0 and p > 0) or (k > 0 and p > ordered[k - 1] + 1):
            out.append(None)
        out.append(p)
    if ordered[-1] < n - 1:
        out.append(None)
    return out


def dot_products(trace: Trace, layer: int, head: int) -> torch.Tensor:
    """[q_pos, k_pos] raw q . k of one head (queries and keys after RoPE), every pair, masked or not."""
    q = trace[f"blocks.{layer}.attn.hook_q"][:, head]  # [pos, d_head]
    k = trace[f"blocks.{layer}.attn.hook_k"][:, kv_head(trace.config, head)]
    return q @ k.T


def qk_plane(trace: Trace, layer: int, head: int, query: int, keys: list[int]) -> dict:
    """2-D coordinates of one head's keys, seen from one query, keeping what attention uses.

    Keys are first taken relative to their average over the prompt: a shift shared by every
    key adds the same amount to all of a query's scores, which softmax ignores. The first
    axis is then q's own direction, so a key's x is (q . k - q . mean k) / |q|: the further
    right, the more attention it earns. The second axis is what is left of the story keys'
    mean once its part along q is removed. Returns {"query": [x, y] of q itself, "keys":
    [[x, y] per position], "offset": q . mean k (the part every score shares)}.
    """
    q = trace[f"blocks.{layer}.attn.hook_q"][query, head].double()
    k = trace[f"blocks.{layer}.attn.hook_k"][:, kv_head(trace.config, head)].double()  # [pos, d_head]
    mean = k.mean(0)
    k = k - mean
    u = q / q.norm()
    target = k[list(keys)].mean(0) if keys else k[query]
    rest = target - (target @ u) * u
    if rest.norm() < 1e-6 * max(1.0, float(k.norm(dim=1).max())):  # degenerate: any direction orthogonal to q
        rest = torch.zeros_like(u)
        rest[int(u.abs().argmin())] = 1.0
        rest = rest - (rest @ u) * u
    v = rest / rest.norm()
    coords = torch.stack([k @ u, k @ v], dim=1)
    return {"query": [float(q.norm()), 0.0], "keys": coords.tolist(), "offset": float(q @ mean)}


def temperature_weights(scores: torch.Tensor, temperatures=TEMPERATURES) -> dict[float, list[float]]:
    """Softmax of the same scores at each temperature (T = 0: all weight on the largest)."""
    return {float(T): softmax_with_temperature(scores.double(), float(T)).tolist() for T in temperatures}


def head_norms(trace: Trace, layer: int, pos: int) -> list[float]:
    """Length of each head's contribution (hook_result) to token `pos`'s vector."""
    return trace[f"blocks.{layer}.attn.hook_result"][pos].norm(dim=-1).tolist()


def _weights(model: str, layer: int) -> dict[str, torch.Tensor]:
    m = _load(model).model
    return {n: m.weight(f"blocks.{layer}.attn.{n}").detach().float() for n in ("W_Q", "W_K", "W_V", "W_O")}


def weight_corners(model: str, layer: int, head: int) -> dict:
    """Elided views of one head's matrices, drawn as (output x input) maps: for W_Q, W_K and
    W_V that is the transpose of the stored [d_model, d_head] slice. Returns, per name,
    {"shape": [rows, cols], "rows": [...], "cols": [...], "values": [[...]]}."""
    def compute():
        W = _weights(model, layer)
        cfg = _load(model).config
        g = kv_head(cfg, head)
        out = {}
        for name, mat in (("W_Q", W["W_Q"][head].T), ("W_K", W["W_K"][g].T), ("W_V", W["W_V"][g].T),
                          ("W_O", W["W_O"][head].T)):
            r, c = mat.shape
            rows = list(range(CORNER[0])) + [r - 1]
            cols = list(range(CORNER[0])) + [c - 1]
            out[name] = {"shape": [r, c], "rows": rows, "cols": cols, "values": mat[rows][:, cols].tolist()}
        return out
    return _cached("attn-corners", (resolve(model).fingerprint, str(layer), str(head)), compute)


def parameter_counts(model: str, layer: int) -> dict:
    """Real parameter counts of one attention layer, from the weights' shapes:
    {"W_Q": n, "W_K": n, "W_V": n, "W_O": n, "biases": n, "layer": total, "per_query_head": W_Q + W_O
    of one head, "per_kv_head": W_K + W_V of one key/value head, "all_layers": total over every layer}."""
    def compute():
        loaded = _load(model)
        m, cfg = loaded.model, loaded.config
        counts = {n: int(m.weight(f"blocks.{layer}.attn.{n}").numel()) for n in ("W_Q", "W_K", "W_V", "W_O")}
        biases = 0
        for n in ("b_Q", "b_K", "b_V", "b_O"):
            b = getattr(m.blocks[layer].attn, n)
            biases += int(b.numel()) if b is not None else 0
        counts["biases"] = biases
        counts["layer"] = sum(counts[n] for n in ("W_Q", "W_K", "W_V", "W_O")) + biases
        counts["per_query_head"] = (counts["W_Q"] + counts["W_O"]) // cfg.n_heads
        counts["per_kv_head"] = (counts["W_K"] + counts["W_V"]) // cfg.n_kv_heads
        counts["all_layers"] = sum(sum(p.numel() for p in block.attn.parameters()) for block in m.blocks)
        return counts
    return _cached("attn-params", (resolve(model).fingerprint, str(layer)), compute)


def causal_cells(n: int) -> int:
    """Cells of an n x n attention grid that a causal model computes (key not after query)."""
    return n * (n + 1) // 2


def scale(cfg: ModelConfig) -> float:
    return math.sqrt(cfg.d_head)
