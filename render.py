#!/usr/bin/env python3
"""manim-transformer command line: predict, trace (and, as scenes land, render).

    python render.py predict "The capital of France is" --top 5
    python render.py trace "The capital of France is" -o trace.safetensors

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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    from model.errors import UserError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
