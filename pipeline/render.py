"""From (scene, parameters, settings) triples to finished files, a lecture page and a summary.

1. Check everything the user asked for before any work starts (one clear error, exit 2).
2. Compute each distinct prompt's trace and derived facts once, here in the parent process;
   the scene workers then only read the cache.
3. Render the scenes in worker processes (pipeline/jobs.py), with one progress display.
4. Publish each finished scene atomically (pipeline/outputs.py); a failed scene does not stop
   the others, and the summary says which failed and why (exit code 1).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from model.errors import UserError
from model.cache import atomic_write_text

from .jobs import FORMATS, QUALITY, SceneJob, Workers
from .outputs import copy_atomic, publish, size_of
from .page import lecture_page


@dataclass(frozen=True)
class RenderSettings:
    quality: str = "low"
    fps: int | None = None
    format: str = "mp4"
    sections: bool = False
    gif_fps: float | None = None

    def check(self, where: str = "") -> None:
        if self.quality not in QUALITY:
            raise UserError(f"{where}unknown quality {self.quality!r} (choose from {', '.join(QUALITY)})")
        if self.format not in FORMATS:
            raise UserError(f"{where}unknown format {self.format!r} (choose from {', '.join(FORMATS)})")
        if self.fps is not None and not 1 <= self.fps <= 120:
            raise UserError(f"{where}--fps must be between 1 and 120, not {self.fps}")
        if self.gif_fps is not None and (self.format != "gif" or not 1 <= self.gif_fps <= 50):
            raise UserError(f"{where}--gif-fps goes with --format gif and must be between 1 and 50, not {self.gif_fps}")


def resolve_scene_names(requested: list[str]) -> list[str]:
    """Scene names in the order asked; `all` = every scene in storyboard order. Unknown: a suggestion."""
    from scenes.registry import SCENES

    names: list[str] = []
    for name in requested:
        if name == "all":
            names += list(SCENES)
        elif name in SCENES:
            names.append(name)
        else:
            close = difflib.get_close_matches(name, list(SCENES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; see `list`"
            raise UserError(f"unknown scene {name!r}{hint}")
    return list(dict.fromkeys(names))


def scene_params(prompt: str, model: str, device: str, layer, head, theme: str, seed: int, analogy: str,
                 voice: str = "joe", speed="1", burn_captions: bool = False, query=None, key=None):
    from model.tokenizer import check_prompt
    from scenes.parts.params import Params, parse_analogy, parse_choice
    from scenes.parts.voice import parse_speed, parse_voice

    if theme not in ("dark", "light"):
        raise UserError(f"unknown theme {theme!r} (choose dark or light)")
    if not 0 <= int(seed) < 2**63:
        raise UserError(f"seed must be between 0 and 2^63 - 1, not {seed}")
    return Params(prompt=check_prompt(prompt), model=model, device=device,
                  layer=parse_choice(None if layer is None else str(layer), "layer"),
                  head=parse_choice(None if head is None else str(head), "head"),
                  query=None if query is None else str(query), key=None if key is None else str(key),
                  theme=theme, seed=int(seed), analogy=parse_analogy(analogy),
                  voice=usable_voice(parse_voice(voice)), speed=parse_speed(speed), burn_captions=bool(burn_captions))


def usable_voice(voice: str) -> str:
    """The voice, checked (a damaged voice file: UserError); "none", with one line saying how to
    install it, when it is not installed. Checked once per voice (a lecture may name it 10,000 times)."""
    from scenes.parts.voice import missing, voice_file

    if voice in CHECKED:
        return CHECKED[voice]
    reason = missing(voice)
    if reason:
        if reason not in WARNED:
            print(f"note: {reason}; rendering silently", file=sys.stderr)
            WARNED.add(reason)
        CHECKED[voice] = "none"
        return "none"
    if voice != "none":
        voice_file(voice)
    CHECKED[voice] = voice
    return voice


CHECKED: dict[str, str] = {}
WARNED: set[str] = set()


def slug(text: str, limit: int = 40) -> str:
    """A folder-safe name for a prompt or model, plus a short hash so different texts never collide."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()[:limit].strip("-") or "prompt"
    return f"{words}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:6]}"


def default_out(params) -> Path:
    """media/<model>/<prompt-slug>/: renders for different models or prompts never overwrite each other."""
    model = Path(params.model).name if ("/" in params.model or params.model.endswith(".gguf")) else params.model
    return Path("media") / slug(model, 30) / slug(params.prompt)


MIN_FREE_BYTES = 64 << 20  # work files and a low-quality lecture fit; a full disk is refused before any work


def ensure_writable(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"cannot write to --out {out}: {e.strerror or e}") from None
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise UserError(f"--out {out} is on a full disk ({free >> 20} MB free, {MIN_FREE_BYTES >> 20} MB needed): "
                        "free some space or choose another --out")
    return out.resolve()


