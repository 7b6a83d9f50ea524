"""The base class of every scene: live parameters, theme, trace, provenance tag, beats.

A scene subclass lists its beats (method names) in `beats`; `construct` runs each as its
own section (`next_section`), so lecturers can cut clips. Each beat must add at least one
subcaption quoting live values (`self.caption`).

Parameters come from environment variables (see scenes/parts/params.py), so
`manim -ql scenes/tokens.py Tokens` works with the defaults. With MT_STILLS=DIR set, the
last frame of every beat is also written to DIR/NN-beat.png (for contact sheets).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from manim import DOWN, LEFT, UL, UP, ImageMobject, Mobject, Scene, Text, VGroup, config

from . import compat
from .components import FRAME_MARGIN, ProvenanceTag, label
from .data import SceneData
from .params import Params
from .theme import TITLE, get_theme


class TransformerScene(Scene):
    beats: tuple[str, ...] = ()
    title_text: str = ""

    def __init__(self, *args, **kwargs):
        compat.install()  # before manim builds its renderer and encoders
        super().__init__(*args, **kwargs)

    def setup(self):
        if os.environ.get("MT_FAIL_SCENE") == type(self).__name__:  # fault injection, for the CLI's failure tests
            raise RuntimeError(f"{type(self).__name__} failed on purpose (MT_FAIL_SCENE)")
        self.params = Params.from_env()
        self.theme = get_theme(self.params.theme)
        self.camera.background_color = self.theme.background
        self.data = SceneData(self.params)
        self.trace = self.data.trace
        self.seen: dict[int, Mobject] = {}  # every mobject ever added, for tests
        self.layout_problems: list[str] = []
        self.captions: list[str] = []
        self.beat_captions: dict[str, int] = {}
        self.current_beat = ""
        self.sections_run: list[str] = []
        choice = self.data.choice
        self.provenance = ProvenanceTag(self.trace.meta["model"]["display_name"], choice.layer, choice.head,
                                        choice.auto, choice.score, self.trace.hash, self.theme)
        self.header = None
        self.add(self.provenance)
        if self.title_text:
            self.header = label(self.title_text, self.theme, TITLE * 0.75, color=self.theme.dim, bold=True)
            self.header.to_corner(UL, buff=0.3)
            self.add(self.header)

    # ---------------------------------------------------------------- beats
    def construct(self):
        self.beat_starts: list[float] = []
        for beat in self.beats:
            self.current_beat = beat
            self.beat_captions[beat] = 0
            self.next_section(beat)
            self.sections_run.append(beat)
            self.beat_starts.append(self.time)
            getattr(self, beat)()
            self.check_layout(beat)
            self.save_still(beat)
        self.flush_caption(final=True)
        self.report_progress(finished=True)

    def play(self, *args, **kwargs):
        super().play(*args, **kwargs)
        self.report_progress()

    def report_progress(self, finished: bool = False) -> None:
        """With MT_PROGRESS=FILE, keep FILE up to date: beats, beat start times, seconds rendered.

        The CLI reads it for its progress display and for the chapter list (one chapter a beat)."""
        path = os.environ.get("MT_PROGRESS")
        if not path:
            return
        state = {"beats": list(self.beats), "beat": len(self.sections_run), "starts": getattr(self, "beat_starts", []),
                 "time": self.time, "fps": config.frame_rate, "finished": finished}
        tmp = f"{path}.tmp"
        Path(tmp).write_text(json.dumps(state))
        os.replace(tmp, path)

    def save_still(self, beat: str) -> None:
        """With MT_STILLS=DIR, write the last frame of each beat to DIR/NN-beat.png."""
        folder = os.environ.get("MT_STILLS")
        if not folder:
            return
        from PIL import Image

        self.renderer.update_frame(self, ignore_skipping=True)
        path = Path(folder) / f"{self.beats.index(beat) + 1:02d}-{beat}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.renderer.get_frame()).convert("RGB").save(path)

    def caption(self, text: str, duration: float = 3.0) -> None:
        """A subcaption for the current beat (quote live values in it). It stays up until the
        next caption (at least `duration` seconds when nothing follows), so captions never overlap."""
        pending = getattr(self, "pending_caption", None)
        if pending is not None:  # give the previous caption time to be read (about 18 characters a second)
            short = min(len(pending[0]) / 18, 5.0) - (self.time - pending[1])
            if short > 0.1:
                self.wait(min(short, 2.0))
        self.flush_caption()
        self.captions.append(text)
        self.beat_captions[self.current_beat] = self.beat_captions.get(self.current_beat, 0) + 1
        self.pending_caption = (text, self.time, duration)

    def flush_caption(self, final: bool = False) -> None:
        pending = getattr(self, "pending_caption", None)
        if pending is None:
            return
        text, start, duration = pending
        length = self.time - start
        if final or length <= 0:
            length = max(length, min(duration, 2.0))
        self.add_subcaption(text, duration=length, offset=start - self.time)
        self.pending_caption = None

    def clear_stage(self, *keep: Mobject, run_time: float = 0.6):
        """Fade out everything but the header, provenance tag and `keep`."""
        from manim import FadeOut

        fixed = {id(self.provenance), id(self.header)} | {id(m) for m in keep}
        gone = [m for m in self.mobjects if id(m) not in fixed]
        if gone:
            self.play(*[FadeOut(m) for m in gone], run_time=run_time)

    # ---------------------------------------------------------------- bookkeeping
    def add(self, *mobjects: Mobject):
        for mob in mobjects:
            for m in mob.get_family() if hasattr(mob, "get_family") else [mob]:
                self.seen[id(m)] = m
        return super().add(*mobjects)

    def stage_top(self) -> float:
        """The y below which content may go (under the header)."""
        return (self.header.get_bottom()[1] - 0.15) if self.header else config.frame_height / 2 - FRAME_MARGIN

    def check_layout(self, beat: str) -> None:
        """Record any text or image on screen that reaches past the frame."""
        w, h = config.frame_width / 2, config.frame_height / 2
        eps = 0.02
        for top in self.mobjects:
            for m in top.get_family():
                if not isinstance(m, (Text, ImageMobject)) or (isinstance(m, Text) and len(m.points) == 0 and not m.submobjects):
                    continue
                if getattr(m, "fill_opacity", 1) == 0 and isinstance(m, Text) and m.get_fill_opacity() == 0:
                    continue
                left, bottom = m.get_corner(DOWN + LEFT)[:2]
                right, topy = m.get_corner(UP + np.array([1, 0, 0]))[:2]
                if left < -w - eps or right > w + eps or bottom < -h - eps or topy > h + eps:
                    self.layout_problems.append(
                        f"{beat}: {getattr(m, 'text', type(m).__name__)!r} at x {left:.2f}..{right:.2f}, y {bottom:.2f}..{topy:.2f}")
