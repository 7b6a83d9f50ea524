#!/usr/bin/env python3
"""The whole lecture through the CLI, one scene at a time and two at a time.

    .venv/bin/python bench/lecture.py [--lecture assets/lectures/full.toml] [--quality low]

Four runs of `render.py lecture FILE --quality low --jobs N`, for N = 1 and 2, each from a
cold trace cache (a fresh cache folder: the model loads from its float-weight cache, then
traces the prompt and computes every scene's facts) and then a warm one (the same folder
again: nothing to compute). Reported: wall time, the lecture's total video duration,
wall / duration, and the speed-up of --jobs 2 over --jobs 1.

Targets (2 cores): with --jobs 2 and a warm cache, wall at most 0.5x the duration, and at
least 1.7x faster than --jobs 1.
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


def user_cache() -> Path:
    from model.cache import cache_dir

    return cache_dir()


def render_lecture(lecture: Path, quality: str, jobs: int, cache: Path, out: Path) -> dict:
    env = {**os.environ, "MANIM_TRANSFORMER_CACHE": str(cache)}
    cmd = [sys.executable, str(ROOT / "render.py"), "lecture", str(lecture), "--quality", quality, "--jobs", str(jobs),
           "--out", str(out), "--quiet"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lecture with --jobs {jobs} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    durations = [json.loads(p.read_text())["duration_s"] for p in out.glob("*.json")]
    return {"wall": wall, "duration": sum(durations), "clips": len(durations)}


def cold_cache(parent: Path, name: str) -> Path:
    """A fresh cache folder that shares only the user's float-weight cache (no traces, no facts)."""
    cache = parent / name
    cache.mkdir()
    weights = user_cache() / "weights"
    if weights.is_dir():
        (cache / "weights").symlink_to(weights)
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lecture", type=Path, default=ROOT / "assets" / "lectures" / "full.toml")
    parser.add_argument("--quality", default="low", choices=["low", "medium", "high"])
    parser.add_argument("--jobs", default="1,2", help="the --jobs values to run, e.g. 2 (default 1,2)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="mt-bench-lecture-") as tmp:
        tmp = Path(tmp)
        for jobs in [int(j) for j in args.jobs.split(",")]:
            cache = cold_cache(tmp, f"cache-{jobs}")
            for state in ("cold", "warm"):
                r = render_lecture(args.lecture, args.quality, jobs, cache, tmp / f"out-{jobs}-{state}")
                results[jobs, state] = r
                print(f"--jobs {jobs}, {state} cache: {r['wall']:.1f} s for {r['duration']:.1f} s of video", flush=True)

    rows = []
    for (jobs, state), r in results.items():
        speedup = f"{results[1, state]['wall'] / r['wall']:.2f}x" if (1, state) in results else "not run"
        rows.append([str(jobs), state, str(r["clips"]), f"{r['duration']:.1f}", f"{r['wall']:.1f}",
                     f"{r['wall'] / r['duration']:.2f}x", speedup])
    text = table(["--jobs", "trace cache", "clips", "video s", "wall s", "wall / video", "speed-up vs --jobs 1"], rows)
    warm2 = results[2, "warm"]
    ratio = warm2["wall"] / warm2["duration"]
    verdict = f"Targets (--jobs 2, warm): wall / video {ratio:.2f}x (target at most 0.5x: {'met' if ratio <= 0.5 else 'missed'})"
    if (1, "warm") in results:
        speedup = results[1, "warm"]["wall"] / warm2["wall"]
        verdict += f"; speed-up {speedup:.2f}x (target at least 1.7x: {'met' if speedup >= 1.7 else 'missed'})"
    verdict += ". Narrated with the default voice; a cold cache synthesizes the speech too."
    body = (f"{machine_line()}\n\n`render.py lecture {args.lecture.relative_to(ROOT) if args.lecture.is_relative_to(ROOT) else args.lecture}"
            f" --quality {args.quality}`; a cold cache has the float weights but no traces or facts.\n\n{text}\n\n{verdict}")
    print()
    print(text)
    print(verdict)
    if not args.no_write:
        write_section("lecture", "Whole lecture: `bench/lecture.py`", body)


if __name__ == "__main__":
    main()