def sweep_stale_work(out: Path) -> None:
    """Clean up after renders that were killed (their process is gone): work folders,
    temporaries never renamed into place, and an earlier folder left aside (put back)."""
    from .outputs import sweep_leftovers

    for work in out.glob(".render-*"):
        m = re.match(r"\.render-(\d+)-", work.name)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(work, ignore_errors=True)
    sweep_leftovers(out, pid_alive)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A lecture's (or course's) options before its files set any; the prompt's default is params.DEFAULT_PROMPT.
LECTURE_DEFAULTS = {"model": "smollm2-135m", "layer": "auto", "head": "auto", "analogy": "uncle-man+woman", "theme": "dark",
                    "seed": 0, "quality": "low", "fps": None, "format": "mp4", "voice": "joe", "speed": 1.0,
                    "burn_captions": False, "query": None, "key": None}


def lecture_jobs(args):
    """A lecture file + command-line overrides -> (lecture, [(scene, params, settings)], out)."""
    from pipeline.lecture_file import load_lecture
    from scenes.parts.params import DEFAULT_PROMPT
    from scenes.registry import SCENES

    lecture = load_lecture(args.file, list(SCENES))
    cli = {k: getattr(args, k) for k in ("prompt", "model", "layer", "head", "analogy", "theme", "seed", "quality", "fps", "format",
                                         "voice", "speed", "burn_captions", "query", "key")}
    cli = {k: v for k, v in cli.items() if v is not None}
    items = []
    for entry in lecture.scenes:
        o = {**LECTURE_DEFAULTS, "prompt": DEFAULT_PROMPT, **entry.options, **cli}
        where = f"{args.file}:{entry.line}: "
        try:
            device = o.get("device", "auto") if args.device == "auto" else args.device  # --device wins when given
            params = scene_params(o["prompt"], o["model"], device, o["layer"], o["head"], o["theme"], o["seed"], o["analogy"],
                                  o["voice"], o["speed"], o["burn_captions"], o["query"], o["key"])
        except UserError as e:
            raise UserError(where + str(e)) from None
        settings = RenderSettings(o["quality"], o["fps"], o["format"], args.sections or lecture.sections,
                                  args.gif_fps if o["format"] == "gif" else None)
        settings.check(where)
        items.append((entry.name, params, settings))
    out = args.out or (Path(lecture.out) if lecture.out else default_out(items[0][1]))
    return lecture, items, out


class Display:
    """One rich progress display across all scenes; silent with --quiet or when not on a terminal."""

    def __init__(self, quiet: bool, workers: Workers, jobs: list[SceneJob]):
        self.workers, self.jobs = workers, jobs
        self.live = not quiet and sys.stderr.isatty()
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), TextColumn("{task.fields[state]}"),
                                     TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
                                     auto_refresh=False)  # no thread: workers are forked from this process
            self.tasks = {job.stem: self.progress.add_task(job.stem, total=None, state="waiting") for job in jobs}
            # all scenes together: time left estimated from the beats done so far (rich's rate of completion)
            self.overall = self.progress.add_task("all", total=None, state="") if len(jobs) > 1 else None

    def __enter__(self):
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.progress.stop()

    def tick(self) -> None:
        if not self.live:
            return
        for job in self.jobs:
            p = self.workers.progress(job)
            running = job.stem in self.workers.procs
            if not p:
                self.progress.update(self.tasks[job.stem], state="starting" if running else "waiting")
                continue
            beats = len(p.get("beats", [])) or None
            frames = int(p.get("time", 0) * p.get("fps", 0))
            finished = not running and p.get("finished")
            state = f"beat {p.get('beat', 0)}/{beats}  {frames} frames" + ("  done" if finished else "")
            self.progress.update(self.tasks[job.stem], total=beats, completed=beats if finished else max(p.get("beat", 1) - 1, 0), state=state)
        if self.overall is not None:
            tasks = [self.progress.tasks[self.tasks[job.stem]] for job in self.jobs]
            known = [t for t in tasks if t.total]
            # scenes not started yet count as the mean of those that have reported their beats
            mean = sum(t.total for t in known) / len(known) if known else None
            total = sum(t.total for t in known) + mean * (len(tasks) - len(known)) if known else None
            done = sum(t.completed for t in known)
            self.progress.update(self.overall, total=total, completed=done, state=f"{done:.0f}/{total:.0f} beats" if total else "")
        self.progress.refresh()


