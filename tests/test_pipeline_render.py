"""The lecture workflow end to end, on real low-quality renders (slow)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEFAULT_PROMPT, ROOT
from pipeline import captions

pytestmark = pytest.mark.slow
FAST = ["--quality", "low", "--fps", "2", "--quiet"]  # real renders, few frames
SILENT = [*FAST, "--voice", "none"]  # where the voice is not what is tested (test_lecture and the narration tests check it)


def cli(*args, **kw):
    return subprocess.run([sys.executable, str(ROOT / "render.py"), *args], capture_output=True, text=True, cwd=ROOT, timeout=900, **kw)


LECTURE = """title = "Two prompts, three clips"
[defaults]
prompt = "The fluffy blue creature roamed the verdant forest"
quality = "low"

[[scene]]
name = "tokens"

[[scene]]
name = "softmax"
title = "Scores become <weights>"
notes = "Ask: why exponentiate first?"

# the same scene again, for another prompt: its own trace, its own stem
[[scene]]
name = "tokens"
prompt = "The capital of France is"
"""


def test_lecture_writes_every_output(tmp_path, default_trace):
    """A small narrated lecture of the shipped kind (the shipped files are checked to load in
    test_pipeline.py; `render all` renders every scene, silent, in test_scenes_render.py): every
    output, sidecars that match the trace, the voice (sound as long as the picture, cues at
    subtitle pace, what a recogniser hears under each cue), and a page that plays in Chromium."""
    from test_scenes_render import check_heard, check_narration

    (tmp_path / "lecture.toml").write_text(LECTURE, encoding="utf-8")
    lecture_out = tmp_path / "out"
    result = cli("lecture", str(tmp_path / "lecture.toml"), "--out", str(lecture_out), "--jobs", "2", *FAST)
    assert result.returncode == 0, result.stderr
    for stem in ("tokens", "softmax", "tokens-2"):
        for suffix in (".mp4", ".srt", ".vtt", ".chapters.vtt", ".json", ".poster.png"):
            assert (lecture_out / f"{stem}{suffix}").stat().st_size > 0, stem + suffix
    assert (lecture_out / "index.html").is_file()
    assert not list(lecture_out.glob(".*"))  # no temporary files or work folders left

    # The sidecar matches the trace; captions parse and quote real values.
    side = json.loads((lecture_out / "tokens.json").read_text())
    assert side["trace_hash"] == default_trace.hash and side["tokens"] == default_trace.tokens
    assert side["model_fingerprint"] == default_trace.meta["model"]["fingerprint"]
    assert (side["layer"], side["head"]) == (1, 2) and "creature" in side["head_choice"]["reason"]
    assert side["render"]["fps"] == 2 and side["versions"]["torch"]
    cues = captions.parse_srt((lecture_out / "tokens.srt").read_text())
    assert cues and cues == captions.parse_srt((lecture_out / "tokens.vtt").read_text())
    text = " ".join(c.text for c in cues)
    assert f"{len(default_trace.tokens)} tokens" in text
    creature = default_trace.pieces.index(" creature")
    assert str(default_trace.tokens[creature]) in text
    # The second tokens clip is for another prompt: its own trace, its own captions.
    second = json.loads((lecture_out / "tokens-2.json").read_text())
    assert second["prompt"] == "The capital of France is" and side["prompt"] == DEFAULT_PROMPT
    assert second["trace_hash"] != side["trace_hash"]
    assert "France" in " ".join(c.text for c in captions.parse_srt((lecture_out / "tokens-2.srt").read_text()))
    page = (lecture_out / "index.html").read_text(encoding="utf-8")
    assert "Two prompts, three clips" in page
    # a scene's own title heads its clip (escaped), its notes sit under it; the others keep their names
    assert "<h2>2. Scores become &lt;weights&gt;</h2>" in page and '<p class="notes">Ask: why exponentiate first?</p>' in page
    assert "<h2>1. tokens</h2>" in page and page.count('class="notes"') == 1
    for stem in ("tokens", "softmax", "tokens-2"):  # each clip on the page, in the lecture's order, narrated
        assert f'<source src="{stem}.mp4" type="video/mp4">' in page and f'poster="{stem}.poster.png"' in page
        check_narration(lecture_out, stem, json.loads((lecture_out / f"{stem}.json").read_text()), voiced=True)
    assert page.index('src="tokens.mp4"') < page.index('src="softmax.mp4"') < page.index('src="tokens-2.mp4"')
    check_heard(lecture_out / "softmax.mp4", lecture_out / "softmax.srt")
    check_page_in_chromium(lecture_out)


def chromium_driver():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make setup installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def check_page_in_chromium(lecture_out):
    driver = chromium_driver()
    try:
        driver.get((lecture_out / "index.html").as_uri())
        deadline = time.time() + 30
        while time.time() < deadline:
            state = driver.execute_script(
                "return Array.from(document.querySelectorAll('video')).map(v => [v.duration, v.error && v.error.code]);")
            tracks = driver.execute_script(
                "return Array.from(document.querySelectorAll('track')).map(t => [t.kind, t.readyState]);")
            if state and all(d and d > 0 for d, _ in state) and all(r == 2 for _, r in tracks):
                break
            time.sleep(0.5)
        assert len(state) == 3
        assert all(d > 0 and err is None for d, err in state), state
        assert tracks and all(r == 2 for _, r in tracks), tracks  # 2 = loaded
        assert {k for k, _ in tracks} == {"captions", "chapters"}
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


def test_every_format_and_sections(tmp_path):
    lecture = tmp_path / "formats.toml"
    lecture.write_text("sections = true\n" + "".join(f'[[scene]]\nname = "tokens"\nformat = "{f}"\n\n'
                                                    for f in ("mp4", "webm", "gif", "mov")))  # png: test_determinism
    out = tmp_path / "out"
    result = cli("lecture", str(lecture), "--out", str(out), "--jobs", "2", "--quality", "low", "--fps", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    import av

    from narration_checks import stream_seconds

    for stem, fmt in (("tokens", "mp4"), ("tokens-2", "webm"), ("tokens-3", "gif"), ("tokens-4", "mov")):
        with av.open(str(out / f"{stem}.{fmt}")) as video:
            stream = video.streams.video[0]
            assert stream.frames > 0 or video.duration
            frame = next(video.decode(video=0)).to_ndarray(format="rgba")
            if fmt == "mov":
                assert frame[..., 3].min() == 0  # transparent background, for compositing
        sections = sorted(p for p in (out / f"{stem}.sections").iterdir() if p.suffix in (".mp4", ".webm", ".mov", ".gif"))
        assert len(sections) == 3  # one clip per beat
        for clip in [out / f"{stem}.{fmt}", *sections]:  # narrated: sound in every format that carries it (not gif)
            video_s, audio_s = stream_seconds(clip)
            if fmt == "gif":
                assert audio_s is None
            else:
                assert audio_s is not None and abs(audio_s - video_s) <= 0.1, (clip.name, video_s, audio_s)
        for clip in sections:  # each clip has its own captions, inside its own length
            cues = captions.parse_srt(clip.with_suffix(".srt").read_text(encoding="utf-8"))
            assert cues and cues[0].start < 1.0 and cues[-1].end <= stream_seconds(clip)[0] + 0.05
        assert len(captions.parse_srt((out / f"{stem}.chapters.vtt").read_text())) == 3
        beats = [c["name"] for c in json.loads((out / f"{stem}.json").read_text())["chapters"]]
        assert [p.name for p in sections] == [f"{i:02d}-{b}.{fmt}" for i, b in enumerate(beats, 1)]  # named by beat
    page = (out / "index.html").read_text(encoding="utf-8")
    for stem, fmt in (("tokens", "mp4"), ("tokens-2", "webm"), ("tokens-3", "gif"), ("tokens-4", "mov")):
        assert f'href="{stem}.{fmt}" download' in page and f'href="{stem}.srt" download' in page  # a download link per clip
        for clip in sorted((out / f"{stem}.sections").glob(f"*.{fmt}")):  # and one per section, beside its chapter
            assert f'href="{stem}.sections/{clip.name}" download' in page
    from test_gif import gif_frames

    delays, _ = gif_frames(out / "tokens-3.gif")  # the GIF plays at the video's speed, to the millisecond
    assert abs(sum(delays) / 1000 - stream_seconds(out / "tokens.mp4")[0]) <= 0.011  # the mp4 of the same scene
    assert '<img class="gif" src="tokens-3.gif"' in page


def test_killed_render_keeps_the_earlier_file(tmp_path, earlier_render):
    out = tmp_path / "out"
    shutil.copytree(earlier_render[0], out)  # a render of tokens with SILENT's options
    before = (out / "tokens.mp4").read_bytes(), (out / "tokens.json").read_bytes()

    proc = subprocess.Popen([sys.executable, str(ROOT / "render.py"), "render", "tokens", "--out", str(out), "--theme", "light", *SILENT],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".render-*/tokens.progress.json")):
        time.sleep(0.2)  # midway: the worker is drawing
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ((out / "tokens.mp4").read_bytes(), (out / "tokens.json").read_bytes()) == before

    again = cli("render", "tokens", "--out", str(out), "--theme", "light", *SILENT)
    assert again.returncode == 0, again.stderr
    assert (out / "tokens.mp4").read_bytes() != before[0]
    assert json.loads((out / "tokens.json").read_text())["params"]["theme"] == "light"
    assert not list(out.glob(".*"))  # the killed run's work folder was swept, nothing else left


def test_failed_scene_does_not_stop_the_others(tmp_path):
    """...and its log, kept in --out, replaces a symlink planted there instead of writing through it."""
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    (out / "tokens.log").symlink_to(victim)
    env = {**os.environ, "MT_FAIL_SCENE": "Tokens"}  # makes the tokens worker raise (test hook in scenes/base.py)
    result = cli("render", "tokens", "cost", "--out", str(out), "--jobs", "2", *SILENT, env=env)
    assert result.returncode == 1
    assert "scene tokens failed" in result.stderr and "Traceback" not in result.stderr
    assert (out / "cost.mp4").is_file() and not (out / "tokens.mp4").exists()
    assert (out / "tokens.log").is_file() and not (out / "tokens.log").is_symlink()
    assert victim.read_text() == "not yours"


def test_workers_die_with_a_killed_cli(tmp_path):
    """SIGKILL of the CLI's own process (not its group): its manim workers stop too, at once,
    instead of rendering on with nobody to publish their work."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, str(ROOT / "render.py"), "render", "embeddings", "--out", str(tmp_path / "out"),
                             *SILENT], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children = []
    deadline = time.monotonic() + 120
    while not children and time.monotonic() < deadline:  # wait for the worker to start
        time.sleep(0.5)
        children = [int(c) for task in Path(f"/proc/{proc.pid}/task").glob("*")  # any of its threads
                    for c in (task / "children").read_text().split()] if Path(f"/proc/{proc.pid}").exists() else []
    assert children, "no worker started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(c) for c in children):
        time.sleep(0.2)
    left = [c for c in children if alive(c)]
    for c in left:
        os.kill(c, signal.SIGKILL)
    assert not left, "workers outlived the CLI"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_narration_that_cannot_be_synthesized_fails_that_scene_only(tmp_path):
    """A voice that breaks on one scene's text: that scene fails with the reason in the summary,
    the other renders narrated. (A stand-in `piper` module, first on the workers' path, fails on
    lines mentioning the tokenizer and hands everything else to the real piper; the unusual
    --speed keeps the audio cache from answering instead.)"""
    fake = tmp_path / "fake" / "piper"
    fake.mkdir(parents=True)
    (fake / "__main__.py").write_text(
        "import runpy, sys\n"
        "args = sys.argv[1:]\n"
        "text = open(args[args.index('-i') + 1], encoding='utf-8').read()\n"
        "if 'tokenizer' in text:\n"
        "    sys.exit('piper: the voice model could not be run (test fault)')\n"
        "sys.path.pop(0)\n"
        "for name in [m for m in sys.modules if m == 'piper' or m.startswith('piper.')]:\n"
        "    del sys.modules[name]\n"
        "runpy.run_module('piper', run_name='__main__', alter_sys=True)\n")
    (fake / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    out = tmp_path / "out"
    result = cli("render", "tokens", "cost", "--out", str(out), "--jobs", "2", "--speed", "1.37", *FAST, env=env)
    assert result.returncode == 1, result.stderr
    assert "scene tokens failed" in result.stderr and "narration failed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "tokens.mp4").exists() and (out / "cost.mp4").is_file()
    meta = json.loads((out / "cost.json").read_text(encoding="utf-8"))
    assert meta["narration"]["voice"] == "joe" and meta["narration"]["speed"] == 1.37


def test_preview_draws_the_beats_stills_only(tmp_path, earlier_render):
    """--preview: one still per beat and no video, made without drawing the animations; each still
    is the frame a full render shows at the end of that beat (the earlier render's poster is its
    second beat's), and the page shows the stills with what is said over each."""
    from PIL import Image, ImageChops

    earlier, _ = earlier_render
    out = tmp_path / "out"
    result = cli("lecture", str(write_preview_lecture(tmp_path)), "--out", str(out), "--preview", "--quiet")
    assert result.returncode == 0, result.stderr
    side = json.loads((out / "tokens.json").read_text(encoding="utf-8"))
    beats = [c["name"] for c in side["chapters"]]
    stills = sorted((out / "tokens").glob("*.png"))
    assert [p.name for p in stills] == [f"{i:02d}-{b}.png" for i, b in enumerate(beats, 1)] and len(beats) >= 2
    assert not list(out.glob("*.mp4")) and side["render"]["format"] == "png" and side["narration"]["voice"] == "none"
    same = ImageChops.difference(Image.open(stills[1]).convert("RGB"), Image.open(earlier / "tokens.poster.png").convert("RGB"))
    assert same.getbbox() is None, "the preview's still differs from the full render's frame at the beat's end"
    cues = captions.parse_srt((out / "tokens.srt").read_text(encoding="utf-8"))
    assert cues and cues[-1].end <= side["duration_s"] + 0.01  # captions from the scene's own cues, timed as a render's
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<video" not in page
    for still, beat in zip(stills, beats):
        assert f'<img src="tokens/{still.name}"' in page
    first_cue = cues[0].text.replace("\n", " ")
    assert html_escape(first_cue) in page  # what is said over the first beat, under its still


def write_preview_lecture(folder: Path) -> Path:
    path = folder / "preview.toml"
    path.write_text('title = "Preview"\n[[scene]]\nname = "tokens"\n', encoding="utf-8")
    return path


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def test_slides_advance_beat_by_beat_in_chromium(tmp_path):
    """`slides tokens cost`: the reveal.js deck opens from file:// in headless Chromium (no network:
    reveal.js is copied beside it), has one slide per beat, each playing its beat's clip with that
    beat's narration as speaker notes, and the keyboard walks through every beat in order."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from pipeline.slides import reveal_missing

    if reveal_missing():
        pytest.skip(reveal_missing())
    driver = chromium_driver()  # skips here when Chromium is missing, before rendering anything
    driver.quit()
    out = tmp_path / "out"
    result = cli("slides", "tokens", "cost", "--out", str(out), *SILENT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str((out / "slides.html").resolve())  # one line: where the deck is
    beats = []
    for stem in ("tokens", "cost"):
        side = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        for chapter in side["chapters"]:
            said = " ".join(c["text"].replace("\n", " ") for c in side["narration"]["cues"] if c["beat"] == chapter["name"])
            beats.append((stem, chapter["name"], said))
    page = (out / "slides.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # nothing from a CDN
    driver = chromium_driver()
    try:
        driver.get((out / "slides.html").as_uri())
        deadline = time.time() + 30
        while time.time() < deadline and not driver.execute_script("return window.Reveal && Reveal.isReady()"):
            time.sleep(0.2)
        assert driver.execute_script("return Reveal.getTotalSlides()") == len(beats)
        body = driver.find_element(By.TAG_NAME, "body")
        for index, (stem, beat, said) in enumerate(beats):
            assert driver.execute_script("return Reveal.getIndices().h") == index
            slide = driver.execute_script("return Reveal.getCurrentSlide().dataset.beat")
            src = driver.execute_script("return Reveal.getCurrentSlide().querySelector('video').getAttribute('src')")
            assert slide == beat and src.startswith(f"{stem}.sections/") and src.endswith(f"-{beat}.mp4") and (out / src).is_file()
            notes = driver.execute_script("return Reveal.getSlideNotes()")
            assert said and html_unescape(notes).strip() == said  # this beat's narration, as speaker notes
            wait_until = time.time() + 15  # the slide's clip loads and plays (autoplay)
            while time.time() < wait_until and not driver.execute_script(
                    "const v = Reveal.getCurrentSlide().querySelector('video'); return v.readyState >= 2 && !v.error"):
                time.sleep(0.2)
            assert driver.execute_script("const v = Reveal.getCurrentSlide().querySelector('video'); return v.duration > 0")
            body.send_keys(Keys.ARROW_RIGHT)
            time.sleep(0.3)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
    check_pptx(out, beats)
    # a lecture's own title for a scene heads its slides; its notes open the first beat's speaker notes
    from pipeline.slides import deck_html

    deck = deck_html(out, ["tokens", "cost"], "Deck", "dark", [{"title": "Pieces <of> words", "notes": "Ask: why?"}, {}])
    text = deck.read_text(encoding="utf-8")
    assert text.count('<p class="where">1. Pieces &lt;of&gt; words · ') == len([b for b in beats if b[0] == "tokens"])
    assert f'<aside class="notes">Ask: why?<br><br>{html_escape(beats[0][2])}</aside>' in text


def check_pptx(out: Path, beats: list[tuple[str, str, str]]) -> None:
    """The same clips as PPTX (what `slides --to pptx` writes after the render): one slide per
    beat, each with its clip as a video and the beat's narration in the notes."""
    pptx = pytest.importorskip("pptx")
    from pipeline.slides import deck_pptx

    deck = pptx.Presentation(str(deck_pptx(out, ["tokens", "cost"], "Test deck")))
    assert len(deck.slides) == len(beats)
    for slide, (stem, beat, said) in zip(deck.slides, beats):
        movies = [s for s in slide.shapes if s.shape_type == pptx.enum.shapes.MSO_SHAPE_TYPE.MEDIA]
        assert len(movies) == 1 and slide.notes_slide.notes_text_frame.text == said
        assert any(p.partname.endswith(".mp4") for p in slide.part.package.iter_parts())
    assert not list(out.glob(".*"))  # no temporary files left


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)
