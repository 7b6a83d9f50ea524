"""Independent recomputation of the values the attention scenes show under their own source
names (scene_helpers.truth hands every source it does not know to `truth` here).

Sources:
    attn.qk            (L, H, q, k)      raw q . k (after RoPE), before / sqrt(d_head)
    attn.exp           (L, H, q, k)      exp(score)
    attn.softmax_T     (L, H, q, k, T)   softmax of query q's scores at temperature T (T = 0: argmax)
    attn.colsum        (L, H, q)         sum of query q's weights over every key
    attn.W_Q/W_K/W_V   (L, H, r, c)      the head's map drawn as output x input: stored [d_model, d_head] transposed
    attn.W_O           (L, H, r, c)      W_O[H] drawn as d_model x d_head
    attn.b_Q/b_K/b_V   (L, H, i)         entry i of the bias of query head H (b_Q) or of the key/value head it reads
    shape(W_Q) ...     (i,)              the drawn shape
    attn.head_norm     (L, q, h)         |hook_result[q, h]|
    attn.params        (L, name)         parameter counts (W_Q, W_K, W_V, W_O, layer, per_query_head, per_kv_head, all_layers)
    attn.cells         ("tokens" | "n_ctx", "all" | "causal")   n^2 or n(n+1)/2 cells
    attn.kv_head       (h,)              the key/value head query head h reads
    attn.sqrt_d_head   ()                sqrt(d_head)
    attn.behaviour     (L, h)            the score that decided head h's behaviour label (see head_labels)
    attn.behaviour_count (L, label)      how many heads of layer L carry that label
"""

from __future__ import annotations

import math

import torch


def _weight(scene, layer: int, name: str) -> torch.Tensor:
    from scene_helpers import loaded

    return loaded(scene.params.model).model.weight(f"blocks.{layer}.attn.{name}").detach().float()


def _qk(trace, layer: int, which: str) -> torch.Tensor:
    """Queries or keys as q . k uses them: TransformerLens's hook_rot_* on rotary models."""
    rot = f"blocks.{layer}.attn.hook_rot_{which}"
    return trace[rot] if rot in trace else trace[f"blocks.{layer}.attn.hook_{which}"]