def plan_scenes(items: list[tuple[str, object, RenderSettings]]) -> tuple[list[SceneJob], dict]:
    """What a render will run, before any scene starts: one SceneJob per clip, and each distinct
    parameter set's SceneData prepared (trace and facts in the cache). Linear in the scenes: a
    lecture of 10,000 clips is planned in seconds (tests/test_fuzz.py times it)."""
    from scenes.parts.data import prepare
    from scenes.registry import scene_entry

    if not items:
        raise UserError("no scenes to render")
    for _, _, settings in items:
        settings.check()
    # The model runs at most once per distinct prompt/model; everything lands in the cache.
    groups: dict[str, tuple[object, list[str]]] = {}  # one group per distinct parameters (linear in scenes)
    for name, params, _ in items:
        groups.setdefault(json.dumps(params.to_dict(), sort_keys=True), (params, []))[1].append(name)
    prepared = {key: prepare(sorted(set(names)), params) for key, (params, names) in groups.items()}
    scene_jobs = []
    for (name, params, settings), stem in zip(items, clip_stems([name for name, _, _ in items])):
        entry = scene_entry(name)
        scene_jobs.append(SceneJob(name, entry.module, entry.cls, params.to_env(), settings.quality, settings.fps, settings.format,
                                   settings.sections, stem, settings.gif_fps))
    return scene_jobs, prepared


def clips_theme(items) -> str:
    """The theme of what surrounds the clips (a page, a deck): light when every clip is light."""
    return "light" if all(params.theme == "light" for _, params, _ in items) else "dark"


def clip_stems(names: list[str]) -> list[str]:
    """Each clip's file stem: the scene's name, then name-2, name-3 ... for repeats (a lecture)."""
    seen: dict[str, int] = {}
    stems = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        stems.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return stems


def print_plan(scene_jobs: list[SceneJob], out: Path) -> int:
    """--plan: one line per clip (file stem, scene, quality, format), nothing rendered or written."""
    for job in scene_jobs:
        print(f"{out / job.stem}  {job.name}  {job.quality} {job.format}")
    print(f"{len(scene_jobs)} clips planned, nothing rendered")
    return 0


def render_scenes(items: list[tuple[str, object, RenderSettings]], out: Path | None, jobs: int | None,
                  quiet: bool = False, page_title: str | None = None, plan_only: bool = False,
                  page_notes: list[dict] | None = None, summary: bool = True) -> int:
    """page_notes: per item, a lecture's {"title", "notes"} for the page (or None). summary=False:
    errors only (the caller says what it made, e.g. `slides` its deck)."""
    if not items:
        raise UserError("no scenes to render")
    if plan_only:  # nothing is written: --out is not made or checked for writing
        scene_jobs, _ = plan_scenes(items)
        return print_plan(scene_jobs, Path(out) if out else default_out(items[0][1]))
    for _, _, settings in items:
        settings.check()
    out = ensure_writable(Path(out) if out else default_out(items[0][1]))
    jobs = jobs or os.cpu_count() or 1
    scene_jobs, prepared = plan_scenes(items)

    sweep_stale_work(out)
    work = Path(tempfile.mkdtemp(prefix=f".render-{os.getpid()}-", dir=out))
    previous_term = signal.signal(signal.SIGTERM, raise_interrupt)
    started = time.monotonic()
    try:
        workers = Workers(work, jobs)
        with Display(quiet, workers, scene_jobs) as display:
            results = workers.run(scene_jobs, on_tick=display.tick)
        rows, clips = [], []
        for i, ((name, params, settings), result) in enumerate(zip(items, results)):
            data = prepared[json.dumps(params.to_dict(), sort_keys=True)]
            stem = result.job.stem
            if not result.ok:
                rows.append({"scene": stem, "ok": False, "error": result.error, "wall": result.wall,
                             "log": keep_log(result, out)})
                clips.append({"name": stem, "error": result.error} | (page_notes[i] if page_notes else {}))
                continue
            try:
                info = publish(result, out, sidecar(name, params, settings, data), workers.progress(result.job))
            except OSError as e:  # e.g. the disk filled up: this scene failed, its earlier files are intact
                error = f"cannot write its files to {out}: {e.strerror or e}"
                rows.append({"scene": stem, "ok": False, "error": error, "wall": result.wall, "log": ""})
                clips.append({"name": stem, "error": error})
                continue
            rows.append({"scene": stem, "ok": True, "file": info["file"], "duration": info["duration"],
                         "size": sum(size_of(f) for f in info["files"]), "wall": result.wall})
            clips.append(page_clip(name, params, settings, data, info) | (page_notes[i] if page_notes else {}))
        if page_title:
            subtitle = f"{len([r for r in rows if r['ok']])} clips · every number from a real forward pass"
            atomic_write_text(out / "index.html", lecture_page(page_title, subtitle, clips, clips_theme(items)))
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        shutil.rmtree(work, ignore_errors=True)
    print_summary(rows, out, time.monotonic() - started, quiet, summary)
    return 0 if all(r["ok"] for r in rows) else 1


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def keep_log(result, out: Path) -> str:
    if result.log and result.log.is_file():
        kept = out / f"{result.job.stem}.log"
        copy_atomic(result.log, kept)  # a fresh file renamed into place: never writes through a planted symlink
        return str(kept)
    return ""


