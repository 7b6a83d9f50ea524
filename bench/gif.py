#!/usr/bin/env python3
"""GIF size and speed: ours (pipeline/gif.py) against manim's own GIF and the mp4, one scene.

    .venv/bin/python bench/gif.py [--scene cost] [--no-write]

Side by side in one run, from the same scene at 480p15, silent:
- the mp4 that `render.py render SCENE` writes;
- manim's own GIF (`python -m manim --format gif`, the same scene and parameters);
- our GIF made from that mp4, at the video's frame rate and at --gif-fps 7.5.
Reported: file size, size against the mp4, frames, and how long each GIF plays against the
video (sum of its frame delays). Target (issue 18): within 3x the mp4, or a --gif-fps that is.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import machine_line, table, write_section  # noqa: E402


def gif_info(path: Path) -> tuple[int, float]:
    from PIL import Image

    im, frames, ms = Image.open(path), 0, 0
    try:
        while True:
            frames, ms = frames + 1, ms + im.info["duration"]
            im.seek(im.tell() + 1)
    except EOFError:
        pass
    return frames, ms / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", default="cost")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    import av

    from pipeline.gif import to_gif
    from scenes.parts.params import Params
    from scenes.registry import scene_entry

    entry = scene_entry(args.scene)
    with tempfile.TemporaryDirectory(prefix="mt-bench-gif-") as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, str(ROOT / "render.py"), "render", args.scene, "--voice", "none", "--quality", "low",
                        "--out", str(tmp / "out"), "--quiet"], cwd=ROOT, check=True, capture_output=True)
        mp4 = tmp / "out" / f"{args.scene}.mp4"
        with av.open(str(mp4)) as v:
            s = v.streams.video[0]
            video_s = float(s.duration * s.time_base)
        env = {**os.environ, **Params(voice="none").to_env(), "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "manim", "render", "-ql", "--media_dir", str(tmp / "manim"), "--progress_bar", "none",
                        "--format", "gif", "--disable_caching", str(ROOT / "scenes" / f"{entry.module}.py"), entry.cls],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        theirs = next((tmp / "manim").rglob(f"{entry.cls}*.gif"))
        to_gif(mp4, tmp / "ours.gif")
        to_gif(mp4, tmp / "ours-7.5.gif", fps=7.5)
        rows = [["mp4 (render.py)", f"{mp4.stat().st_size / 1e6:.2f}", "1x", "", f"{video_s:.2f}"]]
        for what, path in (("manim's own GIF", theirs), ("ours", tmp / "ours.gif"), ("ours, --gif-fps 7.5", tmp / "ours-7.5.gif")):
            frames, seconds = gif_info(path)
            rows.append([what, f"{path.stat().st_size / 1e6:.2f}", f"{path.stat().st_size / mp4.stat().st_size:.1f}x",
                         str(frames), f"{seconds:.2f}"])
    body = "\n".join([machine_line(), "", f"Scene `{args.scene}`, 480p15, silent, the default prompt.", "",
                      table(["file", "MB", "vs mp4", "GIF frames", "plays (s)"], rows), "",
                      "Ours: one palette, no dithering, a held picture stored once, delays rounded frame by frame."])
    print(body)
    if not args.no_write:
        write_section("gif", "GIF: size and speed against manim's GIF and the mp4", body)


if __name__ == "__main__":
    main()
