"""Render scenes in worker processes: one manim process per scene (Cairo draws on one core),
at most N at a time, with one live progress display across all of them.

Each worker writes into a private work folder; nothing reaches the output folder from here
(see pipeline/outputs.py). Ctrl-C stops every worker and leaves no files behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    """What manim writes: png output is made from stills, so the video itself is an mp4 we drop."""
    return "mp4" if fmt == "png" else fmt


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
    """manim's output path depends on quality and fps: look for it rather than predict it."""
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

    def run_one(self, job: SceneJob) -> SceneResult:
        start = time.monotonic()
        media, stills = self.work / job.stem, self.work / job.stem / "stills"
        narration = self.work / f"{job.stem}.narration.json"
        env = {**os.environ, **job.env, "MT_STILLS": str(stills), "MT_PROGRESS": str(self.progress_file(job)),
               "MT_NARRATION": str(narration),
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        # the cores shared out between the workers: torch's thread pool spinning on a busy core
        # makes its small operations many times slower
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.jobs)))
        log = self.work / f"{job.stem}.log"
        with open(log, "w", encoding="utf-8") as out:
            with self.lock:
                if self.stopping:
                    return SceneResult(job, False, "stopped")
                proc = subprocess.Popen(manim_command(job, media), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)  # same process group: killing the CLI's group ends its workers too
                self.procs[job.stem] = proc
            code = proc.wait()
        with self.lock:
            self.procs.pop(job.stem, None)
        result = SceneResult(job, False, wall=time.monotonic() - start, log=log)
        video = find_output(media, job)
        if code != 0 or video is None:
            result.error = failure_reason(log, code)
            return result
        result.ok, result.video = True, video
        srt = video.with_suffix(".srt")
        result.srt = srt if srt.is_file() else None
        result.stills = sorted(stills.glob("*.png"))
        sections = video.parent / "sections" / f"{job.cls}.json"
        result.sections_json = sections if sections.is_file() else None
        try:
            result.narration = json.loads(narration.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result.narration = None
        return result

    def run(self, jobs: list[SceneJob], on_tick=None) -> list[SceneResult]:
        """Run every job, at most self.jobs at once; call on_tick() a few times a second."""
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(jobs)))) as pool:
            futures = [pool.submit(self.run_one, job) for job in jobs]
            try:
                while not all(f.done() for f in futures):
                    if on_tick:
                        on_tick()
                    time.sleep(0.25)
            except KeyboardInterrupt:
                self.stop()
                raise
            if on_tick:
                on_tick()
            return [f.result() for f in futures]

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
