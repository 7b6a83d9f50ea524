#!/usr/bin/env python3
"""Does render time grow with the model or the prompt? It should not: scenes draw a window.

    .venv/bin/python bench/scale.py [--quality 480p15]

Two comparisons, each scene rendered as in bench/render.py (own process, caching disabled):

- model size: random-weight GPT-2-family models of d_model 64 and 2048 (2 layers, 4 heads,
  GPT-2's tokenizer), same prompt; target: d_model 2048 within 10% of d_model 64;
- prompt length: SmolLM2 on prompts of 4 and 64 tokens; target: 64 tokens within 2x of 4.

for one attention scene (attention-pattern) and one vector scene (embeddings). The traces
are computed beforehand; the random models and their cache live in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.render import QUALITIES, run_child, warm_caches  # noqa: E402
from bench.results import machine_line, table, write_section  # noqa: E402

SCENES = {"attention-pattern": ("attention_pattern", "AttentionPattern"), "embeddings": ("embeddings", "Embeddings")}
PROMPT = "The fluffy blue creature roamed the verdant forest"
STORY = ("Once upon a time a fluffy blue creature lived at the edge of a verdant forest. Every morning it walked "
         "down to the river, drank the cold water, and listened to the birds arguing in the tall trees. One day a "
         "small fox came out of the bushes and asked the creature where the old road to the mountains had gone, "
         "because the fox wanted to visit its grandmother before the winter snow closed every path.")


def random_gpt2(folder: Path, d_model: int) -> Path:
    """A 2-layer, 4-head GPT-2 with random weights, written by a child process: the render
    processes are forked from this one, and their peak memory must not start at its size."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, \"tests\"); from builders import write_random_gpt2; "
            "write_random_gpt2(Path(sys.argv[1]), int(sys.argv[2]), n_layers=2, n_heads=4, n_ctx=128)")
    subprocess.run([sys.executable, "-c", code, str(folder), str(d_model)], cwd=ROOT, check=True)
    return folder


def prompt_of(n_tokens: int) -> str:
    """The shortest start of STORY (whole words) that SmolLM2 reads as exactly n_tokens tokens."""
    code = ("import json, sys; from model.loading import load; enc = load('smollm2-135m', 'cpu').encoding; "
            "words = sys.argv[1].split(' '); n = int(sys.argv[2]); "
            "found = [' '.join(words[:k]) for k in range(1, len(words) + 1) if len(enc.encode(' '.join(words[:k]))) == n]; "
            "print(json.dumps(found[0] if found else None))")
    out = subprocess.run([sys.executable, "-c", code, STORY, str(n_tokens)], cwd=ROOT, check=True, capture_output=True, text=True)
    prompt = json.loads(out.stdout)
    if prompt is None:
        raise SystemExit(f"no start of the story is exactly {n_tokens} tokens")
    return prompt


def measure(cases: dict[str, dict], quality: str) -> dict[tuple[str, str], dict]:
    results = {}
    for label, env in cases.items():
        warm_caches(list(SCENES), env)
        for scene, (module, cls) in SCENES.items():
            results[scene, label] = r = run_child(module, cls, quality, env)
            print(f"{scene}, {label}: {r['wall']:.1f} s wall, {r['render_s']:.1f} s render, {r['duration']:.1f} s of video",
                  flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", default="480p15", choices=list(QUALITIES))
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mt-bench-scale-") as tmp:
        tmp = Path(tmp)
        models = {f"d_model {d}": random_gpt2(tmp / f"gpt2-d{d}", d) for d in (64, 2048)}
        cache = {"MANIM_TRANSFORMER_CACHE": str(tmp / "cache")}
        by_model = measure({label: {**cache, "MT_MODEL": str(path), "MT_PROMPT": PROMPT} for label, path in models.items()},
                           args.quality)
    prompts = {f"{n} tokens": prompt_of(n) for n in (4, 64)}
    by_prompt = measure({label: {"MT_MODEL": "smollm2-135m", "MT_PROMPT": p} for label, p in prompts.items()}, args.quality)

    rows = []
    for results, small, big, limit in ((by_model, "d_model 64", "d_model 2048", 1.10), (by_prompt, "4 tokens", "64 tokens", 2.0)):
        for scene in SCENES:
            a, b = results[scene, small], results[scene, big]
            ratio = b["wall"] / a["wall"]
            rows.append([scene, f"{small} -> {big}", f"{a['duration']:.1f} / {b['duration']:.1f}", f"{a['wall']:.1f}",
                         f"{b['wall']:.1f}", f"{ratio:.2f}", f"{b['render_s'] / a['render_s']:.2f}",
                         f"{a['mean_mobjects']:.0f} / {b['mean_mobjects']:.0f}", f"at most {limit:.2f}: " + ("met" if ratio <= limit else "missed")])
    text = table(["scene", "change", "video s", "wall s (small)", "wall s (big)", "wall ratio", "render ratio",
                  "mobjects/frame", "target"], rows)
    body = (f"{machine_line()}\n\nQuality {args.quality}. Prompts: {PROMPT!r} for the random models; "
            + "; ".join(f"{label}: {p!r}" for label, p in prompts.items()) + f" for SmolLM2.\n\n{text}")
    print()
    print(text)
    if not args.no_write:
        write_section("scale", "Model size and prompt length: `bench/scale.py`", body)


if __name__ == "__main__":
    main()
