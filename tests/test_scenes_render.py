"""Low-quality smoke renders through the CLI: video, captions and sidecar for every scene."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from narration_checks import (SILENT_CPS, blank_share, cue_problems, cues_inside_beats, heard_words, stream_seconds,
                              words)
from pipeline.captions import parse_srt
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
    args += ["--analogy", "queen-woman+man"] if prompt is None else ["--prompt", prompt, "--theme", "light", "--voice", "none"]
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
        check_narration(tmp_path, name, meta, voiced=prompt is None)
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


DARK_BACKGROUND, LIGHT_BACKGROUND = (0x14, 0x16, 0x1B), (0xFB, 0xFA, 0xF6)  # the themes' backgrounds


def check_narration(folder: Path, name: str, meta: dict, voiced: bool) -> None:
    """A narrated clip: sound as long as the picture, readable cues inside their beats, the
    narration recorded in the sidecar, and no empty stage mid-clip."""
    cues = parse_srt((folder / f"{name}.srt").read_text(encoding="utf-8"))
    assert cue_problems(cues, cps_limit=17.0 if voiced else SILENT_CPS) == []
    assert cues_inside_beats(cues, meta["chapters"]) == []
    video, audio = stream_seconds(folder / f"{name}.mp4")
    said = meta["narration"]
    assert [c["text"] for c in said["cues"]] == [c.text for c in cues] and said["text"]
    if voiced:
        assert said["voice"] == "joe" and said["speed"] == 1.0
        assert audio is not None and abs(audio - video) <= 0.1, (name, video, audio)
        # paced by the narration: the voice speaks through most of each cue (not a fixed slot)
        spoken = sum(c["spoken_s"] for c in said["cues"])
        assert spoken > 0.6 * sum(c.end - c.start for c in cues), name
    else:
        assert said["voice"] == "none" and audio is None
    share, when = blank_share(folder / f"{name}.mp4", DARK_BACKGROUND if voiced else LIGHT_BACKGROUND, every=1.0)
    assert share <= 0.02, f"{name}: empty stage at {when}"


@pytest.mark.slow
def test_what_is_heard_under_each_caption_is_that_caption(tmp_path):
    """An offline recogniser (pocketsphinx, English) listens to the sound under each cue of a
    narrated render: it hears more of that cue's words than of the cues before and after.
    With --burn-captions the cue is also drawn in the picture while it is heard."""
    from pipeline.audio import read_audio

    out = subprocess.run([sys.executable, str(ROOT / "render.py"), "render", "softmax", "--out", str(tmp_path),
                          "--quality", "low", "--fps", "4", "--quiet", "--prompt", "The capital of France is",
                          "--burn-captions"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    cues = parse_srt((tmp_path / "softmax.srt").read_text(encoding="utf-8"))
    samples, rate = read_audio(tmp_path / "softmax.mp4")
    heard = [set(heard_words(samples[0][int(c.start * rate): int(c.end * rate)], rate)) for c in cues]
    hits = []
    for i, cue in enumerate(cues):
        own = len(words(cue.text) & heard[i]) / max(1, len(words(cue.text)))
        others = [len(words(cues[j].text) & heard[i]) / max(1, len(words(cues[j].text)))
                  for j in (i - 1, i + 1) if 0 <= j < len(cues) and words(cues[j].text)]
        hits.append((own, max(others, default=0.0)))
    assert sum(own for own, _ in hits) / len(hits) >= 0.5, hits
    assert sum(own >= other for own, other in hits) >= 0.8 * len(hits), hits
    band = caption_band(tmp_path / "softmax.mp4", [(c.start + c.end) / 2 for c in cues] + [cues[-1].end + 0.3])
    assert all(lit > 0.01 for lit in band[:-1]), band  # text in the caption band while each cue is heard
    assert band[-1] < min(band[:-1]) / 3, band  # and far less once the narration is over (only the stage's own)


def caption_band(path: Path, times: list[float]) -> list[float]:
    """Share of bright (text) pixels in the burned-caption band, centred under the stage, at each time."""
    import av
    import numpy as np

    found, todo = [], sorted(times)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(video=0):
            t = float(frame.pts * stream.time_base)
            while todo and t + 0.25 >= todo[0]:
                img = frame.to_ndarray(format="rgb24")
                h, w = img.shape[:2]
                band = img[int(0.80 * h): int(0.93 * h), int(0.25 * w): int(0.75 * w)]
                found.append(float((band.min(axis=2) > 200).mean()))
                todo.pop(0)
    return found
