"""The attention scenes (qkv, attention-pattern, softmax, masking, values, multi-head):
built without video, every shown number equals its trace value (tests/attention_truth.py
recomputes this project's own sources); the weighted sum shown equals hook_z; masked cells
show 0; every prompt length fits the frame. A few short real renders are marked slow."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from scene_helpers import _fixed, build, check_shown, story_head  # noqa: E402

from facts import attention as af  # noqa: E402
from model.trace import get_trace  # noqa: E402
from scenes.parts.params import DEFAULT_PROMPT
from scenes.registry import SCENES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ATTENTION = [name for name in ("qkv", "attention-pattern", "softmax", "masking", "values", "multi-head") if name in SCENES]
LONG_PROMPT = " ".join(["The fluffy blue creature roamed the verdant forest, and"] * 21) + " the end"


def shown_of(scene, source: str) -> list:
    return [m.shown for m in scene.seen.values() if getattr(m, "shown", None) and m.shown.source == source]


def texts(scene) -> str:
    from manim import Text

    return " ".join(m.text for m in scene.seen.values() if isinstance(m, Text))


def scene_specific(name, scene):
    """What each scene must show beyond 'every number equals its source'."""
    trace, cfg = scene.trace, scene.trace.config
    L, H, q = scene.layer, scene.head, scene.query
    hook = f"blocks.{L}.attn."
    if name == "qkv":
        assert shown_of(scene, hook + "hook_q") and shown_of(scene, hook + "hook_k")  # after RoPE
        assert shown_of(scene, "attn.W_Q") and shown_of(scene, "attn.W_K")
        assert "after RoPE" in " ".join(scene.captions) or "turned" in " ".join(scene.captions)
    if name == "attention-pattern":
        assert "columns:queries" in texts(scene) and "rows:keys" in texts(scene)  # the axis convention
        weights = shown_of(scene, hook + "hook_pattern")
        assert weights and not [s for s in weights if s.text.startswith(("+", "-", "\u2212"))]  # weights: no sign
        assert [s.text for s in shown_of(scene, "attn.colsum")] and all(s.text == "1.00" for s in shown_of(scene, "attn.colsum"))
    if name == "softmax":
        temps = {s.index[-1] for s in shown_of(scene, "attn.softmax_T")}
        assert temps == {0.0, 0.5, 1.0, 2.0}
        zero = [s for s in shown_of(scene, "attn.softmax_T") if s.index[-1] == 0.0]
        # probabilities as the style guide writes them: unsigned percentages, all on the largest at T = 0
        assert sum(s.text == "100.0%" for s in zero) == 1 and all(s.text in ("100.0%", "0.0%") for s in zero)
        assert shown_of(scene, "attn.colsum") and all(s.text == "100.0%" for s in shown_of(scene, "attn.colsum"))
    if name == "masking":
        pattern = [s for s in shown_of(scene, hook + "hook_pattern") if s.index[2] > s.index[1]]
        assert pattern and all(s.text == " 0" and float(trace[hook + "hook_pattern"][s.index]) == 0.0 for s in pattern)
        scores = [s for s in shown_of(scene, hook + "hook_attn_scores") if s.index[2] > s.index[1]]
        assert scores and all(s.text == "\u2212inf" for s in scores)
    if name == "values":  # the weighted sum shown is the trace's hook_z, and that is sum(weight * value)
        z = shown_of(scene, hook + "hook_z")
        assert z
        kv = H * cfg.n_kv_heads // cfg.n_heads
        weights = trace[hook + "hook_pattern"][H, q, : q + 1]
        values = trace[hook + "hook_v"][: q + 1, kv]
        recomputed = weights @ values
        for s in z:
            assert s.index[:2] == (q, H)
            assert abs(float(recomputed[s.index[2]]) - s.value) < 1e-4
        assert shown_of(scene, hook + "hook_result") and shown_of(scene, f"blocks.{L}.hook_resid_mid")
    if name == "multi-head":
        assert len(shown_of(scene, "attn.head_norm")) == cfg.n_heads
        assert {s.index[1] for s in shown_of(scene, "attn.params")} >= {"layer", "per_query_head", "per_kv_head"}
        group = [h for h in range(cfg.n_heads) if h * cfg.n_kv_heads // cfg.n_heads == 0]
        assert "key/valuehead0←queryheads" + ",".join(map(str, group)) in texts(scene)


@pytest.mark.parametrize("name", ATTENTION)
def test_default_prompt(name):
    """Each scene's own checks (tests/test_scenes.py runs the generic ones on every scene: every number
    equals its source, beats, captions, the frame, the 1-token and 256-token prompts)."""
    scene = build(name)
    L, H, score, _, _ = story_head(get_trace(DEFAULT_PROMPT))
    assert f"layer {L} head {H} (auto {_fixed(score, 2)})" in scene.provenance.text.shown.text
    scene_specific(name, scene)
    # A clip a lecturer can drop in: paced by its narration (silent build: reading speed), not
    # padded, and short enough to hold attention (three minutes: values reads E + ΔE through the lens).
    said = sum(len(c["text"]) for c in scene.cues)
    assert 20 <= scene.time <= 180 and scene.time <= 1.6 * said / 15 + 15, (scene.time, said)


@pytest.mark.parametrize("name", ["masking", "values"])
def test_one_token_prompt(name):
    """The shortest prompt (test_scenes.py builds every scene at 1 token and at the limit too)."""
    scene = build(name, MT_PROMPT="Hi")
    assert scene.layout_problems == []
    check_shown(scene)
    if name == "values":
        scene_specific(name, scene)


@pytest.mark.slow
def test_render_at_the_length_limit(tmp_path):
    """Real low-quality renders of the grid-heaviest scenes for a prompt at the 256-token limit."""
    out = subprocess.run([sys.executable, str(ROOT / "render.py"), "render", "attention-pattern", "multi-head",
                          "--prompt", LONG_PROMPT, "--quality", "low", "--fps", "2", "--voice", "none",
                          "--out", str(tmp_path), "--jobs", "2"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("attention-pattern", "multi-head"):
        assert (tmp_path / f"{name}.mp4").stat().st_size > 10_000


# --------------------------------------------------------------------------- facts/attention.py

def test_dot_products_make_the_scores():
    trace = get_trace(DEFAULT_PROMPT)
    qk = af.dot_products(trace, 1, 2)
    scores = trace["blocks.1.attn.hook_attn_scores"][2]
    causal = torch.ones_like(qk, dtype=torch.bool).tril()
    assert torch.allclose(qk[causal] / af.scale(trace.config), scores[causal], atol=1e-4)
    assert torch.isinf(scores[~causal]).all()


def test_qk_plane_keeps_the_order_of_scores():
    trace = get_trace(DEFAULT_PROMPT)
    plane = af.qk_plane(trace, 1, 2, 3, [1, 2])
    x = torch.tensor(plane["keys"], dtype=torch.float64)[:, 0]
    qk = af.dot_products(trace, 1, 2)[3]
    # x is q . (k - mean k) / |q|: the same order as the scores, shifted by a shared amount
    assert torch.allclose(x * plane["query"][0] + plane["offset"], qk.double(), atol=1e-3)
    assert af.qk_plane(get_trace("Hi"), 0, 0, 0, [0])["keys"] == [[0.0, 0.0]]


def test_temperatures_and_counts():
    w = af.temperature_weights(torch.tensor([1.0, 3.0, 2.0]))
    assert w[0.0] == [0.0, 1.0, 0.0]
    assert all(math.isclose(sum(v), 1.0) for v in w.values())
    assert w[2.0][1] < w[1.0][1] < w[0.5][1]
    assert af.sharing(get_trace(DEFAULT_PROMPT).config) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    from facts.counts import causal_cells

    assert causal_cells(10) == 55


def test_grid_window_keeps_the_story():
    from scenes.parts.components import token_window

    assert token_window([1.0] * 5, [3], 9, 0.0, keep_last=False) == [0, 1, 2, 3, 4]
    w = token_window([1.0] * 254, [62, 60, 61], 9, 0.0, keep_last=False)
    assert {0, 60, 61, 62} <= set(w) and len([p for p in w if p is not None]) == 9 and None in w[1:3]
    assert w[-1] is None  # the tokens after the story are elided, not the last one kept
