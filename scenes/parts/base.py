"""The base class of every scene: live parameters, theme, trace, provenance tag, beats.

A scene subclass lists its beats (method names) in `beats`; `construct` runs each as its
own section (`next_section`), so lecturers can cut clips. Each beat must add at least one
narration quoting live values (`self.say`): it becomes the voice and the captions,
and the beat lasts as long as its narration.

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

from . import compat, narration
from . import voice as voice_mod
from .components import FRAME_MARGIN, BurnedCaptions, ProvenanceTag, label
from .data import SceneData
from .params import Params
from .plots import box_of
from .theme import TITLE, get_theme

PHRASE_PAUSE = 0.2  # seconds of quiet after a cue that ends mid-sentence
SENTENCE_PAUSE = 0.45  # ... after a cue that ends a sentence
BEAT_PAUSE = 0.6  # the picture holds this long after a beat's narration ends


def text_collisions(mobjects, eps: float = 0.03) -> list[str]:
    """Pairs of visible texts whose boxes overlap by more than `eps` in both x and y.
    Texts overlap only by mistake here: every label has its own place."""
    texts = [m for top in mobjects for m in top.get_family()
             if isinstance(m, Text) and m.submobjects and m.get_fill_opacity() > 0 and m.text.strip()]
    if len(texts) < 2:
        return []
    boxes = np.array([box_of(m) for m in texts])  # x0 y0 x1 y1
    dx = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    dy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    hits = np.argwhere(np.triu((dx > eps) & (dy > eps), k=1))
    same = lambda i, j: texts[i].text == texts[j].text and np.abs(boxes[i] - boxes[j]).max() < eps  # a copy on itself: one text to the eye
    return [f"{texts[i].text!r} overlaps {texts[j].text!r}" for i, j in hits if not same(i, j)]


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
        self.start_narration()
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
            self.hold_for_narration()
            self.wait(BEAT_PAUSE)
            self.check_layout(beat)
            self.save_still(beat)
        self.write_captions()
        self.report_progress(finished=True)

    def play(self, *args, **kwargs):
        if self.outgoing:  # what clear_stage sent off fades out while the new beat comes in
            from manim import FadeOut

            args = (*args, *[FadeOut(m) for m in self.outgoing if m in self.mobjects])
            self.outgoing = []
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

    # ---------------------------------------------------------------- narration
    def start_narration(self) -> None:
        self.cues: list[dict] = []  # {"start", "end", "text", "beat", "audio"}: every caption cue
        self.narration_end = 0.0
        self.outgoing: list[Mobject] = []  # faded out by the next play (clear_stage)
        self.voice = None
        if self.params.voice != "none":
            reason = voice_mod.missing(self.params.voice)
            if reason:
                print(f"note: {reason}; rendering silently")
            else:
                self.voice = voice_mod.Voice(self.params.voice, self.params.speed)
        self.burned = None
        if self.params.burn_captions:
            self.burned = BurnedCaptions(self.theme)
            self.burned.add_updater(lambda m, dt: m.show(self.cue_at(self.time)))  # renderer time: advances per frame
            self.add(self.burned)

    def say(self, text: str) -> None:
        """Narrate `text` (quote live values in it). What was said before is finished first;
        the animations that follow play while it is spoken. Each cue of the text becomes a
        caption, on screen exactly while the voice reads it (silent renders: reading speed)."""
        self.hold_for_narration()
        texts = narration.cues(text)
        if self.voice is not None:
            clips = self.voice.speak([narration.spoken(t) for t in texts])
            seconds = [voice_mod.wav_seconds(c) for c in clips]
        else:
            clips, seconds = [None] * len(texts), [narration.reading_seconds(t) for t in texts]
        t = max(self.time, self.narration_end)  # a wait can end a frame early
        for cue, clip, spoken_s in zip(texts, clips, seconds):
            shown = max(spoken_s, len(cue.replace("\n", " ")) / narration.MAX_CPS)
            if clip is not None:
                self.add_sound(str(clip), time_offset=t - self.time)
            pause = SENTENCE_PAUSE if cue.rstrip().endswith((".", "?", "!", ")")) else PHRASE_PAUSE
            self.cues.append({"start": t, "end": t + shown + pause, "text": cue, "beat": self.current_beat,
                              "audio": str(clip) if clip else None, "spoken_s": spoken_s})
            t += shown + pause
        self.narration_end = t
        self.captions.append(text)
        self.beat_captions[self.current_beat] = self.beat_captions.get(self.current_beat, 0) + 1

    def hold_for_narration(self) -> None:
        """Keep the picture still until the narration so far has been spoken."""
        left = self.narration_end - self.time
        if left > 1e-3:
            self.wait(left)

    def piece(self, pos: int) -> str:
        """The prompt token at `pos` as narration names it: “fluffy”; a byte piece by its place
        ("byte piece 4", counting from 1), so two of them in one sentence stay apart."""
        said = narration.spoken_token(self.trace.pieces[pos])
        return f"byte piece {pos + 1}" if said == "a byte piece" else said

    def word(self, piece: str) -> str:
        """Any token piece (a prediction, a neighbour) as narration names it."""
        return narration.spoken_token(piece)

    def cue_at(self, t: float) -> str:
        for cue in self.cues:
            if cue["start"] <= t < cue["end"]:
                return cue["text"]
        return ""

    def write_captions(self) -> None:
        """Hand every cue to manim's subcaption track (.srt), and pad the sound to the video's end."""
        for cue in self.cues:
            self.add_subcaption(cue["text"], duration=cue["end"] - cue["start"], offset=cue["start"] - self.time)
        if self.voice is not None and self.cues and not self.renderer.skip_animations:
            from pydub import AudioSegment

            self.renderer.file_writer.add_audio_segment(AudioSegment.silent(0), time=self.time)
        folder = os.environ.get("MT_NARRATION")
        if folder:  # for the CLI's sidecar: what was said, by which voice, when
            Path(folder).write_text(json.dumps({
                "voice": self.params.voice if self.voice else "none", "speed": self.params.speed,
                "cues": [{k: c[k] for k in ("start", "end", "text", "beat", "spoken_s")} for c in self.cues],
                "narration": self.captions}, ensure_ascii=False))

    def clear_stage(self, *keep: Mobject, run_time: float = 0.6):
        """Everything but the header, provenance tag and `keep` leaves the stage: it fades out
        during the next animation, so the screen is never empty between beats."""
        fixed = {id(self.provenance), id(self.header), id(self.burned)} | {id(m) for m in keep}
        self.outgoing += [m for m in self.mobjects if id(m) not in fixed and m not in self.outgoing]

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
        """Record any text or image on screen that reaches past the frame, and any two texts on
        screen whose boxes overlap (by more than a hair in both directions)."""
        self.layout_problems += [f"{beat}: {p}" for p in text_collisions(self.mobjects)]
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
