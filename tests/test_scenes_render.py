"""Low-quality smoke renders through the CLI: video, captions and sidecar for every scene."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scenes.registry import SCENES
from test_promises import probe

ROOT = Path(__file__).resolve().parent.parent
TRICKY = 'Zoë said <b> & "naïve" antidisestablishmentarianism'


@pytest.mark.slow
@pytest.mark.parametrize("prompt", [None, TRICKY], ids=["default", "tricky"])
def test_render_all_scenes(tmp_path, prompt):
    """Real renders at 480p, at 4 frames a second to keep the suite short; both cores.

    default: `render all` (README: every scene in storyboard order, with an index.html), with a
    non-default --analogy that must reach word-vectors. tricky: markup, quotes and accents in the
    prompt, light theme, every other scene (the layout tests build all of them with such prompts)."""
    from facts import geometry

    names = list(SCENES) if prompt is None else list(SCENES)[::2]
    args = [sys.executable, str(ROOT / "render.py"), "render", *(["all"] if prompt is None else names), "--out", str(tmp_path),
            "--jobs", "2", "--quality", "low", "--fps", "4", "--quiet"]
    args += ["--analogy", "queen-woman+man"] if prompt is None else ["--prompt", prompt, "--theme", "light"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in names:
        assert (tmp_path / f"{name}.mp4").stat().st_size > 5_000
        width, height, fps, frames = probe(tmp_path / f"{name}.mp4")
        assert (width, height, fps) == (854, 480, 4.0) and frames > 0  # --quality low, --fps 4: what came out
        srt = (tmp_path / f"{name}.srt").read_text(encoding="utf-8")
        assert srt.count("-->") >= 4
        meta = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert meta["prompt"] == (prompt or "The fluffy blue creature roamed the verdant forest")
        assert {"model_fingerprint", "layer", "head", "trace_hash", "versions"} <= set(meta)
        assert meta["render"] == {"quality": "low", "fps": 4, "format": "mp4", "sections": False, "resolution": 480}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    if prompt is not None:
        return
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([\w-]+)">\s*<h2>(\d+)\. ([\w-]+)</h2>', page)
    assert [s[0] for s in sections] == list(SCENES)  # every scene, in storyboard order
    assert [int(s[1]) for s in sections] == list(range(1, len(SCENES) + 1))
    for name in SCENES:
        body = page.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]
        assert f'<source src="{name}.mp4" type="video/mp4">' in body and f'poster="{name}.poster.png"' in body
    # The analogy reached the word-vectors scene: in its parameters, its captions, and the answer it shows.
    side = json.loads((tmp_path / "word-vectors.json").read_text(encoding="utf-8"))
    assert side["params"]["analogy"] == ["queen", "woman", "man"]
    captions = " ".join(side["captions"])
    assert re.search(r"'\s?queen' − '\s?woman' \+ '\s?man'", captions), captions
    top = geometry.analogy(("queen", "woman", "man"), "smollm2-135m", 5)["nearest"][0]
    assert f"{top['piece']!r}, cosine {top['cosine']:.2f}" in captions  # the second analogy's real answer
    assert "uncle" not in captions  # not the default analogy
