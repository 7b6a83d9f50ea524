#!/usr/bin/env python3
"""Gemma 3 270M: loading it (first time and cached) and tracing it against transformers.

    .venv/bin/python bench/gemma.py [--reps 5] [--no-write]

Load: each in a fresh process, only the library calls timed. The first load starts from an
empty cache folder and is split into joining the four chunks (with their sha256) and the
rest (fingerprint, reading the GGUF, dequantizing, writing the float-weight cache); the cached
loads reuse that folder.
Trace: one process. Our full trace (every hook recorded) against transformers'
Gemma3ForCausalLM, eager attention, float32, holding the same dequantized weights (built as in
tests/test_model_gemma3.py); calls interleaved, the median of each reported.
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

MODEL = "gemma3-270m"
TIMED_LOAD = """
import json, sys, time
from model import loading
start = time.perf_counter()
loading.assembled(sys.argv[1])
joined = time.perf_counter()
loaded = loading.load(sys.argv[1], "cpu")
end = time.perf_counter()
print(json.dumps({"join": joined - start, "load": end - joined, "total": end - start}))
"""
PROMPTS = ["The capital of France is", "The fluffy blue creature roamed the verdant forest, looking for its friends.",
           " ".join(["word"] * 255)]  # 256 tokens with <bos>: the tool's limit


def timed_load(cache: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", TIMED_LOAD, MODEL], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MANIM_TRANSFORMER_CACHE": str(cache)})
    if proc.returncode != 0:
        raise SystemExit(f"loading {MODEL} failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def trace_timings(reps: int) -> list[list[str]]:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from test_model_gemma3 import reference_from_gguf

    from model.loading import load
    from model.trace import run_trace

    ours = load(MODEL, "cpu")
    hf = reference_from_gguf(ours.source.path)
    rows = []
    for prompt in PROMPTS:
        ids = torch.tensor([run_trace(ours, prompt).tokens])
        mine, theirs = [], []
        for _ in range(reps):
            start = time.perf_counter()
            trace = run_trace(ours, prompt)
            mine.append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.no_grad():
                out = hf(ids)
            theirs.append(time.perf_counter() - start)
        gap = float((trace["logits"] - out.logits[0]).abs().max())
        a, b = statistics.median(mine), statistics.median(theirs)
        rows.append([str(ids.shape[1]), f"{a * 1000:.0f}", f"{b * 1000:.0f}", f"{a / b:.2f}x", f"{gap:.1e}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mt-bench-gemma-") as cache:
        first = timed_load(Path(cache))
        cached = [timed_load(Path(cache))["total"] for _ in range(3)]
    load_text = table(["model", "join chunks s", "rest of first load s", "first load s", "cached load s (median of 3)", "speed-up"],
                      [[MODEL, f"{first['join']:.1f}", f"{first['load']:.1f}", f"{first['total']:.1f}",
                        f"{statistics.median(cached):.2f}", f"{first['total'] / statistics.median(cached):.0f}x"]])
    trace_text = table(["tokens", "our trace ms", "transformers ms", "ratio", "max |logit gap|"], trace_timings(args.reps))
    notes = ("Our trace records every hook (about 40 tensors a layer); transformers returns the logits only. "
             f"Medians of {args.reps} interleaved calls, {os.cpu_count()} cores, float32, eager attention.")
    print(load_text, trace_text, notes, sep="\n\n")
    if not args.no_write:
        write_section("gemma", "Gemma 3 270M: `bench/gemma.py`", f"{machine_line()}\n\n{load_text}\n\n{trace_text}\n\n{notes}")


if __name__ == "__main__":
    main()
