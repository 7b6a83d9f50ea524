"""Render scenes in worker processes: one manim process per scene (Cairo draws on one core),
at most N at a time, with one live progress display across all of them.

Two ways to start a worker, the same manim command line in both:
- `Workers.run` (the render CLI) forks this process once per scene, after importing manim, torch
  and the scene parts here once: a fresh `python -m manim` spends about 7 s of CPU importing them,
  more than drawing a short scene costs. It forks from the main thread with no other threads
  running (the progress display refreshes from the same loop), and the child sets its own
  environment, output and signals before manim parses its arguments.
- `Workers.run_one` starts `python -m manim` as a new program: for callers whose process holds
  threads that a fork would copy half-way (a Ray task, the batch's thread pool).

Each worker writes into a private work folder; nothing reaches the output folder from here
(see pipeline/outputs.py). Ctrl-C stops every worker and leaves no files behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --quality -> (manim flag, the folder manim names after it at its default frame rate)
QUALITY = {"low": ("l", 480, 15), "medium": ("m", 720, 30), "high": ("h", 1080, 60), "4k": ("k", 2160, 60)}
FORMATS = ("mp4", "webm", "gif", "png", "mov")


@dataclass
class SceneJob:
    name: str  # scene name, e.g. "tokens"
    module: str  # file in scenes/
    cls: str  # scene class
    env: dict[str, str]  # the MT_* live parameters
    quality: str = "low"
    fps: int | None = None
    format: str = "mp4"
    sections: bool = False
    stem: str = ""  # output file names: the scene name, or name-2, name-3 for repeats in a lecture
    gif_fps: float | None = None  # gif: frames a second kept in the GIF (None: the video's)

    def __post_init__(self):
        self.stem = self.stem or self.name


@dataclass
class SceneResult:
    job: SceneJob
    ok: bool
    error: str = ""
    video: Path | None = None  # the whole scene (None for png)
    srt: Path | None = None
    stills: list[Path] = field(default_factory=list)  # last frame of each beat
    sections_json: Path | None = None
    narration: dict | None = None  # what the scene said: voice, speed, cues (scenes/parts/base.py)
    wall: float = 0.0
    log: Path | None = None


def video_format(fmt: str) -> str:
    """What manim writes. For png, manim skips every animation (no frame drawn between beats) and
    saves the last frame; the scene saves each beat's end (scenes/parts/base.py save_still). For
    gif, an mp4 that pipeline/gif.py turns into the GIF when the clip is published."""
    return "mp4" if fmt == "gif" else fmt


def manim_command(job: SceneJob, media: Path) -> list[str]:
    flag, _, _ = QUALITY[job.quality]
    cmd = [sys.executable, "-m", "manim", "render", f"-q{flag}", "--media_dir", str(media), "--progress_bar", "none",
           "--format", video_format(job.format), "--disable_caching"]
    if job.fps:
        cmd += ["--fps", str(job.fps)]
    if job.format == "mov":
        cmd += ["--transparent"]
    if job.sections:
        cmd += ["--save_sections"]
    return cmd + [str(ROOT / "scenes" / f"{job.module}.py"), job.cls]


def find_output(media: Path, job: SceneJob) -> Path | None:
    """manim's output path depends on quality and fps: look for it rather than predict it.
    For png, the output is the beats' stills: there is no video (None)."""
    if job.format == "png":
        return None
    ext = {"mp4": ".mp4", "webm": ".webm", "gif": ".gif", "mov": ".mov"}[video_format(job.format)]
    found = [p for p in (media / "videos" / job.module).glob(f"*/{job.cls}*{ext}") if "partial" not in p.parts]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


