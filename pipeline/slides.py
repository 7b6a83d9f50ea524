"""Slides from rendered clips: one slide per beat, its section clip playing, the narration of
that beat as speaker notes. Built from what a render with --sections leaves in the output
folder (SCENE.json's chapters and narration cues, SCENE.sections/NN-beat.mp4), so a deck is
always made of the same clips as the page.

- HTML: a reveal.js deck that opens from file:// with no network. reveal.js is an npm package
  that `make setup` installs into .cache/vendor (never a CDN); its files are copied next to
  the deck. Keys: arrows or space to advance, S for the speaker view with the notes.
- PPTX: python-pptx, one video per slide (poster: the frame the beat ends on), notes per slide.
  (manim-slides was not used: it needs its own Slide scene class and a matching manim; our
  beats are already sections, so the deck is built from their clips.)
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from model.cache import ROOT, atomic_path, atomic_write_text
from model.errors import UserError

from scenes.parts.theme import THEMES

from .captions import chapter_title

REVEAL = ROOT / ".cache" / "vendor" / "node_modules" / "reveal.js" / "dist"
REVEAL_FILES = ("reveal.js", "reveal.css", "theme/black.css", "theme/white.css", "plugin/notes.js")


def beats_of(out: Path, stem: str, heading: str | None = None, lecturer: str | None = None) -> list[dict]:
    """A rendered clip's beats: [{scene, beat, title, clip (path relative to out), notes}].
    heading: a lecture's title for the scene (else its name); lecturer: the lecture's notes for
    the scene, put before the first beat's narration in the speaker notes."""
    side = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    clips = sorted((out / f"{stem}.sections").glob("*.mp4"))
    if len(clips) != len(side["chapters"]):
        raise UserError(f"{stem}: {len(clips)} section clips for {len(side['chapters'])} beats (render with --sections)")
    beats = []
    for chapter, clip in zip(side["chapters"], clips):
        said = [c["text"].replace("\n", " ") for c in side["narration"]["cues"] if c.get("beat") == chapter["name"]]
        beats.append({"scene": heading or side["scene"], "beat": chapter["name"], "title": chapter_title(chapter["name"]),
                      "clip": f"{stem}.sections/{clip.name}", "notes": " ".join(said)})
    if lecturer and beats:
        beats[0]["notes"] = f"{lecturer}\n\n{beats[0]['notes']}"
    return beats


def reveal_missing() -> str | None:
    missing = [f for f in REVEAL_FILES if not (REVEAL / f).is_file()]
    if missing:
        return ("reveal.js is not installed (run `make setup`, or `npm install --prefix .cache/vendor reveal.js@6` "
                "in the project folder)")
    return None


def deck_html(out: Path, stems: list[str], title: str, theme: str, lecture: list[dict] | None = None) -> Path:
    """out/slides.html and out/reveal/ (reveal.js's files): one slide per beat of each clip.
    lecture: per stem, the lecture file's {"title", "notes"} (or None)."""
    problem = reveal_missing()
    if problem:
        raise UserError(problem)
    staging = out / ".reveal.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    for name in REVEAL_FILES:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REVEAL / name, staging / name)
    shutil.rmtree(out / "reveal", ignore_errors=True)
    staging.rename(out / "reveal")
    e = html.escape
    slides = []
    for number, stem in enumerate(stems, 1):
        extra = (lecture or [{}] * len(stems))[number - 1] or {}
        for beat in beats_of(out, stem, extra.get("title"), extra.get("notes")):
            slides.append(f"""<section data-beat="{e(beat['beat'])}">
<p class="where">{number}. {e(beat['scene'])} · {e(beat['title'])}</p>
<video data-autoplay src="{e(beat['clip'])}" preload="auto"></video>
<aside class="notes">{e(beat['notes']).replace(chr(10) + chr(10), '<br><br>')}</aside>
</section>""")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(title)}</title>
<link rel="stylesheet" href="reveal/reveal.css">
<link rel="stylesheet" href="reveal/theme/{'white' if theme == 'light' else 'black'}.css">
<style>
.reveal-viewport {{ background: {THEMES[theme].background}; }}
.reveal .where {{ font-size: 0.45em; opacity: 0.7; margin: 0 0 0.2em; }}
.reveal video {{ width: 100%; max-height: 640px; }}
</style>
</head>
<body>
<div class="reveal"><div class="slides">
{chr(10).join(slides)}
</div></div>
<script src="reveal/reveal.js"></script>
<script src="reveal/plugin/notes.js"></script>
<script>
Reveal.initialize({{ width: 1280, height: 800, hash: true, autoPlayMedia: true, plugins: [RevealNotes] }});
</script>
</body>
</html>
"""
    atomic_write_text(out / "slides.html", page)
    return out / "slides.html"


def last_frame(clip: Path, png: Path) -> None:
    """The frame a beat ends on: what the slide shows before it plays (a beat often opens on a
    near-empty screen that fills in)."""
    import av

    with av.open(str(clip)) as video:
        frame = None
        for frame in video.decode(video=0):
            pass
        frame.to_image().save(png)


def deck_pptx(out: Path, stems: list[str], title: str, lecture: list[dict] | None = None, theme: str = "dark") -> Path:
    """out/slides.pptx: one slide per beat, its clip as a video (16:9) on the clips' background,
    the narration in the notes."""
    try:
        from pptx import Presentation
        from pptx.dml.color import RGBColor
        from pptx.util import Emu, Pt
    except ImportError:
        raise UserError("python-pptx is not installed (pip install -e '.[slides]'; make setup does)") from None
    deck = Presentation()
    deck.slide_width, deck.slide_height = Emu(12192000), Emu(6858000)  # 13.333 x 7.5 in: 16:9
    blank = deck.slide_layouts[6]
    posters = out / ".slides-posters.tmp"
    posters.mkdir(exist_ok=True)
    try:
        for number, stem in enumerate(stems, 1):
            extra = (lecture or [{}] * len(stems))[number - 1] or {}
            for i, beat in enumerate(beats_of(out, stem, extra.get("title"), extra.get("notes"))):
                slide = deck.slides.add_slide(blank)
                slide.background.fill.solid()
                slide.background.fill.fore_color.rgb = RGBColor.from_string(THEMES[theme].background.lstrip("#").upper())
                box = slide.shapes.add_textbox(Emu(300000), Emu(80000), Emu(11500000), Emu(400000))
                box.text_frame.text = f"{number}. {beat['scene']} · {beat['title']}"
                run = box.text_frame.paragraphs[0].runs[0]
                run.font.size = Pt(16)
                run.font.color.rgb = RGBColor.from_string(THEMES[theme].dim.lstrip("#").upper())
                poster = posters / f"{stem}-{i}.png"
                last_frame(out / beat["clip"], poster)
                height = deck.slide_height - Emu(600000)
                width = Emu(int(height * 16 / 9))
                slide.shapes.add_movie(str(out / beat["clip"]), (deck.slide_width - width) // 2, Emu(550000), width, height,
                                       poster_frame_image=str(poster), mime_type="video/mp4")
                slide.notes_slide.notes_text_frame.text = beat["notes"]
        deck.core_properties.title = title
        with atomic_path(out / "slides.pptx") as tmp:
            deck.save(str(tmp))
    finally:
        shutil.rmtree(posters, ignore_errors=True)
    return out / "slides.pptx"
