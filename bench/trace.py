#!/usr/bin/env python3
"""Our full trace of SmolLM2 against transformers' eager forward on the same weights.

    .venv/bin/python bench/trace.py [--reps 20] [--prompt "..."]

Timing: one process, the two calls interleaved, the median of each reported.
Memory: each side in a child process; the peak resident memory that three forward passes
(outputs kept) add on top of the loaded model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "The fluffy blue creature roamed the verdant forest"  # 10 tokens for SmolLM2


def setup():
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from builders import transformers_from_gguf  # transformers' own GGUF reader
    from model.loading import load

    torch.set_grad_enabled(False)
    loaded = load("smollm2-135m", "cpu")
    hf = transformers_from_gguf(loaded.source.path)
    return loaded, hf


def ours(loaded, prompt):
    from model.trace import run_trace

    return run_trace(loaded, prompt)


def theirs(loaded, hf, prompt):
    import torch

    ids = torch.tensor([loaded.encoding.encode(prompt)])
    return hf(ids, output_attentions=True, output_hidden_states=True)


def status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def memory_child(side: str, prompt: str) -> None:
    """Peak resident memory added by the forward passes alone (Linux: VmHWM reset via clear_refs)."""
    loaded, hf = setup()
    run = (lambda: ours(loaded, prompt)) if side == "ours" else (lambda: theirs(loaded, hf, prompt))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current resident size
    before = status_mb("VmRSS")
    results = [run() for _ in range(3)]  # keep the outputs alive, as a caller would
    del results
    print(json.dumps({"added_mb": status_mb("VmHWM") - before}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--prompt", default=PROMPT)
    p.add_argument("--memory-child", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child, args.prompt)

    import torch

    loaded, hf = setup()
    n_tokens = len(loaded.encoding.encode(args.prompt))
    for _ in range(3):
        ours(loaded, args.prompt), theirs(loaded, hf, args.prompt)
    t_ours, t_theirs = [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        trace = ours(loaded, args.prompt)
        t1 = time.perf_counter()
        out = theirs(loaded, hf, args.prompt)
        t2 = time.perf_counter()
        t_ours.append(t1 - t0)
        t_theirs.append(t2 - t1)
    captured_ours = len(trace.tensors)
    captured_theirs = 1 + len(out.hidden_states) + len(out.attentions)
    assert torch.allclose(trace["logits"], out.logits[0], atol=1e-3)

    mem = {}
    for side in ("ours", "theirs"):
        child = subprocess.run([sys.executable, __file__, "--memory-child", side, "--prompt", args.prompt],
                               capture_output=True, text=True, check=True)
        mem[side] = json.loads(child.stdout.strip().splitlines()[-1])

    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    print(f"SmolLM2-135M, {n_tokens}-token prompt, CPU threads {torch.get_num_threads()}, {args.reps} interleaved reps")
    print(f"{'':28}{'median ms':>10}{'tensors':>9}{'peak MB added (3 kept)':>24}")
    print(f"{'ours (run_trace)':28}{mo * 1e3:>10.1f}{captured_ours:>9}{mem['ours']['added_mb']:>24.1f}")
    print(f"{'transformers eager forward':28}{mt * 1e3:>10.1f}{captured_theirs:>9}{mem['theirs']['added_mb']:>24.1f}")
    print(f"time ratio ours/transformers: {mo / mt:.2f} (target <= 1.0)")
    from bench.results import machine_line, table, write_section

    text = table(["", "median ms", "tensors kept", "peak MB added (3 passes kept)"],
                 [["ours (run_trace)", f"{mo * 1e3:.1f}", str(captured_ours), f"{mem['ours']['added_mb']:.1f}"],
                  ["transformers eager forward", f"{mt * 1e3:.1f}", str(captured_theirs), f"{mem['theirs']['added_mb']:.1f}"]])
    write_section("trace", "Tracing: `bench/trace.py`",
                  f"{machine_line()}\n\nSmolLM2-135M, {n_tokens}-token prompt, {torch.get_num_threads()} CPU threads, "
                  f"{args.reps} interleaved repetitions.\n\n{text}\n\nTime ratio ours / transformers: {mo / mt:.2f} (target at most 1.0).")


if __name__ == "__main__":
    main()
