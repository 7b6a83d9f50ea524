"""Independent recomputation of the values the story scenes (mlp, prediction, cost,
orthogonality, layers, kv-cache) put on screen; `scene_helpers.truth` falls back to this.

Each source is recomputed from the trace or the weights by a different code path from the
scene's (facts/): e.g. logit-lens values by running the final norm and the
unembedding here, multiply-adds from the analytic formula, sampled-step probabilities by a
full forward pass without the KV cache.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from scene_helpers import loaded


def _trace(shown, scene):
    from model.trace import get_trace

    return scene.trace if shown.prompt is None else get_trace(shown.prompt, scene.params.model)


@lru_cache(maxsize=64)
def _full_forward(model: str, ids: tuple[int, ...]) -> torch.Tensor:
    """The last position's logits of a plain forward pass (no cache) over ids."""
    return loaded(model).model(torch.tensor(ids))[-1].float()


@lru_cache(maxsize=8)
def _lens_probs(model: str, trace_hash: str, layer: int, position: int, resid: tuple) -> torch.Tensor:
    net = loaded(model).model
    with torch.no_grad():
        x = torch.tensor(resid)[None]
        logits = net.ln_final(x)[0] @ net.weight("unembed.W_U")
        c = net.cfg.final_softcap  # Gemma 2 soft-caps its logits: c * tanh(logit / c)
        return (c * torch.tanh(logits / c) if c else logits).softmax(-1)


def _param_counts(model: str) -> dict:
    net = loaded(model).model
    n = lambda name: net.get_parameter(name).numel() if name in dict(net.named_parameters()) else 0  # noqa: E731
    attention = sum(n(f"blocks.0.attn.{w}") for w in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O",
                                                        "q_norm.w", "k_norm.w"))  # QK-norm weights (Gemma)
    mlp = sum(n(f"blocks.0.mlp.{w}") for w in ("W_in", "W_gate", "W_out", "b_in", "b_out"))
    layers = net.cfg.n_layers
    return {"attention": attention, "mlp": mlp, "attention_all": attention * layers, "mlp_all": mlp * layers}


def _multiply_adds(cfg, n: int, cached: bool) -> int:
    """The analytic count (as in tests/test_model_generate.py) for the next-token step after n tokens."""
    per_token = cfg.d_model * cfg.d_head * (2 * cfg.n_heads + 2 * cfg.n_kv_heads)
    per_token += (3 if cfg.gated_mlp else 2) * cfg.d_model * cfg.d_mlp
    attention = lambda q, k: 2 * q * k * cfg.n_heads * cfg.d_head  # noqa: E731
    queries = 1 if cached else n
    total = cfg.n_layers * (queries * per_token + attention(queries, n)) + queries * cfg.d_model * cfg.vocab_size
    return total