def _scores(trace, layer, head, q):
    """Query q's scores over keys 0..q: q . k / sqrt(d_head) (Gemma: sqrt(query_pre_attn_scalar)),
    then, on soft-capped models (Gemma 2), c * tanh(score / c); on a sliding-window layer the keys
    `sliding_window` or more tokens back are -inf."""
    cfg = trace.config
    qv = _qk(trace, layer, "q")[q, head]
    k = _qk(trace, layer, "k")[: q + 1, head * cfg.n_kv_heads // cfg.n_heads]
    s = (k @ qv) / math.sqrt(cfg.query_pre_attn_scalar or cfg.d_head)
    if cfg.attn_softcap:
        s = cfg.attn_softcap * torch.tanh(s / cfg.attn_softcap)
    if cfg.sliding_window and layer in cfg.local_layers:
        s[: max(0, q + 1 - cfg.sliding_window)] = float("-inf")
    return s


def truth(shown, scene):
    trace, cfg = scene.trace, scene.trace.config
    src, idx = shown.source, shown.index
    n = len(trace.tokens)
    if src == "attn.qk":
        L, H, q, k = idx
        kv = H * cfg.n_kv_heads // cfg.n_heads
        return float(_qk(trace, L, "q")[q, H] @ _qk(trace, L, "k")[k, kv])
    if src == "attn.exp":
        L, H, q, k = idx
        return math.exp(float(_scores(trace, L, H, q)[k])) if k <= q else 0.0
    if src == "attn.softmax_T":
        L, H, q, k, T = idx
        s = _scores(trace, L, H, q).double()
        p = torch.zeros_like(s)
        if T == 0:
            p[int(s.argmax())] = 1.0
        else:
            p = torch.softmax(s / T, 0)
        return float(p[k]) if k <= q else 0.0
    if src == "attn.colsum":
        L, H, q = idx
        return float(torch.softmax(_scores(trace, L, H, q).double(), 0).sum())
    if src in ("attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O"):
        L, H, r, c = idx
        name = src.split(".")[1]
        W = _weight(scene, L, name)
        g = H if name in ("W_Q", "W_O") else H * cfg.n_kv_heads // cfg.n_heads
        return float(W[g][c, r])
    if src in ("attn.b_Q", "attn.b_K", "attn.b_V"):
        L, H, i = idx
        name = src.split(".")[1]
        g = H if name == "b_Q" else H * cfg.n_kv_heads // cfg.n_heads
        return float(_weight(scene, L, name)[g][i])
    if src.startswith("shape(W_"):
        shape = (cfg.d_model, cfg.d_head) if src == "shape(W_O)" else (cfg.d_head, cfg.d_model)
        return shape[idx[0]]
    if src == "attn.head_norm":
        L, q, h = idx
        return float(trace[f"blocks.{L}.attn.hook_result"][q, h].norm())
    if src == "attn.params":
        L, name = idx
        W = {w: _weight(scene, L, w).numel() for w in ("W_Q", "W_K", "W_V", "W_O")}
        if name in W:
            return W[name]
        if name == "per_query_head":
            return (W["W_Q"] + W["W_O"]) // cfg.n_heads
        if name == "per_kv_head":
            return (W["W_K"] + W["W_V"]) // cfg.n_kv_heads
        norms = 2 * cfg.d_head if cfg.qk_norm else 0  # QK-norm: one weight of d_head for queries, one for keys
        if name == "qk_norms":
            return norms
        biases = 0  # one number per output: (n_heads + 2 n_kv) * d_head for q, k, v; d_model more for b_O (GPT-2)
        if cfg.qkv_biases:
            biases = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.d_head + (cfg.d_model if cfg.has_biases else 0)
        if name == "layer":
            return sum(W.values()) + norms + biases
        if name == "all_layers":
            return sum(sum(_weight(scene, layer, w).numel() for w in W) + norms + biases for layer in range(cfg.n_layers))
    if src == "attn.cells":
        which, how = idx
        m = n if which == "tokens" else cfg.n_ctx
        if how == "window":  # a sliding-window layer: each query sees at most `sliding_window` keys, itself included
            q = torch.arange(m, dtype=torch.int64)
            return int(torch.clamp(q + 1, max=cfg.sliding_window).sum())
        return m * m if how == "all" else m * (m + 1) // 2
    if src == "attn.kv_head":
        return idx[0] * cfg.n_kv_heads // cfg.n_heads
    if src == "attn.sqrt_d_head":  # the scores' divisor: Gemma's config may name its square (query_pre_attn_scalar)
        return math.sqrt(cfg.query_pre_attn_scalar if cfg.query_pre_attn_scalar else cfg.d_head)
    if src == "attn.behaviour":
        return head_labels(trace, idx[0])[idx[1]][1]
    if src == "attn.behaviour_count":
        return sum(1 for lab, _, _ in head_labels(trace, idx[0]) if lab == idx[1])
    raise KeyError(f"test does not know source {src!r}")


def head_labels(trace, layer: int) -> list[tuple[str, float, str]]:
    """(label, score, strength) of every head of `layer`, from its pattern, by the rule
    facts/meaning.head_behaviours documents, computed here with whole-tensor operations.

    Over the queries 1..n-1: previous = mean weight on the key just before, first = on key 0,
    self = on the query itself; broad = mean of entropy / log(keys); content = mean of the
    largest weight on a key that is none of those three. The largest of previous / first /
    self (in that order on ties) if it is at least 0.3 (strong from 0.5); else broad if it is
    at least 0.75 (then strong); else content (strong from 0.5). One token: "self", 1, weak."""
    P = trace[f"blocks.{layer}.attn.hook_pattern"].double()  # [head, q, k]
    n_heads, n = P.shape[0], P.shape[1]
    if n < 2:
        return [("self", 1.0, "weak")] * n_heads
    q = torch.arange(1, n)
    rows = P[:, 1:, :]  # [head, n - 1, k]
    k = torch.arange(n)[None, :]
    causal = k <= q[:, None]  # [n - 1, k]
    previous = P[:, q, q - 1].mean(1)
    first = P[:, q, 0].mean(1)
    itself = P[:, q, q].mean(1)
    plogp = torch.where(causal & (rows > 0), rows * torch.log(rows.clamp_min(1e-300)), torch.zeros_like(rows))
    broad = (-plogp.sum(2) / torch.log(q.double() + 1)).mean(1)
    other = causal & (k != 0) & (k != q[:, None]) & (k != q[:, None] - 1)
    content = torch.where(other, rows, torch.zeros_like(rows)).amax(2).mean(1)
    out = []
    for h in range(n_heads):
        positional = [("previous", float(previous[h])), ("first", float(first[h])), ("self", float(itself[h]))]
        name, score = positional[0]
        for cand in positional[1:]:
            if cand[1] > score:
                name, score = cand
        if score >= 0.3:
            out.append((name, score, "strong" if score >= 0.5 else "weak"))
        elif float(broad[h]) >= 0.75:
            out.append(("broad", float(broad[h]), "strong"))
        else:
            out.append(("content", float(content[h]), "strong" if float(content[h]) >= 0.5 else "weak"))
    return out
