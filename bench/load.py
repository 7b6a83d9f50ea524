#!/usr/bin/env python3
"""Loading the model: first time (read the GGUF, dequantize, write the float-weight cache)
against a cached load (read the float weights back, checksum them).

    .venv/bin/python bench/load.py [--model smollm2-135m] [--reps 3]

Each load runs in a fresh process and only `model.loading.load` is timed (not Python's or
torch's start-up). The first load uses an empty cache folder, the cached ones the same
folder afterwards. Target: the cached load at least 3x faster than the first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import machine_line, table, write_section  # noqa: E402

TIMED_LOAD = """
import json, sys, time
from model.loading import load
start = time.perf_counter()
loaded = load(sys.argv[1], "cpu")
print(json.dumps({"seconds": time.perf_counter() - start, "parameters": sum(p.numel() for p in loaded.model.parameters())}))
"""


def timed_load(model: str, cache: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", TIMED_LOAD, model], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MANIM_TRANSFORMER_CACHE": str(cache)})
    if proc.returncode != 0:
        raise SystemExit(f"loading {model} failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mt-bench-load-") as cache:
        first = timed_load(args.model, Path(cache))
        cached = [timed_load(args.model, Path(cache))["seconds"] for _ in range(args.reps)]
    median = statistics.median(cached)
    ratio = first["seconds"] / median
    text = table(["model", "parameters", "first load s", f"cached load s (median of {args.reps})", "speed-up"],
                 [[args.model, f"{first['parameters']:,}", f"{first['seconds']:.2f}", f"{median:.2f}", f"{ratio:.1f}x"]])
    verdict = f"Target: a cached load at least 3x faster than the first: {'met' if ratio >= 3 else 'missed'} ({ratio:.1f}x)."
    print(text)
    print(verdict)
    if not args.no_write:
        write_section("load", "Model load: `bench/load.py`", f"{machine_line()}\n\n{text}\n\n{verdict}")


if __name__ == "__main__":
    main()
