"""Build scenes without rendering video, and check what they show against the trace."""

from __future__ import annotations

import importlib
import os
import re
from functools import lru_cache

import torch

NUMBER = re.compile(r"^[+\-\u2212<]?[\d,]*\.?\d+%?$")


def build(scene: str, **env):
    """Run a scene's construct with animations skipped (no frames, no video); return the scene."""
    from manim import tempconfig

    from scenes.registry import scene_entry

    entry = scene_entry(scene)
    module, cls = entry.module, entry.cls
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        with tempconfig({"dry_run": True, "quality": "low_quality", "disable_caching": True,
                         "media_dir": f"/tmp/mt-test-media-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"}):
            Scene = getattr(importlib.import_module(f"scenes.{module}"), cls)
            s = Scene(skip_animations=True)
            s.render()
            return s
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@lru_cache(maxsize=2)
def loaded(model: str):
    from model.loading import load

    return load(model, "cpu")


@lru_cache(maxsize=2)
def embeddings(model: str) -> torch.Tensor:
    return loaded(model).model.weight("embed.W_E").detach().float()


@lru_cache(maxsize=2)
def parameter_count(model: str) -> int:
    return sum(p.numel() for p in loaded(model).model.parameters())


def _top_cosines(W_E, vector, exclude, k=5):
    cos = torch.nn.functional.cosine_similarity(W_E, vector[None], dim=1)
    cos[list(exclude)] = -2
    return cos.topk(k)


def truth(shown, scene):
    """Recompute what `shown` claims to show, independently of the scene's own code path."""
    from model.trace import get_trace
    from model.tokenizer import token_pieces

    trace, params = scene.trace, scene.params
    src, idx = shown.source, shown.index
    cfg = trace.config
    if src in trace.tensors:
        return float(trace[src][idx])
    if src == "probs":
        t = trace if shown.prompt is None else get_trace(shown.prompt, params.model)
        pos, tid = idx
        return float(t["logits"][pos].softmax(-1)[tid])
    if src == "tokens":
        return trace.tokens[idx[0]]
    if src == "pieces":
        return trace.pieces[idx[0]]
    if src.startswith("config."):
        return getattr(cfg, src.split(".", 1)[1])
    counts = {"count.chars": len(trace.prompt), "count.tokens": len(trace.tokens)}
    if src in counts:
        return counts[src]
    if src.endswith("^2") and src[:-2] in counts:
        return counts[src[:-2]] ** 2
    if src.startswith("len("):  # a vector's length: the last axis of its trace tensor
        name = src[4:-1]
        return trace[name].shape[-1] if name in trace.tensors else cfg.d_model
    if src == "shape(W_E)":
        return (cfg.vocab_size, cfg.d_model)[idx[0]]
    if src.startswith("norm_output:"):  # (pos, i): the norm's output after its weight (and bias)
        norm = src.split(":", 1)[1]
        weights = dict(loaded(params.model).model.named_parameters())
        out = trace[f"{norm}.hook_normalized"][idx[0]] * weights[f"{norm}.w"].detach()
        if f"{norm}.b" in weights:
            out = out + weights[f"{norm}.b"].detach()
        return float(out[idx[1:]]) if len(idx) > 1 else out
    if src == "params.total":
        return parameter_count(params.model)
    if src == "rope.angle":
        pos, i = idx
        return pos * cfg.rope_base ** (-2 * i / cfg.d_head)
    W_E = embeddings(params.model)
    enc = loaded(params.model).encoding
    if src == "vocab":
        return token_pieces(enc, [idx[0]])[0]
    if src == "embed.W_E":
        return float(W_E[idx])
    if src.startswith("neighbours."):
        tid, rank = idx
        values, ids = _top_cosines(W_E, W_E[tid], [tid])
        return float(values[rank]) if src.endswith("cosine") else token_pieces(enc, [int(ids[rank])])[0]
    if src.startswith("analogy."):
        words = idx[:3]
        ids = [enc.encode(" " + w)[0] for w in words]
        v = W_E[ids[0]] - W_E[ids[1]] + W_E[ids[2]]
        if src == "analogy.result":
            return float(v[idx[3]])
        if src == "analogy.piece":
            return shown.value if shown.value.strip() in words else f"not one of {words}"
        values, top = _top_cosines(W_E, v, ids)
        return float(values[idx[3]]) if src == "analogy.cosine" else token_pieces(enc, [int(top[idx[3]])])[0]
    if src.startswith(("attn.", "shape(W_")):
        from attention_truth import truth as attention_truth  # the attention scenes' sources

        return attention_truth(shown, scene)
    from story_truth import story_truth  # the story scenes' sources (mlp ... kv-cache)

    return story_truth(shown, scene)


def check_shown(scene) -> int:
    """Every value a scene drew equals its source; every number drawn has a source. Returns how many were checked."""
    from manim import Text

    from scenes.parts.theme import fmt, fmt_int, fmt_percent, visible_piece

    checked = 0
    for m in scene.seen.values():
        shown = getattr(m, "shown", None)
        if isinstance(m, Text) and shown is None:
            assert not NUMBER.match(m.text), f"number {m.text!r} on screen without a source"
        if shown is None:
            continue
        if isinstance(m, Text):
            assert m.text == shown.text.replace(" ", "").replace("\n", ""), (m.text, shown)
        if shown.source in ("index", "prompt", "provenance", "projection.piece", "projection.cosine"):
            continue  # checked by dedicated tests
        true = truth(shown, scene)
        if shown.kind == "number":
            assert shown.text == fmt(true, shown.decimals), (shown, true)
        elif shown.kind == "percent":
            assert shown.text == fmt_percent(true), (shown, true)
        elif shown.kind == "int":
            assert shown.text == fmt_int(true), (shown, true)
        elif shown.kind == "decimals":  # unsigned, fixed decimals (e.g. a cost)
            assert shown.text == f"{true:.{shown.decimals}f}", (shown, true)
        elif shown.kind == "token":
            assert shown.value == true and shown.text == visible_piece(true), (shown, true)
        checked += 1
    return checked
