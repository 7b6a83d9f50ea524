"""Determinism: same scene, prompt, model, seed and settings -> same trace hash, same numbers on
screen, same captions, pixel-identical stills, across runs and across --jobs 1 / --jobs 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import DEFAULT_PROMPT, ROOT
from model.trace import run_trace

PNG = ["--format", "png", "--quality", "low", "--fps", "2", "--quiet"]


def test_two_forward_passes_give_the_same_trace_hash(smollm2, tmp_path):
    a, b = run_trace(smollm2, DEFAULT_PROMPT), run_trace(smollm2, DEFAULT_PROMPT)
    a.save(tmp_path / "a.safetensors")
    b.save(tmp_path / "b.safetensors")
    assert a.hash == b.hash
    for name in a.tensors:
        assert torch.equal(a[name], b[name]), name


def shown_values(scene) -> list[tuple]:
    return [(m.shown.source, str(m.shown.index), m.shown.text) for m in scene.seen.values() if getattr(m, "shown", None)]


@pytest.mark.parametrize("name", ["tokens", "prediction"])
def test_same_numbers_on_screen_twice(name, default_trace):
    from scene_helpers import build

    first, second = shown_values(build(name, fresh=True, MT_SEED=3)), shown_values(build(name, fresh=True, MT_SEED=3))
    assert first and first == second


def render(out, *scenes, jobs):
    result = subprocess.run([sys.executable, str(ROOT / "render.py"), "render", *scenes, "--out", str(out), "--jobs", str(jobs), *PNG],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_renders_are_identical_across_runs_and_jobs(tmp_path):
    from PIL import Image

    one = render(tmp_path / "one", "tokens", jobs=1)
    two = render(tmp_path / "two", "tokens", "cost", jobs=2)  # another run, two workers at once
    a, b = json.loads((one / "tokens.json").read_text()), json.loads((two / "tokens.json").read_text())
    assert a["trace_hash"] == b["trace_hash"] and a["tokens"] == b["tokens"]
    assert a["captions"] == b["captions"] and a["chapters"] == b["chapters"]
    assert (one / "tokens.srt").read_bytes() == (two / "tokens.srt").read_bytes()
    stills_a, stills_b = sorted((one / "tokens").glob("*.png")), sorted((two / "tokens").glob("*.png"))
    assert [p.name for p in stills_a] == [p.name for p in stills_b] and stills_a
    assert [p.name[:3] for p in stills_a] == [f"{i:02d}-" for i in range(1, len(stills_a) + 1)]  # --format png: one still per beat, in order
    for pa, pb in zip(stills_a, stills_b):  # the final still included: pixel-identical
        assert np.array_equal(np.asarray(Image.open(pa).convert("RGBA")), np.asarray(Image.open(pb).convert("RGBA"))), pa.name
