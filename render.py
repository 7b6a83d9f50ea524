#!/usr/bin/env python3
"""manim-transformer command line: predict, trace, list, render.

    python render.py predict "The capital of France is" --top 5
    python render.py trace "The capital of France is" -o trace.safetensors
    python render.py list
    python render.py render tokens embeddings --prompt "The capital of France is" --out media

Every error from bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_PROMPT = "The fluffy blue creature roamed the verdant forest"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + error) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_model_options(p: argparse.ArgumentParser) -> None:
    from model.loading import DEFAULT_MODEL

    p.add_argument("--model", default=DEFAULT_MODEL, help=f"{DEFAULT_MODEL} (embedded), a .gguf file, or a Hugging Face folder")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])


def build_parser() -> Parser:
    parser = Parser(prog="manim-transformer", description="Animated transformer explanations from real forward passes.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("predict", help="print the model's top next tokens for a prompt")
    p.add_argument("prompt")
    add_model_options(p)
    p.add_argument("--top", type=int, default=5, help="how many tokens to list (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("trace", help="write every intermediate tensor of one forward pass")
    p.add_argument("prompt")
    p.add_argument("-o", "--output", required=True, type=Path, help="FILE.safetensors (metadata goes to FILE.json)")
    add_model_options(p)
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("list", help="list the scenes, one line each")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("render", help="render scenes to DIR/SCENE.mp4 (+ .srt captions, .json sidecar)")
    p.add_argument("scenes", nargs="+", metavar="SCENE", help="scene names (see `list`)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="the prompt every scene explains (default: %(default)s)")
    add_model_options(p)
    p.add_argument("--layer", default="auto", help="layer number or auto (default: auto)")
    p.add_argument("--head", default="auto", help="head number or auto (default: auto, the head that best tells the story)")
    p.add_argument("--analogy", default="uncle-man+woman", help="word-vectors' second analogy, e.g. uncle-man+woman")
    p.add_argument("--theme", default="dark", choices=["dark", "light"])
    p.add_argument("--seed", type=int, default=0, help="seed for sampled tokens (default 0)")
    p.add_argument("--quality", default="low", choices=list(QUALITY), help="low=480p15, medium=720p30, high=1080p60, 4k")
    p.add_argument("--out", type=Path, default=Path("media"), help="output folder (default: media)")
    p.add_argument("--stills", action="store_true", help="also write each beat's last frame to DIR/SCENE/NN-beat.png")
    p.add_argument("--jobs", type=int, default=2, help="scenes rendered at once, one process each (default 2)")
    p.set_defaults(func=cmd_render)
    return parser


QUALITY = {"low": ("l", "480p15"), "medium": ("m", "720p30"), "high": ("h", "1080p60"), "4k": ("k", "2160p60")}


class RenderError(Exception):
    """A scene's worker process failed: one line, exit code 1, full log kept on disk."""


