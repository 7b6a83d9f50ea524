"""The one cache never serves a value that other code computed.

Each test copies model/ and facts/ into a temporary project, computes something there (filling
a cache), edits the copy's code the way a bug or a fix would, and computes again with the same
cache folder: the new code's answer must come back, not the cached one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builders import write_random_gpt2

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Hello there, my friend"


@pytest.fixture
def project(tmp_path):
    """A copy of model/ and facts/, a random GPT-2 folder and an empty cache."""
    copy = tmp_path / "project"
    for package in ("model", "facts"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    folder = write_random_gpt2(tmp_path / "gpt2", d_model=32, n_layers=2, n_heads=2, n_ctx=32)
    return copy, folder, tmp_path / "cache"


def run(copy: Path, cache: Path, code: str) -> dict:
    env = {"MANIM_TRANSFORMER_CACHE": str(cache), "PATH": "/usr/bin:/bin", "HOME": str(cache.parent)}
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    path.write_text(text.replace(old, new))


def test_a_cached_trace_is_not_served_to_changed_model_code(project):
    copy, folder, cache = project
    code = (f"import json; from model.trace import get_trace; t = get_trace({PROMPT!r}, {str(folder)!r}, 'cpu'); "
            "p = t['blocks.0.attn.hook_pattern']; print(json.dumps({'future': float(p.triu(1).abs().sum()), 'hash': t.hash}))")
    first = run(copy, cache, code)
    assert first["future"] == 0.0  # causal: no weight on later tokens
    assert run(copy, cache, code) == first  # unchanged code: the cached trace (same hash)
    edit(copy / "model" / "transformer.py", 'scores.masked_fill(hidden, float("-inf"))', "scores")  # the mask dropped
    broken = run(copy, cache, code)
    assert broken["future"] > 0.1, "the trace made before the change was served"
    assert len(list((cache / "traces").glob("*.safetensors"))) == 2  # one entry per version of the code


def test_a_cached_fact_is_recomputed_when_its_code_changes(project):
    copy, folder, cache = project
    code = ("import json; from facts.counts import parameter_counts; "
            f"print(json.dumps(parameter_counts({str(folder)!r})))")
    first = run(copy, cache, code)
    assert run(copy, cache, code) == first
    edit(copy / "facts" / "counts.py", 'return {"total": sum(int(p.numel()) for p in net.parameters())',
         'return {"total": 1 + sum(int(p.numel()) for p in net.parameters())')
    assert run(copy, cache, code)["total"] == first["total"] + 1


def test_a_fact_depending_on_model_code_is_recomputed_when_the_model_changes(project):
    """Facts are keyed on model/ too: a change in the transformer reaches every derived value."""
    copy, folder, cache = project
    code = (f"import json; from model.trace import get_trace; from facts.prediction import temperature_table; "
            f"t = get_trace({PROMPT!r}, {str(folder)!r}, 'cpu'); print(json.dumps(temperature_table(t, {str(folder)!r})))")
    first = run(copy, cache, code)
    edit(copy / "model" / "transformer.py", "logits = x @ self.weight(\"unembed.W_U\")\n",
         "logits = 2 * (x @ self.weight(\"unembed.W_U\"))\n")
    second = run(copy, cache, code)
    assert second["logits"][0] == pytest.approx(2 * first["logits"][0], rel=1e-5)


def test_an_edited_cache_entry_is_not_believed(project):
    """A derived entry whose value was edited fails its checksum and is recomputed."""
    copy, folder, cache = project
    code = ("import json; from facts.counts import parameter_counts; "
            f"print(json.dumps(parameter_counts({str(folder)!r})))")
    first = run(copy, cache, code)
    (entry,) = (cache / "derived" / "parameters").glob("*.json")
    data = json.loads(entry.read_text())
    data["value"]["total"] = 7
    entry.write_text(json.dumps(data))
    assert run(copy, cache, code) == first


def test_an_edited_cached_trace_is_not_believed(project):
    """Made-up tokens written into a cached trace's metadata never come back: the trace is rebuilt."""
    copy, folder, cache = project
    code = (f"import json; from model.trace import get_trace; t = get_trace({PROMPT!r}, {str(folder)!r}, 'cpu'); "
            "print(json.dumps({'pieces': t.pieces, 'tokens': t.tokens}))")
    first = run(copy, cache, code)
    (meta,) = (cache / "traces").glob("*.json")
    data = json.loads(meta.read_text())
    data["pieces"][0] = "HACKED"
    meta.write_text(json.dumps(data))
    assert run(copy, cache, code) == first
