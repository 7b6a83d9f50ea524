#!/usr/bin/env python3
"""A small course through `render.py batch`: here with --jobs 1, here with --jobs 2, and on a
2-worker local Ray cluster.

    .venv/bin/python bench/batch.py [--no-write]

The course: 2 prompts x 3 scenes (tokens, cost, softmax) at 480p, 2 frames a second, no voice.
Each run starts from its own cold cache (the float weights shared, no traces or facts), so
each computes the two traces once. The Ray cluster (ray.init here, 2 CPUs, 127.0.0.1 only) is
started before its run and its start-up is reported apart; the batch connects to it by address.

Reported: wall time, speed-up over --jobs 1, and the overhead per task on Ray: the batch's wall
time beyond the local --jobs 2 run (same parallelism) per clip, and inside each task the time
outside its manim process (installing the bundle, reading its data, publishing, packing files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import machine_line, table, write_section  # noqa: E402

COURSE = """title = "Bench course"

[matrix]
prompts = ["The capital of France is", "Michael Jordan plays the sport of"]

[defaults]
quality = "low"
fps = 2
voice = "none"

[[lecture]]
title = "Basics"
scenes = ["tokens", "cost", "softmax"]
"""


SCALING = """**How it should scale on k machines** (c cores each, one clip per core; a model, not a measurement).
A course of N clips takes about start + prepare + ceil(N / kc) x (R + o): R is a clip's render
time ({R:.0f} s on average here, the slowest {slowest:.0f} s), o the per-task overhead (here at most
{o:.1f} s, {pct:.0f}% of R; inside the task {inside:.1f} s), start the cluster's ({start:.0f} s here,
paid once; a standing cluster costs nothing), prepare one (model, prompt)'s trace and facts
(all prompts at once, one per core). At 1080p60 a clip renders about three times as long as at
480p (README, Speed) while o grows only with the files sent back, so the overhead's share shrinks.
The speed-up is close to kc x R / (R + o) until one of these limits:

- **Fewer clips than cores**: past kc = N nothing is gained, and the slowest clip sets the floor
  (prediction renders about four times as long as tokens); render the matrix, not one lecture.
- **The prepare barrier**: every trace is computed before the renders start; with P prompts
  that is ceil(P / kc) rounds of tracing (seconds to tens of seconds each).
- **The head node**: it receives and writes every file. A 480p clip is under 1 MB, a 1080p one
  10 to 50 MB; a 1 Gb/s link moves about 100 MB/s, far above what even a few hundred cores
  render, but `--shared` (an NFS or similar --out) removes the head from the path entirely.
- **Bundles**: a trace is about 20 MB for a short prompt and about 680 MB at the 256-token limit
  (every attention pattern of every layer); it travels once per node and prompt, and Ray's object
  store (30% of memory by default) spills to disk beyond what fits.
