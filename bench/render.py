#!/usr/bin/env python3
"""How fast each scene renders, against a blank scene of the same length.

    .venv/bin/python bench/render.py                       # every scene, 480p15 and 1080p60
    .venv/bin/python bench/render.py tokens qkv --quality 1080p60

Each scene renders in its own process through manim's own command line, with caching
disabled, exactly as `render.py render` runs it, but with counters wrapped around manim's
Cairo renderer:

- wall: the whole process (start-up, trace read from the cache, drawing, encoding);
- realtime: wall / video duration (the target is at most 3x at 1080p60);
- fps: frames written / seconds spent in the scene's render;
- vs blank: the scene's fps over a blank scene's (same length, every frame drawn and encoded),
  i.e. how close the scene gets to the pipeline's own limit on this machine;
- setup / draw / encoder / other: where the render's time went: the scene's setup (reading
  the trace), Cairo drawing animation frames, waiting for the encoder thread, and the rest
  (building mobjects, interpolating animations, stills);
- mobjects: how many mobjects Cairo draws in a drawn frame (mean and most); what does not
  move is painted once into a background image and not counted;
- peak: the process's peak resident memory.

The trace and every derived fact are computed (or found in the cache) first, in a separate
process, so every scene reads them from the cache as in a repeated lecture render.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import machine_line, table, write_section  # noqa: E402

QUALITIES = {"480p15": ("l", 15), "720p30": ("m", 30), "1080p60": ("h", 60)}
BLANK_SECONDS = 30.0


# ---------------------------------------------------------------- the child: one render, counted
def child(module: str, cls: str, quality: str, report: str, media: str) -> None:
    """Render one scene through manim's CLI with counters installed; write them to `report`."""
    from manim.camera.camera import Camera
    from manim.renderer.cairo_renderer import CairoRenderer
    from manim.scene.scene import Scene

    counts = {"drawn_frames": 0, "written_frames": 0, "mobjects": 0, "most_mobjects": 0,
              "setup_s": 0.0, "draw_s": 0.0, "encode_s": 0.0, "render_s": 0.0}
    last = {"n": 0}

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                counts[key] += time.perf_counter() - start
        return wrapper

    to_display = Camera.get_mobjects_to_display

    def counting_to_display(self, *args, **kwargs):
        found = to_display(self, *args, **kwargs)
        last["n"] = len(found)
        return found

    def counting_render(self, scene, t, moving_mobjects=None):  # one animation frame
        start = time.perf_counter()
        self.update_frame(scene, moving_mobjects)
        counts["draw_s"] += time.perf_counter() - start
        counts["drawn_frames"] += 1
        counts["mobjects"] += last["n"]
        counts["most_mobjects"] = max(counts["most_mobjects"], last["n"])
        self.add_frame(self.get_frame())

    def counting_add_frame(self, frame, num_frames=1):
        if not self.skip_animations:
            counts["written_frames"] += num_frames
        start = time.perf_counter()
        add_frame(self, frame, num_frames)
        counts["encode_s"] += time.perf_counter() - start

    add_frame = CairoRenderer.add_frame
    Camera.get_mobjects_to_display = counting_to_display
    CairoRenderer.render = counting_render
    CairoRenderer.add_frame = counting_add_frame
    render = Scene.render

    def counting_scene_render(self, *args, **kwargs):
        self.setup = timed("setup_s", self.setup)  # scenes override setup; time this instance's
        return render(self, *args, **kwargs)

    Scene.render = timed("render_s", counting_scene_render)

    flag, fps = QUALITIES[quality]
    script = ROOT / "bench" / "blank.py" if module == "blank" else ROOT / "scenes" / f"{module}.py"
    sys.argv = ["manim", "render", f"-q{flag}", "--fps", str(fps), "--disable_caching", "--progress_bar", "none",
                "--media_dir", media, "-v", "WARNING", str(script), cls]
    from manim.__main__ import main

    try:
        main(standalone_mode=False)
    finally:
        import resource

        counts["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts["fps_setting"] = fps
        Path(report).write_text(json.dumps(counts))


# ---------------------------------------------------------------- the parent: run, compare, report
def run_child(module: str, cls: str, quality: str, env: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp:
        report = Path(tmp) / "report.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", module, cls, quality, str(report), tmp],
                              cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not report.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise SystemExit(f"{module}.{cls} at {quality} failed: {' | '.join(tail)}")
        counts = json.loads(report.read_text())
    frames = counts["written_frames"]
    counts.update(wall=wall, frames=frames, duration=frames / counts["fps_setting"],
                  fps=frames / counts["render_s"] if counts["render_s"] else 0.0)
    counts["realtime"] = wall / counts["duration"] if counts["duration"] else float("inf")
    counts["mean_mobjects"] = counts["mobjects"] / counts["drawn_frames"] if counts["drawn_frames"] else 0.0
    return counts


def warm_caches(names: list[str], env: dict | None = None) -> float:
    """Trace the prompt and compute every scene's facts once (the CLI does this in its parent)."""
    start = time.perf_counter()
    code = ("from scenes.parts.data import prepare; from scenes.parts.params import Params; "
            f"prepare({names!r}, Params.from_env())")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
        return
    from scenes.registry import SCENES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenes", nargs="*", help="scene names (default: all)")
    parser.add_argument("--quality", default="480p15,1080p60", help="comma-separated: 480p15, 720p30, 1080p60")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    names = args.scenes or list(SCENES)
    qualities = args.quality.split(",")
    for q in qualities:
        if q not in QUALITIES:
            parser.error(f"unknown quality {q!r}: choose from {', '.join(QUALITIES)}")
    for name in names:
        if name not in SCENES:
            parser.error(f"unknown scene {name!r}")

    print(f"warming the trace cache for {len(names)} scenes ...", flush=True)
    warm = warm_caches(names)
    rows = []
    for quality in qualities:
        blank = run_child("blank", "Blank", quality, {"MT_BLANK_SECONDS": str(BLANK_SECONDS)})
        print(f"{quality} blank: {blank['fps']:.1f} frames/s", flush=True)
        rows.append(row("blank", quality, blank, blank))
        for name in names:
            module, cls = SCENES[name].module, SCENES[name].cls
            result = run_child(module, cls, quality)
            rows.append(row(name, quality, result, blank))
            print(" | ".join(str(c) for c in rows[-1]), flush=True)

    header = ["scene", "quality", "video s", "frames", "wall s", "realtime", "fps", "vs blank", "setup s", "draw s", "encoder s", "other s",
              "mobjects/frame (most)", "peak MB"]
    text = table(header, rows)
    print()
    print(text)
    slow = [r for r in rows if r[1] == "1080p60" and r[0] != "blank" and float(r[5].rstrip("x")) > 3.0]
    summary = (f"Trace and facts for {len(names)} scenes, computed or read once beforehand: {warm:.1f} s.\n"
               f"Target: every scene at 1080p60 within 3x realtime"
               + (f": {len(slow)} over ({', '.join(r[0] for r in slow)})." if slow else
                  (": all within." if "1080p60" in qualities else " (not measured in this run).")))
    print(summary)
    if not args.no_write:
        write_section("render", "Scenes: `bench/render.py`", f"{machine_line()}\n\n{text}\n\n{summary}")


def row(name: str, quality: str, r: dict, blank: dict) -> list[str]:
    return [name, quality, f"{r['duration']:.1f}", str(r["frames"]), f"{r['wall']:.1f}", f"{r['realtime']:.2f}x",
            f"{r['fps']:.1f}", f"{r['fps'] / blank['fps']:.2f}", f"{r['setup_s']:.1f}", f"{r['draw_s']:.1f}", f"{r['encode_s']:.1f}",
            f"{r['render_s'] - r['setup_s'] - r['draw_s'] - r['encode_s']:.1f}",
            f"{r['mean_mobjects']:.0f} ({r['most_mobjects']})", f"{r['peak_mb']:.0f}"]


if __name__ == "__main__":
    main()
