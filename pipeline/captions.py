"""Captions and chapters: manim's .srt -> WebVTT, and a chapters track from the sections."""

from __future__ import annotations

import re
from dataclasses import dataclass

TIME = r"(\d+):(\d\d):(\d\d)[,.](\d\d\d)"
CUE_TIMES = re.compile(TIME + r"\s*-->\s*" + TIME)


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def timestamp(t: float, sep: str = ".") -> str:
    ms = round(t * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def parse_srt(text: str) -> list[Cue]:
    """SubRip (or WebVTT) text -> cues, in order."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            match = CUE_TIMES.search(line)
            if match:
                g = match.groups()
                cues.append(Cue(seconds(*g[:4]), seconds(*g[4:]), "\n".join(lines[i + 1:]).strip()))
                break
    return cues


def to_srt(cues: list[Cue]) -> str:
    return "".join(f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n{c.text}\n\n" for i, c in enumerate(cues, 1))


def to_vtt(cues: list[Cue]) -> str:
    """WebVTT. A cue's text must not contain '-->' nor a blank line."""
    body = "".join(f"{timestamp(c.start)} --> {timestamp(c.end)}\n{clean(c.text)}\n\n" for c in cues)
    return "WEBVTT\n\n" + body


def clean(text: str) -> str:
    text = text.replace("-->", "→").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\n\s*\n", "\n", text)


def chapter_title(beat: str) -> str:
    """A beat's method name -> a chapter title: "beat_grid_cost" -> "Grid cost"."""
    return beat.removeprefix("beat_").replace("_", " ").capitalize()


def chapters_vtt(chapters: list[dict]) -> str:
    return to_vtt([Cue(c["start"], c["end"], chapter_title(c["name"])) for c in chapters])