def sidecar(name: str, params, settings: RenderSettings, data) -> dict:
    trace, choice = data.trace, data.choice
    return {
        "scene": name,
        "prompt": params.prompt,
        "tokens": trace.tokens,
        "pieces": trace.pieces,
        "model": trace.meta["model"]["display_name"],
        "model_fingerprint": trace.meta["model"]["fingerprint"],
        "layer": choice.layer,
        "head": choice.head,
        "head_choice": {**choice.to_dict(), **chosen_behaviour(data)},
        "seed": params.seed,
        "trace_hash": trace.hash,
        "params": params.to_dict(),
        "render": render_info(settings),
        "versions": {**trace.meta.get("versions", {}), "python": sys.version.split()[0]},
        "code": clip_code_version(),
    }


def render_info(settings: RenderSettings) -> dict:
    info = {**asdict(settings), "resolution": QUALITY[settings.quality][1], "fps": settings.fps or QUALITY[settings.quality][2]}
    if settings.format != "gif":
        del info["gif_fps"]
    return info


# The code a clip depends on (not the lecture page, the CLI or batches): its hash is the sidecar's
# "code", one of the inputs a batch compares to tell a clip already made from one to redo.
CLIP_CODE = ("model", "facts", "scenes", "pipeline/jobs.py", "pipeline/outputs.py", "pipeline/captions.py", "pipeline/audio.py",
             "pipeline/render.py")


@functools.cache
def clip_code_version() -> str:
    from model.cache import ROOT

    h = hashlib.sha256()
    for part in CLIP_CODE:
        path = ROOT / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def chosen_behaviour(data) -> dict:
    """What the chosen head does on this prompt (facts.meaning.head_behaviours): its label, score, strength."""
    b = data.head_behaviours[data.choice.head]
    return {"behaviour": b["label"], "behaviour_score": b["score"], "behaviour_strength": b["strength"]}


def page_clip(name: str, params, settings: RenderSettings, data, info: dict) -> dict:
    from scenes.registry import scene_entry

    choice = data.choice
    video = info["file"].name if settings.format != "png" else None
    mime = {"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "gif": "image/gif"}.get(settings.format, "")
    head = f"layer {choice.layer}, head {choice.head}" + (f" (auto: {choice.reason})" if choice.auto else " (chosen by hand)")
    stills = []
    if video is None:  # png: each beat's still, under its chapter's name, with what is said over it
        for still, chapter in zip(sorted(info["file"].glob("*.png")), info["chapters"]):
            said = " ".join(c.text.replace("\n", " ") for c in info["cues"] if chapter["start"] - 0.01 <= c.start < chapter["end"] - 0.01)
            stills.append({"src": f"{info['file'].name}/{still.name}", "beat": chapter["name"], "said": said})
    return {
        "name": info["name"], "line": scene_entry(name).line, "video": video, "stills": stills,
        "sections": info.get("sections", []),
        "mime": mime, "poster": info["poster"].name if info["poster"] else None,
        "captions_vtt": info["captions_vtt"], "chapters_vtt": info["chapters_vtt"], "chapters": info["chapters"],
        "provenance": {"prompt": params.prompt, "model": data.trace.meta["model"]["display_name"],
                       "fingerprint": data.trace.meta["model"]["fingerprint"][:16], "head": head,
                       "seed": str(params.seed), "trace": data.trace.hash[:16]},
    }


def print_summary(rows: list[dict], out: Path, wall: float, quiet: bool, summary: bool = True) -> None:
    failed = [r for r in rows if not r["ok"]]
    for r in failed:
        where = f" (log: {r['log']})" if r.get("log") else ""
        print(f"error: scene {r['scene']} failed: {r['error']}{where}", file=sys.stderr)
    if not summary:
        return
    if quiet:  # one line, for scripts: where the clips went
        if len(failed) < len(rows):
            print(out.resolve())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rendered into {out} in {wall:.0f} s")
    for col, justify in (("scene", "left"), ("duration", "right"), ("file", "left"), ("size", "right"), ("wall time", "right")):
        table.add_column(col, justify=justify)
    for r in rows:
        if r["ok"]:
            table.add_row(r["scene"], f"{r['duration']:.1f} s", r["file"].name, human_size(r["size"]), f"{r['wall']:.0f} s")
        else:
            table.add_row(r["scene"], "-", "[red]failed[/red]", "-", f"{r['wall']:.0f} s")
    Console().print(table)


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
