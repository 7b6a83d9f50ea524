#!/usr/bin/env python3
"""`render all --preview` (one still per beat, no animation drawn) against a full render.

    .venv/bin/python bench/preview.py [--jobs 2] [--no-write]

Runs of `render.py render all --jobs N --quiet` on one fresh cache folder (sharing only the
user's float-weight cache), in this order:

1. --preview, cold: the model traces the prompt, every fact and every text outline is computed;
2. --preview, warm: the same again, everything read from the cache;
3. --preview with the text-outline cache emptied (traces and facts warm): what the outline
   cache saves;
4. the full render the preview stands in for: mp4 at 480p15, silent, every frame drawn.

Reported: wall time of each, and the preview's time as a share of the full render's. Target
(issue 18): all 16 scenes' stills in at most 30 s at 480p on this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lecture import cold_cache  # noqa: E402
from bench.results import machine_line, table, write_section  # noqa: E402


def render_all(extra: list[str], jobs: int, cache: Path, out: Path) -> float:
    env = {**os.environ, "MANIM_TRANSFORMER_CACHE": str(cache)}
    cmd = [sys.executable, str(ROOT / "render.py"), "render", "all", "--quality", "low", "--jobs", str(jobs), "--out", str(out),
           "--quiet", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    runs = [("--preview, cold cache (trace, facts, outlines computed)", ["--preview"], None),
            ("--preview, warm cache", ["--preview"], None),
            ("--preview, outline cache emptied", ["--preview"], "glyphs"),
            ("full render: mp4 480p15, silent", ["--voice", "none"], None)]
    walls = []
    with tempfile.TemporaryDirectory(prefix="mt-bench-preview-") as tmp:
        tmp = Path(tmp)
        cache = cold_cache(tmp, "cache")
        for i, (what, extra, empty) in enumerate(runs):
            if empty:
                shutil.rmtree(cache / empty, ignore_errors=True)
            walls.append(render_all(extra, args.jobs, cache, tmp / f"out-{i}"))
            print(f"{what}: {walls[-1]:.1f} s", flush=True)

    full = walls[-1]
    rows = [[what, f"{wall:.1f}", f"{wall / full:.2f}x" if i < len(runs) - 1 else "1x"] for i, ((what, _, _), wall) in enumerate(zip(runs, walls))]
    body = "\n".join([
        machine_line(),
        "",
        f"`render all` (16 scenes, the default prompt) with `--jobs {args.jobs}`, all runs on one fresh cache folder, in this order.",
        "",
        table(["run", "wall (s)", "vs full render"], rows),
        "",
        f"Target: 16 scenes' stills in at most 30 s. Warm preview: {walls[1]:.1f} s "
        f"({'met' if walls[1] <= 30 else 'not met'}); what is left is building the scenes' mobjects (no frame is drawn).",
    ])
    print(body)
    if not args.no_write:
        write_section("preview", "Previews: stills without drawing the animations", body)


if __name__ == "__main__":
    main()