def story_truth(shown, scene):
    src, idx = shown.source, shown.index
    trace, model = scene.trace, scene.params.model
    cfg = trace.config
    if src == "axis":  # a scale mark, not data
        return shown.value
    if src == "probs@T":  # (position, temperature, token id)
        from facts.generation import softmax_with_temperature  # T = 0 is argmax: tested in test_model_generate

        pos, t, tid = idx
        logits = _trace(shown, scene)["logits"][pos]
        return float(softmax_with_temperature(logits, t)[tid]) if t == 0 else float((logits / t).softmax(-1)[tid])
    if src == "sample.probs":  # (step, token id): step k's distribution, recomputed without the cache
        step, tid = idx
        steps = scene.data.samples
        ids = tuple(trace.tokens) + tuple(s["chosen"]["id"] for s in steps[:step])
        return float(_full_forward(model, ids).softmax(-1)[tid])
    if src == "mlp.near_zero":  # (layer, position)
        from facts.mlp import NEAR_ZERO

        layer, pos = idx
        post = trace[f"blocks.{layer}.mlp.hook_post"][pos]
        return int((post.abs() < NEAR_ZERO * post.abs().max()).sum())
    if src == "params.embedding":
        return loaded(model).model.get_parameter("embed.W_E").numel()
    if src.startswith("params.") and src[7:] in ("attention", "mlp", "attention_all", "mlp_all"):
        return _param_counts(model)[src[7:]]
    if src == "cost":  # (position,)
        pos = idx[0]
        return -float(trace["logits"][pos].log_softmax(-1)[trace.tokens[pos + 1]])
    if src == "cost.mean":
        lp = trace["logits"][:-1].log_softmax(-1)
        return -float(sum(lp[i, t] for i, t in enumerate(trace.tokens[1:])) / (len(trace.tokens) - 1))
    if src in ("lens.piece", "lens.p"):  # (layer, rank)
        from model.tokenizer import token_pieces

        layer, rank = idx
        resid = trace[f"blocks.{layer}.hook_resid_post"][-1]
        probs = _lens_probs(model, trace.hash, layer, -1, tuple(resid.tolist()))
        p, ids = probs.topk(rank + 1)
        return float(p[rank]) if src == "lens.p" else token_pieces(loaded(model).encoding, [int(ids[rank])])[0]
    if src == "lens.answer":  # (layer,): the final answer's probability at that layer
        layer = idx[0]
        resid = trace[f"blocks.{layer}.hook_resid_post"][-1]
        probs = _lens_probs(model, trace.hash, layer, -1, tuple(resid.tolist()))
        return float(probs[int(trace["logits"][-1].argmax())])
    if src in ("kv.full", "kv.cached"):
        return _multiply_adds(cfg, len(trace.tokens), src == "kv.cached")
    if src == "count.tokens - 1":
        return len(trace.tokens) - 1
    if src == "kv.per_token":
        return 2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head
    if src == "ortho.count":  # (dim,): the cached experiment's count; it must respect the Welch bound
        from facts.geometry import experiment
        from facts.geometry import TOLERANCE_DEG, orthogonality_dims

        rows = {r["dim"]: r for r in experiment(orthogonality_dims(cfg.d_model), TOLERANCE_DEG, scene.params.seed)}
        count = rows[idx[0]]["count"]
        e2 = math.sin(math.radians(TOLERANCE_DEG)) ** 2
        assert idx[0] <= count and (idx[0] * e2 >= 1 or count <= idx[0] * (1 - e2) / (1 - idx[0] * e2))
        return count
    if src == "ortho.welch":  # (dim,): the Welch bound, floored, from its formula
        from facts.geometry import TOLERANCE_DEG

        d = idx[0]
        e2 = math.sin(math.radians(TOLERANCE_DEG)) ** 2
        return int(d * (1 - e2) / (1 - d * e2))
    if src.startswith(("effect.", "neuron.", "temperature.")):
        return meaning_truth(shown, scene)
    raise KeyError(f"test does not know source {src!r}")


# --------------------------------------------------------------------------- meaning (mlp, prediction)

_PUSHES: dict = {}


def _pushes(model: str, trace) -> dict:
    """Each part's push on the answer's logit, from the trace and the weights: the part's output
    at the last position, divided by the RMS of the final residual vector (recomputed here, with
    the norm's eps), times the final norm's weight and the answer's unembedding column."""
    if (model, trace.hash) in _PUSHES:
        return _PUSHES[(model, trace.hash)]
    net = loaded(model).model
    cfg = trace.config
    answer = int(trace["logits"][-1].argmax())
    centre = cfg.norm == "layernorm"  # LayerNorm subtracts each vector's mean first

    def centred(v):
        v = v.double()
        return v - v.mean() if centre else v

    final = centred(trace[f"blocks.{cfg.n_layers - 1}.hook_resid_post"][-1])
    rms = float((final.pow(2).mean() + cfg.norm_eps).sqrt())
    column = net.ln_final.w.detach().double() * net.weight("unembed.W_U")[:, answer].detach().double()
    push = lambda name: float(centred(trace[name][-1]) @ column) / rms  # noqa: E731
    out = {("attention", L): push(f"blocks.{L}.hook_attn_out") for L in range(cfg.n_layers)}
    out.update({("mlp", L): push(f"blocks.{L}.hook_mlp_out") for L in range(cfg.n_layers)})
    out["embed"] = push("hook_embed")
    logit = _raw_logit(trace)
    if not centre:  # RMSNorm, no biases: the parts add up to the (uncapped) logit exactly
        total = out["embed"] + sum(v for k, v in out.items() if k != "embed")
        assert abs(total - logit) < 1e-3 * max(1.0, abs(total)), total
    _PUSHES[(model, trace.hash)] = out
    return out


