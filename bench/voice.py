#!/usr/bin/env python3
"""What the narration costs: seconds of synthesis per minute of speech, first time and cached.

    .venv/bin/python bench/voice.py

The narration of every scene for the default prompt (built without rendering, voice off, to
collect the cue texts) is synthesized into an empty cache, then asked for again from the
warm cache, side by side in one run. Reported: minutes of speech, wall seconds for each pass,
and seconds per minute of speech (the ratio); piper runs as its own process, one per batch.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from results import machine_line, table, write_section  # noqa: E402


def scene_texts() -> dict[str, list[str]]:
    """Every scene's cue texts (what the voice reads), from silent dry-run builds."""
    from scene_helpers import build
    from scenes.parts import narration
    from scenes.registry import SCENES

    return {name: [narration.spoken(c["text"]) for c in build(name, MT_VOICE="none").cues] for name in SCENES}


def main() -> None:
    from scenes.parts.voice import Voice, wav_seconds

    texts = scene_texts()
    rows, total_speech, total = [], 0.0, {"first": 0.0, "cached": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MANIM_TRANSFORMER_CACHE"] = tmp
        for name, cues in texts.items():
            voice = Voice("joe", 1.0)
            start = time.perf_counter()
            paths = voice.speak(cues)
            first = time.perf_counter() - start
            start = time.perf_counter()
            voice.speak(cues)
            cached = time.perf_counter() - start
            speech = sum(wav_seconds(p) for p in paths)
            total_speech += speech
            total["first"] += first
            total["cached"] += cached
            rows.append([name, str(len(cues)), f"{speech:.1f}", f"{first:.2f}", f"{cached:.3f}",
                         f"{60 * first / speech:.1f}", f"{60 * cached / speech:.3f}"])
    minutes = total_speech / 60
    rows.append(["all", str(sum(len(c) for c in texts.values())), f"{total_speech:.1f}", f"{total['first']:.1f}",
                 f"{total['cached']:.3f}", f"{total['first'] / minutes:.1f}", f"{total['cached'] / minutes:.3f}"])
    body = (machine_line() + "\n\n" + table(
        ["scene", "cues", "speech s", "first s", "cached s", "first s/min", "cached s/min"], rows)
        + f"\n\nSynthesis: {total['first'] / minutes:.1f} s per minute of speech the first time "
          f"({total_speech / total['first']:.1f}x faster than real time, piper start-up included), "
          f"{total['cached'] / minutes:.3f} s per minute from the cache.")
    write_section("voice", "Narration synthesis (bench/voice.py)", body)
    print(body)


if __name__ == "__main__":
    main()