class Workers:
    """Runs SceneJobs; remembers the live processes so Ctrl-C can stop them all."""

    def __init__(self, work: Path, jobs: int):
        self.work, self.jobs = work, jobs
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False

    def progress_file(self, job: SceneJob) -> Path:
        return self.work / f"{job.stem}.progress.json"

    def progress(self, job: SceneJob) -> dict:
        try:
            return json.loads(self.progress_file(job).read_text())
        except (OSError, ValueError):
            return {}

    def worker_env(self, job: SceneJob) -> dict[str, str]:
        """What a worker adds to the environment: the scene's MT_* parameters and where to write."""
        return {**job.env, "MT_STILLS": str(self.work / job.stem / "stills"), "MT_PROGRESS": str(self.progress_file(job)),
                "MT_NARRATION": str(self.work / f"{job.stem}.narration.json"),
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def threads(self) -> int:
        """The cores shared out between the workers: torch's thread pool spinning on a busy core
        makes its small operations many times slower."""
        return max(1, (os.cpu_count() or 1) // self.jobs)

    def run_one(self, job: SceneJob) -> SceneResult:
        """One job in a new `python -m manim` program; returns when it ends."""
        start = time.monotonic()
        env = {**os.environ, **self.worker_env(job)}
        env.setdefault("OMP_NUM_THREADS", str(self.threads()))
        log = self.work / f"{job.stem}.log"
        with open(log, "w", encoding="utf-8") as out:
            with self.lock:
                if self.stopping:
                    return SceneResult(job, False, "stopped")
                proc = subprocess.Popen(manim_command(job, self.work / job.stem), env=env, cwd=ROOT, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)  # same process group: killing the CLI's group ends its workers too
                self.procs[job.stem] = proc
            code = proc.wait()
        with self.lock:
            self.procs.pop(job.stem, None)
        return self.collect(job, code, start)

    def collect(self, job: SceneJob, code: int, start: float) -> SceneResult:
        """A finished worker's files, or why it failed."""
        media, stills = self.work / job.stem, self.work / job.stem / "stills"
        narration, log = self.work / f"{job.stem}.narration.json", self.work / f"{job.stem}.log"
        result = SceneResult(job, False, wall=time.monotonic() - start, log=log)
        video = find_output(media, job)
        result.stills = sorted(stills.glob("*.png"))
        if code != 0 or (video is None and not (job.format == "png" and result.stills)):
            result.error = failure_reason(log, code)
            return result
        result.ok, result.video = True, video
        if video is not None:
            srt = video.with_suffix(".srt")
            result.srt = srt if srt.is_file() else None
            sections = video.parent / "sections" / f"{job.cls}.json"
            result.sections_json = sections if sections.is_file() else None
        try:
            result.narration = json.loads(narration.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result.narration = None
        return result

    def run(self, jobs: list[SceneJob], on_tick=None) -> list[SceneResult]:
        """Every job, at most self.jobs at once, each in a forked worker; on_tick() a few times a
        second. Single-threaded on purpose: a fork copies only the thread that calls it."""
        preload()
        pending, running, results = list(jobs), {}, {}
        try:
            while (pending and not self.stopping) or running:
                while pending and len(running) < self.jobs and not self.stopping:
                    child = Forked(self, pending.pop(0))
                    with self.lock:
                        self.procs[child.job.stem] = running[child.job.stem] = child
                for stem, child in list(running.items()):
                    code = child.poll()
                    if code is not None:
                        with self.lock:
                            del running[stem], self.procs[stem]
                        results[stem] = self.collect(child.job, code, child.start)
                if on_tick:
                    on_tick()
                if running:
                    time.sleep(0.1)
        except KeyboardInterrupt:
            self.stop()
            raise
        return [results.get(job.stem) or SceneResult(job, False, "stopped") for job in jobs]

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            procs = list(self.procs.values())
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def preload() -> None:
    """Import here, once, what every worker needs, so that forked workers start with it."""
    import manim  # noqa: F401
    import scenes.parts.base  # noqa: F401  (torch, the facts and the parts library)


class Forked:
    """A worker forked from this process, with the part of subprocess.Popen's interface that
    Workers uses (poll, wait, terminate, kill)."""

    def __init__(self, workers: Workers, job: SceneJob):
        self.job, self.start, self.code = job, time.monotonic(), None
        env, threads, log = workers.worker_env(job), workers.threads(), workers.work / f"{job.stem}.log"
        args = manim_command(job, workers.work / job.stem)[3:]  # what follows `python -m manim`
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would write the parent's buffered text again
        self.pid = os.fork()
        if self.pid == 0:
            run_forked(args, env, threads, log)

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return self.code

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def run_forked(args: list[str], env: dict[str, str], threads: int, log: Path):
    """In the forked child: become a manim worker, run the command line, and leave with its exit
    code through os._exit (the parent's cleanup handlers, finally blocks and buffers are not ours)."""
    code = 1
    try:
        die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the CLI turns SIGTERM into KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.default_int_handler)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # not a progress display's proxies
        os.chdir(ROOT)
        os.environ.update(env)
        import torch

        torch.set_num_threads(threads)
        from manim.__main__ import main

        main.main(args=args, prog_name="manim")
        code = 0
    except SystemExit as e:  # click ends with sys.exit(code)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001  (what python -m manim would print before exiting 1)
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def die_with_parent() -> None:
    """In a worker, before it runs manim: ask Linux to send it SIGTERM when the CLI dies, even
    by SIGKILL (which the CLI cannot pass on). prctl has no wrapper in the standard library,
    hence ctypes; elsewhere than Linux this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def failure_reason(log: Path, code: int) -> str:
    """The most telling line of a failed worker's log."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("error:", "model.errors.UserError", "UserError")) or "Error:" in line:
            return line[:200]
    return (lines[-1][:200] if lines else "no output") + f" (exit {code})"