def _raw_logit(trace) -> float:
    """The answer's logit before soft-capping: Gemma 2 records c * tanh(raw / c), undone here by atanh
    (ill-conditioned near the cap: a float32 logit close to c gives raw to about 1e-4 only)."""
    logit = float(trace["logits"][-1].max())
    c = trace.config.final_softcap
    return c * math.atanh(logit / c) if c else logit


@lru_cache(maxsize=16)
def _row_scores(model: str, layer: int, neuron: int) -> torch.Tensor:
    """What one unit of a neuron writes, read out per token: its W_out row through the final norm's weight and W_U."""
    net = loaded(model).model
    row = net.weight(f"blocks.{layer}.mlp.W_out")[neuron].detach().double()
    return net.weight("unembed.W_U").detach().double().T @ (row * net.ln_final.w.detach().double())


@lru_cache(maxsize=8)
def _temperature_run(model: str, ids: tuple[int, ...], t: float, n: int, seed: int) -> tuple[list, list, list]:
    """The seeded draws at temperature t, every step a full forward pass without the cache:
    (drawn ids, whether each was the most likely token, each draw's probability at t)."""
    generator = torch.Generator().manual_seed(seed)
    drawn, top, p = [], [], []
    for _ in range(n):
        logits = _full_forward(model, ids + tuple(drawn)).double()
        if t == 0:
            probs = torch.zeros_like(logits)
            probs[int(logits.argmax())] = 1.0
        else:
            probs = (logits / t).softmax(-1)
        chosen = int(torch.multinomial(probs.float(), 1, generator=generator))
        top.append(chosen == int(logits.argmax()))
        p.append(float(probs[chosen]))
        drawn.append(chosen)
    return drawn, top, p


def meaning_truth(shown, scene):
    from model.tokenizer import token_pieces

    src, idx = shown.source, shown.index
    trace, model = scene.trace, scene.params.model
    if src.startswith("effect."):
        pushes = _pushes(model, trace)
        if src in ("effect.attention", "effect.mlp"):
            return pushes[(src.split(".")[1], idx[0])]
        if src == "effect.embed":
            return pushes["embed"]
        if src == "effect.raw_logit":  # (): the logit before the cap, as the sum of the pushes (RMSNorm models;
            return sum(pushes.values())  # _pushes checked that sum against the recorded logit, cap undone)
        kind = {"effect.attention_sum": "attention", "effect.mlp_sum": "mlp"}[src]
        return sum(v for k, v in pushes.items() if k != "embed" and k[0] == kind)
    if src == "neuron.promotes":  # (layer, neuron, token id): the push, and the token is among the top 5
        layer, neuron, tid = idx
        scores = _row_scores(model, layer, neuron)
        assert tid in scores.topk(5).indices.tolist(), (shown, scores.topk(5))
        return float(scores[tid])
    if src.startswith("temperature."):  # (T,): the seeded run at temperature T
        from scenes.parts.data import TEMPERATURE_STEPS  # how many tokens the scene asks for (a setting)

        n = min(TEMPERATURE_STEPS, trace.config.n_ctx - len(trace.tokens))
        drawn, top, _ = _temperature_run(model, tuple(trace.tokens), float(idx[0]), n, scene.params.seed)
        if src == "temperature.text":
            return "".join(token_pieces(loaded(model).encoding, drawn))
        if src == "temperature.top_picks":
            return sum(top)
        if src == "temperature.steps":
            return len(drawn)
    raise KeyError(f"test does not know source {src!r}")
