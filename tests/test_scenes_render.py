"""Low-quality smoke renders through the CLI: video, captions and sidecar for every scene."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    """Real renders at 480p, at 2 frames a second to keep the suite short; both cores.

    default: `render all` (README: every scene in storyboard order, with an index.html), silent
    (paced for reading), with a non-default --analogy that must reach word-vectors; the voice is
    checked on test_pipeline_render's narrated lecture. tricky: markup, quotes and accents in the
    prompt, light theme, burned captions, on the two scenes that draw the prompt's text most (its
    pieces in tokens, the attention grid's labels); the layout tests build every scene, prediction's
    running text included, with such prompts."""
    from facts import geometry

    names = list(SCENES) if prompt is None else ["tokens", "attention-pattern"]
    # 2 frames a second; 4 for the burned-caption render, whose check needs a frame on each side
    # of a cue change
    fps = rate = 2 if prompt is None else 4
    args = [sys.executable, str(ROOT / "render.py"), "render", *(["all"] if prompt is None else names), "--out", str(tmp_path),
            "--jobs", "2", "--quality", "low", "--fps", str(fps), "--quiet", "--voice", "none"]
    args += ["--analogy", "queen-woman+man"] if prompt is None else ["--prompt", prompt, "--theme", "light", "--burn-captions"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in names:
        assert (tmp_path / f"{name}.mp4").stat().st_size > 5_000
        width, height, fps, frames = probe(tmp_path / f"{name}.mp4")
        assert (width, height, fps) == (854, 480, float(rate)) and frames > 0  # --quality low, --fps: what came out
        srt = (tmp_path / f"{name}.srt").read_text(encoding="utf-8")
        assert srt.count("-->") >= 4
        meta = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert meta["prompt"] == (prompt or "The fluffy blue creature roamed the verdant forest")
        assert {"model_fingerprint", "layer", "head", "trace_hash", "versions"} <= set(meta)
        assert meta["render"] == {"quality": "low", "fps": rate, "format": "mp4", "sections": False, "resolution": 480}
        check_narration(tmp_path, name, meta, voiced=False, burned=prompt is not None)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    if prompt is not None:
        check_burned_captions(tmp_path / f"{names[0]}.mp4", tmp_path / f"{names[0]}.srt")
        return
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert '<body class="dark">' in page  # the clips' theme
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
    assert "“queen” minus “woman” plus “man”" in captions, captions
    top = geometry.analogy(("queen", "woman", "man"), "smollm2-135m", 5)["nearest"][0]
    from scene_helpers import expect_spoken_number, expect_spoken_token

    answer = f"it is {expect_spoken_token(top['piece'])}, with cosine {expect_spoken_number(top['cosine'])}."
    assert answer in captions, captions  # the second analogy's real answer
    assert "uncle" not in captions  # not the default analogy


DARK_BACKGROUND, LIGHT_BACKGROUND = (0x14, 0x16, 0x1B), (0xFB, 0xFA, 0xF6)  # the themes' backgrounds


def check_narration(folder: Path, name: str, meta: dict, voiced: bool, burned: bool = False) -> None:
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
    if not burned:  # (burned-in captions would count as something on stage)
        share, when = blank_share(folder / f"{name}.mp4", DARK_BACKGROUND, every=1.0)
        assert share <= 0.02, f"{name}: empty stage at {when}"


def check_heard(video: Path, srt: Path) -> None:
    """An offline recogniser (pocketsphinx, English) listens to the sound under each cue of a
    narrated render: it hears more of that cue's words than of the cues before and after."""
    from pipeline.audio import read_audio

    cues = parse_srt(srt.read_text(encoding="utf-8"))
    samples, rate = read_audio(video)
    heard = [set(heard_words(samples[0][int(c.start * rate): int(c.end * rate)], rate)) for c in cues]
    hits = []
    for i, cue in enumerate(cues):
        own = len(words(cue.text) & heard[i]) / max(1, len(words(cue.text)))
        others = [len(words(cues[j].text) & heard[i]) / max(1, len(words(cues[j].text)))
                  for j in (i - 1, i + 1) if 0 <= j < len(cues) and words(cues[j].text)]
        hits.append((own, max(others, default=0.0)))
    assert sum(own for own, _ in hits) / len(hits) >= 0.5, hits
    assert sum(own >= other for own, other in hits) >= 0.8 * len(hits), hits


def check_burned_captions(video: Path, srt: Path) -> None:
    """--burn-captions: the caption band changes at every cue change, even where the stage above
    it holds still (the narration goes on over a still picture), and shows nothing after the last cue."""
    cues = parse_srt(srt.read_text(encoding="utf-8"))
    times = [t for a, b in zip(cues, cues[1:]) for t in (a.end - 0.3, b.start + 0.3)]
    frames = frames_at(video, times + [cues[-1].end - 0.3, cues[-1].end + 0.5])
    h = frames[0].shape[0]
    band, stage = slice(int(0.80 * h), int(0.93 * h)), slice(int(0.14 * h), int(0.78 * h))

    def changed(x, y, rows) -> float:
        return float((np.abs(x[rows].astype(int) - y[rows].astype(int)).sum(axis=2) > 60).mean())

    still = [(changed(x, y, band)) for x, y in zip(frames[0:-2:2], frames[1:-2:2]) if changed(x, y, stage) == 0.0]
    assert len(still) >= 3 and all(c > 0.003 for c in still), still  # a new cue over a still stage: the band changed
    last, after = frames[-2], frames[-1]
    assert changed(last, after, band) > 0.003  # the last cue goes away when the narration ends


def frames_at(path: Path, times: list[float]) -> list:
    """RGB frames (arrays) at the given times (the frame showing at each)."""
    import av

    out, todo = [], list(times)
    order = sorted(range(len(todo)), key=lambda i: todo[i])
    found = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        previous, k = None, 0
        for frame in container.decode(video=0):
            t = float(frame.pts * stream.time_base)
            while k < len(order) and t > todo[order[k]] + 1e-6:
                found[order[k]] = previous
                k += 1
            previous = frame.to_ndarray(format="rgb24")
        while k < len(order):
            found[order[k]] = previous
            k += 1
    out = [found[i] for i in range(len(todo))]
    return out