- **Memory per render**: one task per core assumes the 1.0 to 1.6 GB a manim process needs at 1080p.
- **This machine**: 2 cores, shared with other people's work while measuring, and Ray's own
  processes (GCS, raylet, agents) take some of them; two renders here run at most about 1.6x one
  (README, Speed), which caps both the --jobs 2 and the Ray rows."""


def cold_cache(parent: Path, name: str) -> Path:
    from model.cache import cache_dir

    cache = parent / name
    cache.mkdir()
    (cache / "weights").symlink_to(cache_dir() / "weights")
    return cache


def batch(course: Path, out: Path, cache: Path, extra: list[str]) -> dict:
    env = {**os.environ, "MANIM_TRANSFORMER_CACHE": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "render.py"), "batch", str(course), "--out", str(out), "--quiet", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"batch {' '.join(extra)} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    report = json.loads((out / "batch.json").read_text())
    return {"wall": wall, "report": report, "load": os.getloadavg()[1]}  # the machine's 5-minute load average after the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    runs = {}
    with tempfile.TemporaryDirectory(prefix="mt-bench-batch-") as tmp:
        tmp = Path(tmp)
        course = tmp / "course.toml"
        course.write_text(COURSE)
        for jobs in (1, 2):
            runs[f"here, --jobs {jobs}"] = batch(course, tmp / f"out-{jobs}", cold_cache(tmp, f"cache-{jobs}"), ["--jobs", str(jobs)])
            print(f"here, --jobs {jobs}: {runs[f'here, --jobs {jobs}']['wall']:.1f} s", flush=True)

        cache = cold_cache(tmp, "cache-ray")
        saved = {k: os.environ.get(k) for k in ("MANIM_TRANSFORMER_CACHE",)}
        os.environ.update({"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                           "MANIM_TRANSFORMER_CACHE": str(cache)})  # the cluster's workers inherit these
        ray_tmp = tempfile.mkdtemp(prefix="mtray-")
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=ray_tmp, log_to_driver=False, logging_level="warning")
        cluster_start = time.perf_counter() - start
        address = ray.get_runtime_context().gcs_address
        try:
            runs["Ray, 2 workers"] = batch(course, tmp / "out-ray", cache, ["--ray", address])
        finally:
            ray.shutdown()
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            import shutil

            shutil.rmtree(ray_tmp, ignore_errors=True)
        print(f"Ray, 2 workers: {runs['Ray, 2 workers']['wall']:.1f} s (cluster start {cluster_start:.1f} s apart)", flush=True)

    one = runs["here, --jobs 1"]["wall"]
    rows = []
    for name, r in runs.items():
        jobs = r["report"]["jobs"].values()
        render = sum(j["render_s"] for j in jobs)
        rows.append([name, str(len(jobs)), f"{r['wall']:.1f}", f"{one / r['wall']:.2f}x", f"{render:.1f}",
                     f"{statistics.mean(j['wall_s'] - j['render_s'] for j in jobs):.2f}", f"{r['load']:.1f}"])
    text = table(["run", "clips", "wall s", "speed-up vs --jobs 1", "sum of manim s", "per clip: job - manim s",
                  "load average (5 min)"], rows)
    ray_run, two = runs["Ray, 2 workers"], runs["here, --jobs 2"]
    n = len(ray_run["report"]["jobs"])
    per_task = (ray_run["wall"] - two["wall"]) / n
    body = (f"{machine_line()}\n\n`render.py batch` on a course of 2 prompts x 3 scenes (tokens, cost, softmax; 480p, 2 fps, "
            f"no voice), each run from a cold trace cache (float weights shared).\n\n{text}\n\n"
            f"Ray cluster start (ray.init, 2 CPUs), not in the Ray row: {cluster_start:.1f} s. "
            f"Overhead per task on Ray against --jobs 2 here (same parallelism): {per_task:+.1f} s "
            f"((Ray wall - local wall) / {n} clips). \"job - manim\" is the time of each clip outside its manim process "
            f"(here: publishing; on Ray: installing the bundle, reading the data, publishing, packing the files).")
    busiest = max(r["load"] for r in runs.values())
    if busiest > (os.cpu_count() or 1):
        body += (f"\n\nThe machine was shared while measuring (load average up to {busiest:.1f} on {os.cpu_count()} cores): "
                 "the wall times and speed-ups measure the neighbours' work as much as the batch's. The time spent "
                 "outside manim per clip is the number that holds.")
    ray_jobs = list(ray_run["report"]["jobs"].values())
    render_mean = statistics.mean(j["render_s"] for j in ray_jobs)
    inside = statistics.mean(j["wall_s"] - j["render_s"] for j in ray_jobs)
    body += "\n\n" + SCALING.format(R=render_mean, o=max(per_task, inside), inside=inside, pct=100 * max(per_task, inside) / render_mean,
                                    start=cluster_start, slowest=max(j["render_s"] for j in ray_jobs))
    print()
    print(body)
    if not args.no_write:
        write_section("batch", "Course batches, here and on Ray: `bench/batch.py`", body)


if __name__ == "__main__":
    main()
