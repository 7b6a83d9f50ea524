"""Checks on narrated renders: subtitle limits, sound length, beats, empty screens, what is heard.

Limits are written here as numbers from subtitle practice, not read from the code under test."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

LINE_CHARS, CUE_LINES = 42, 2
CPS_LIMIT, CPS_HARD = 17.0, 22.0  # characters a second: the usual subtitle limit, and never more than
SILENT_CPS = 15.0  # silent renders are paced at reading speed


def cue_problems(cues, cps_limit: float = CPS_LIMIT) -> list[str]:
    """Every cue: at most two lines of at most 42 characters, shown long enough to read, in order."""
    problems = []
    for i, cue in enumerate(cues):
        lines = cue.text.split("\n")
        if len(lines) > CUE_LINES or any(len(line) > LINE_CHARS for line in lines):
            problems.append(f"cue {i} too big: {cue.text!r}")
        length = cue.end - cue.start
        chars = len(" ".join(lines))
        if length <= 0 or chars / length > cps_limit + 0.05:
            problems.append(f"cue {i} {chars} chars in {length:.2f} s: {cue.text!r}")
        if i and cue.start < cues[i - 1].end - 0.002:
            problems.append(f"cue {i} starts before cue {i - 1} ends")
    return problems


def cues_inside_beats(cues, chapters) -> list[str]:
    """No cue runs over a beat boundary (chapters: [{name, start, end}])."""
    out = []
    for cue in cues:
        home = [c for c in chapters if c["start"] - 0.01 <= cue.start < c["end"]]
        if not home or cue.end > home[0]["end"] + 0.01:
            out.append(f"{cue.text!r} {cue.start:.2f}-{cue.end:.2f} crosses a beat boundary {chapters}")
    return out


def stream_seconds(path: Path) -> tuple[float, float | None]:
    """(video length, audio length or None) from the packets' timestamps."""
    import av

    lengths = []
    for kind in ("video", "audio"):
        with av.open(str(path)) as container:  # opened afresh: demuxing reads the file to its end
            streams = getattr(container.streams, kind)
            if not streams:
                lengths.append(None)
                continue
            stream, end = streams[0], 0.0
            for packet in container.demux(stream):
                if packet.pts is not None and packet.duration:
                    end = max(end, float((packet.pts + packet.duration) * stream.time_base))
            lengths.append(end)
    return lengths[0], lengths[1]


def blank_share(path: Path, background: tuple[int, int, int], every: float = 0.5, skip_ends: float = 1.0) -> tuple[float, list[float]]:
    """Share of frames (sampled every `every` s, the first and last `skip_ends` s left out) whose
    stage (the frame minus its title band and the provenance tag's line) shows nothing but
    background. For clips without burned captions (those would count as something shown)."""
    import av

    blank, times, seen = 0, [], 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        length = float(stream.duration * stream.time_base) if stream.duration else float(container.duration / 1e6)
        next_t = skip_ends
        for frame in container.decode(video=0):
            t = float(frame.pts * stream.time_base)
            if t < next_t or t > length - skip_ends:
                continue
            next_t = t + every
            img = frame.to_ndarray(format="rgb24").astype(int)
            h = img.shape[0]
            stage = img[int(0.14 * h): int(0.95 * h)]
            differs = np.abs(stage - np.array(background)).sum(axis=2) > 40
            seen += 1
            if differs.mean() < 0.002:
                blank += 1
                times.append(round(t, 2))
    return (blank / seen if seen else 0.0), times


def heard_words(samples: np.ndarray, rate: int) -> list[str]:
    """What pocketsphinx's English model hears in mono float samples."""
    from pocketsphinx import Decoder

    if rate != 16000:
        n = int(len(samples) * 16000 / rate)
        samples = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.lower().split() if hyp else []


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}
