"""Low-quality smoke renders through the CLI: video, captions and sidecar for every scene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scenes.registry import SCENES

ROOT = Path(__file__).resolve().parent.parent
TRICKY = 'Zoë said <b> & "naïve" antidisestablishmentarianism'


@pytest.mark.slow
@pytest.mark.parametrize("prompt", [None, TRICKY], ids=["default", "tricky"])
def test_render_all_scenes(tmp_path, prompt):
    # Real renders at 480p, at 4 frames a second to keep the suite short; both cores.
    args = [sys.executable, str(ROOT / "render.py"), "render", *SCENES, "--out", str(tmp_path), "--jobs", "2",
            "--quality", "low", "--fps", "4", "--quiet"]
    if prompt:
        args += ["--prompt", prompt, "--theme", "light"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in SCENES:
        assert (tmp_path / f"{name}.mp4").stat().st_size > 5_000
        srt = (tmp_path / f"{name}.srt").read_text(encoding="utf-8")
        assert srt.count("-->") >= 4
        meta = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert meta["prompt"] == (prompt or "The fluffy blue creature roamed the verdant forest")
        assert {"model_fingerprint", "layer", "head", "trace_hash", "versions"} <= set(meta)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