def cmd_predict(args) -> int:
    from model.errors import UserError
    from model.loading import load
    from model.trace import get_trace
    from model.tokenizer import token_pieces

    if args.top < 1:
        raise UserError("--top must be at least 1")
    loaded = load(args.model, args.device)
    trace = get_trace(args.prompt, loaded=loaded)
    probs = trace["logits"][-1].softmax(-1)
    values, ids = probs.topk(min(args.top, probs.numel()))
    rows = [{"token": piece, "id": int(i), "probability": round(float(v), 6)}
            for piece, i, v in zip(token_pieces(loaded.encoding, ids.tolist()), ids, values)]
    if args.json:
        print(json.dumps({"prompt": args.prompt, "model": loaded.source.display_name, "top": rows}, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{loaded.source.display_name}: what comes after {args.prompt!r}?")
    for col, justify in (("rank", "right"), ("token", "left"), ("id", "right"), ("probability", "right")):
        table.add_column(col, justify=justify)
    for rank, row in enumerate(rows, 1):
        table.add_row(str(rank), repr(row["token"]), str(row["id"]), f"{row['probability']:.2%}")
    Console().print(table)
    return 0


def cmd_trace(args) -> int:
    from model.errors import UserError
    from model.loading import load
    from model.trace import run_trace

    out = args.output
    if out.suffix != ".safetensors":
        raise UserError(f"trace output must end in .safetensors, not {out.name!r}")
    if out.is_dir() or (out.parent.exists() and not out.parent.is_dir()):
        raise UserError(f"cannot write the trace to {out}: not a file path")
    trace = run_trace(load(args.model, args.device), args.prompt)
    try:
        trace.save(out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {out} ({len(trace.tensors)} tensors, {len(trace.tokens)} tokens) and {out.with_suffix('.json')}")
    return 0


def cmd_list(args) -> int:
    from scenes.params import SCENES

    width = max(map(len, SCENES))
    for name, (_, _, line) in SCENES.items():
        print(f"{name:<{width}}  {line}")
    return 0


def cmd_render(args) -> int:
    import os
    import shutil
    import subprocess
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from model.errors import UserError
    from model.files import atomic_path, atomic_write_text
    from scenes.data import prepare
    from scenes.params import Params, parse_analogy, parse_choice, scene_info

    names = list(dict.fromkeys(args.scenes))
    for name in names:
        scene_info(name)
    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")
    params = Params(prompt=args.prompt, model=args.model, device=args.device,
                    layer=parse_choice(args.layer, "layer"), head=parse_choice(args.head, "head"),
                    theme=args.theme, seed=args.seed, analogy=parse_analogy(args.analogy))
    data = prepare(names, params)  # trace and derived facts once, here; workers read the cache
    choice = data.choice
    flag, folder = QUALITY[args.quality]
    args.out.mkdir(parents=True, exist_ok=True)
    args.out = args.out.resolve()
    work = Path(tempfile.mkdtemp(prefix=".render-", dir=args.out))
    root = Path(__file__).resolve().parent

    def render_one(name: str) -> str:
        module, cls, _ = scene_info(name)
        env = {**os.environ, **params.to_env(), "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        if args.stills:
            env["MT_STILLS"] = str(args.out / name)
        media = work / name
        cmd = [sys.executable, "-m", "manim", "render", f"-q{flag}", "--media_dir", str(media), "--progress_bar", "none",
               str(root / "scenes" / f"{module}.py"), cls]
        proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
        log = work / f"{name}.log"
        log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
        video = media / "videos" / module / folder / f"{cls}.mp4"
        if proc.returncode != 0 or not video.is_file():
            kept = args.out / f"{name}.log"
            shutil.copyfile(log, kept)
            raise RenderError(f"rendering {name} failed (exit {proc.returncode}); log: {kept}")
        with atomic_path(args.out / f"{name}.mp4") as tmp:
            shutil.copyfile(video, tmp)
        srt = video.with_suffix(".srt")
        with atomic_path(args.out / f"{name}.srt") as tmp:
            shutil.copyfile(srt, tmp) if srt.is_file() else tmp.write_text("", encoding="utf-8")
        sidecar = {
            "scene": name, "prompt": params.prompt, "tokens": data.trace.tokens,
            "model": data.trace.meta["model"]["display_name"], "model_fingerprint": data.trace.meta["model"]["fingerprint"],
            "layer": choice.layer, "head": choice.head, "head_choice": choice.to_dict(),
            "trace_hash": data.trace.hash, "params": params.to_dict(), "quality": args.quality,
            "versions": data.trace.meta.get("versions", {}), "python": sys.version.split()[0],
        }
        atomic_write_text(args.out / f"{name}.json", json.dumps(sidecar, indent=1, ensure_ascii=False))
        return name

    try:
        with ThreadPoolExecutor(max_workers=min(args.jobs, len(names))) as pool:
            for name in pool.map(render_one, names):
                print(f"wrote {args.out / name}.mp4, .srt, .json")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    from model.errors import UserError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except RenderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
