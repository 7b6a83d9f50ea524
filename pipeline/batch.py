"""Course-scale batches (`render.py batch COURSE.toml [--ray ADDRESS]`): every lecture of a course
file over its matrix, rendered here with --jobs processes or as Ray tasks on a cluster.

1. Plan: one job per (lecture, scene, model, prompt, theme, quality, format). A job's clip goes
   to OUT/<lecture>/<model>/<prompt>/<theme>-<quality>-<format>/, named as `render` names it, so
   each of those folders is what a local `render` of the same scenes would write.
2. Resume: a job whose sidecar (SCENE.json) is there with the same inputs (prompt, model
   fingerprint, options, render settings, code version) and whose clip is there is skipped.
3. Prepare: each (model, prompt)'s trace and facts are computed once. Locally they land in the
   cache the worker processes read. On Ray one task per (model, prompt) computes them and
   returns the cache entries it used (the bundle), which Ray keeps in its object store; every
   render task takes that bundle as an argument (fetched once per node) and installs what its
   node's cache lacks, so no node runs the model again.
4. Render: locally, Workers (pipeline/jobs.py) with --jobs processes. On Ray, one task per job
   runs the same SceneJob in the same kind of manim process, publishes it with the same
   functions (pipeline/outputs.py) into a private folder, and returns the files; the head node
   writes them into --out, each under a temporary name renamed into place, the sidecar last.
   With --shared the task publishes straight into --out (a filesystem every node mounts).
5. Faults: a job that fails is tried once more, then reported with its reason (exit code 1). A
   worker that dies loses only its own job's work: finished clips are already in place. Ctrl-C
   cancels what is running and leaves no partial file in --out.
6. Pages: an index.html per folder (pipeline/page.py, from the sidecars) and OUT/index.html
   linking every lecture's pages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import itertools
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from model.cache import atomic_path, atomic_write_text
from model.errors import UserError

from .jobs import SceneJob, Workers
from .outputs import publish, swap_folder
from .render import (LECTURE_DEFAULTS, RenderSettings, clip_code_version, default_out, ensure_writable, render_info, sidecar,
                     slug, scene_params, sweep_stale_work)

TRIES = 2  # a job that fails is tried once more


@dataclass(frozen=True)
class BatchJob:
    lecture: str  # the lecture's title
    folder: str  # output folder, relative to --out
    stem: str  # file names in the folder: the scene name, or name-2 ... for repeats
    name: str  # scene name
    params: object  # scenes.parts.params.Params
    settings: RenderSettings

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.stem}"

    def scene_job(self, stem: str | None = None) -> SceneJob:
        from scenes.registry import scene_entry

        entry = scene_entry(self.name)
        s = self.settings
        return SceneJob(self.name, entry.module, entry.cls, self.params.to_env(), s.quality, s.fps, s.format, s.sections,
                        stem or self.stem)

    def spec(self) -> dict:
        """The job as plain data (what a Ray task receives)."""
        return {"lecture": self.lecture, "folder": self.folder, "stem": self.stem, "name": self.name,
                "params": self.params.to_dict(), "settings": asdict(self.settings)}

    @classmethod
    def from_spec(cls, spec: dict) -> "BatchJob":
        from scenes.parts.params import Params

        params = Params(**{**spec["params"], "analogy": tuple(spec["params"]["analogy"])})
        return cls(spec["lecture"], spec["folder"], spec["stem"], spec["name"], params, RenderSettings(**spec["settings"]))

    def main_file(self, out: Path) -> Path:
        folder = Path(out) / self.folder
        return folder / self.stem if self.settings.format == "png" else folder / f"{self.stem}.{self.settings.format}"


@dataclass
class Outcome:
    job: BatchJob
    ok: bool
    error: str = ""
    tries: int = 1
    wall: float = 0.0  # the job from start to published (on Ray: the task, from start to return)
    render: float = 0.0  # of which the manim process
    node: str = ""


# ------------------------------------------------------------------------------------------ plan

def plan(course, device: str = "auto") -> list[BatchJob]:
    """Every job of the course, in lecture order, each checked (a bad option: UserError naming where)."""
    from scenes.parts.params import DEFAULT_PROMPT

    dims = list(course.matrix.items())
    combos = [dict(zip([k for k, _ in dims], values)) for values in itertools.product(*[v for _, v in dims])]
    jobs, stems = [], {}
    for lecture in course.lectures:
        for combo in combos:
            for scene in lecture.scenes:
                o = {**LECTURE_DEFAULTS, "prompt": DEFAULT_PROMPT, **scene.options, **combo}
                where = f"lecture {lecture.title!r}, scene {scene.name!r}: "
                try:
                    params = scene_params(o["prompt"], o["model"], o.get("device", device), o["layer"], o["head"], o["theme"],
                                          o["seed"], o["analogy"], o["voice"], o["speed"], o["burn_captions"], o["query"], o["key"])
                except UserError as e:
                    raise UserError(where + str(e)) from None
                settings = RenderSettings(o["quality"], o["fps"], o["format"], lecture.sections)
                settings.check(where)
                model_dir, prompt_dir = default_out(params).parts[-2:]
                folder = "/".join((slug(lecture.title), model_dir, prompt_dir, f"{params.theme}-{settings.quality}-{settings.format}"))
                count = stems.setdefault(folder, {})
                count[scene.name] = count.get(scene.name, 0) + 1
                stem = scene.name if count[scene.name] == 1 else f"{scene.name}-{count[scene.name]}"
                jobs.append(BatchJob(lecture.title, folder, stem, scene.name, params, settings))
    return jobs


def expected_inputs(job: BatchJob, fingerprint: str, code: str) -> dict:
    """What the job's sidecar must say for its clip to count as done."""
    return json.loads(json.dumps({"prompt": job.params.prompt, "model_fingerprint": fingerprint, "params": job.params.to_dict(),
                                  "render": render_info(job.settings), "code": code}))


def is_done(job: BatchJob, out: Path, fingerprint: str, code: str) -> bool:
    try:
        side = json.loads((out / job.folder / f"{job.stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    have = {k: side.get(k) for k in ("prompt", "model_fingerprint", "params", "render", "code")}
    return have == expected_inputs(job, fingerprint, code) and job.main_file(out).exists()


def fingerprints(jobs: list[BatchJob]) -> dict[str, str]:
    from model.loading import resolve

    return {model: resolve(model).fingerprint for model in dict.fromkeys(j.params.model for j in jobs)}


def trace_groups(jobs: list[BatchJob]) -> dict[tuple[str, str], list[tuple[list[str], object]]]:
    """(model, prompt) -> [(scene names, params)] for each distinct set of parameters of that trace."""
    groups: dict[tuple[str, str], dict[str, tuple[list[str], object]]] = {}
    for job in jobs:
        variants = groups.setdefault((job.params.model, job.params.prompt), {})
        names, _ = variants.setdefault(json.dumps(job.params.to_dict(), sort_keys=True), ([], job.params))
        if job.name not in names:
            names.append(job.name)
    return {key: list(variants.values()) for key, variants in groups.items()}


# ------------------------------------------------------------------------------------------ progress

class Progress:
    """One line per finished job: done / failed / remaining and an estimate of the time left."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet = total, quiet
        self.done = self.failed = 0
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"batch: {text}", file=sys.stderr, flush=True)

    def finished(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.done += 1
        else:
            self.failed += 1
        left = self.total - self.done - self.failed
        elapsed = time.monotonic() - self.started
        eta = f", about {clock(elapsed / (self.done + self.failed) * left)} left" if left else ""
        what = "done" if outcome.ok else f"FAILED ({outcome.error})"
        again = f" after {outcome.tries} tries" if outcome.tries > 1 else ""
        self.say(f"[{self.done} done, {self.failed} failed, {left} remaining{eta}] {outcome.job.label} {what}{again} "
                 f"in {outcome.wall:.0f} s")


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


# ------------------------------------------------------------------------------------------ the batch

def run_batch(course_file: Path, out: Path | None = None, jobs: int | None = None, ray_address: str | None = None,
              shared: bool = False, device: str = "auto", quiet: bool = False) -> int:
    from scenes.registry import SCENES

    from .course import load_course

    course = load_course(course_file, list(SCENES))
    all_jobs = plan(course, device)
    if shared and not ray_address:
        raise UserError("--shared only means something with --ray (tasks on other machines publishing into --out)")
    out = ensure_writable(Path(out) if out else Path(course.out) if course.out else Path("media") / slug(course.title))
    jobs = jobs or course.jobs or os.cpu_count() or 1
    ray, started = connect(ray_address, jobs) if ray_address else (None, False)  # an unreachable cluster: before any work
    try:
        return run_jobs(course, all_jobs, out, jobs, ray, ray_address, shared, quiet)
    finally:
        if started:
            ray.shutdown()


def run_jobs(course, all_jobs: list[BatchJob], out: Path, jobs: int, ray, ray_address: str | None, shared: bool,
             quiet: bool) -> int:
    code = clip_code_version()
    prints = fingerprints(all_jobs)
    todo = [j for j in all_jobs if not is_done(j, out, prints[j.params.model], code)]
    progress = Progress(len(todo), quiet)
    folders = list(dict.fromkeys(j.folder for j in all_jobs))
    progress.say(f"{len(all_jobs)} clips in {len(folders)} pages; {len(all_jobs) - len(todo)} already done, {len(todo)} to render "
                 + (f"on Ray ({ray_address})" if ray_address else f"here with {jobs} processes"))
    sweep_stale_work(out)
    for folder in folders:
        if (out / folder).is_dir():
            sweep_stale_work(out / folder)
    previous_term = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        if not todo:
            outcomes = []
        elif ray is not None:
            outcomes = run_on_ray(ray, todo, out, shared, code, progress)
        else:
            outcomes = run_here(todo, out, jobs, progress)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    failed = {o.job.label: o for o in outcomes if not o.ok}
    write_pages(course, all_jobs, out, failed)
    write_report(out, ray_address, time.monotonic() - progress.started, all_jobs, todo, outcomes)
    for o in failed.values():
        print(f"error: {o.job.label} failed after {o.tries} tries: {o.error}", file=sys.stderr)
    progress.say(f"{progress.done} rendered, {len(all_jobs) - len(todo)} skipped, {len(failed)} failed in "
                 f"{clock(time.monotonic() - progress.started)}; course page: {out / 'index.html'}")
    return 1 if failed else 0


def write_report(out: Path, ray_address: str | None, wall: float, all_jobs: list, todo: list, outcomes: list[Outcome]) -> None:
    """OUT/batch.json: this run's jobs, what became of each (rendered, failed and why, skipped), and their times."""
    rows = {o.job.label: {"ok": o.ok, "error": o.error, "tries": o.tries, "wall_s": round(o.wall, 3),
                          "render_s": round(o.render, 3), "node": o.node} for o in outcomes}
    skipped = {j.label for j in all_jobs} - {j.label for j in todo}
    atomic_write_text(out / "batch.json", json.dumps({
        "where": f"ray {ray_address}" if ray_address else "here", "wall_s": round(wall, 3), "clips": len(all_jobs),
        "skipped": sorted(skipped), "jobs": rows}, indent=1, ensure_ascii=False))


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# ------------------------------------------------------------------------------------------ here

def run_here(todo: list[BatchJob], out: Path, jobs: int, progress: Progress) -> list[Outcome]:
    """Worker processes on this machine, --jobs at a time; each clip published as soon as it is done."""
    from scenes.parts.data import prepare

    prepared = {}
    for variants in trace_groups(todo).values():  # the model runs once per (model, prompt): the trace is cached
        for names, params in variants:
            prepared[json.dumps(params.to_dict(), sort_keys=True)] = prepare(names, params)
    work = Path(tempfile.mkdtemp(prefix=f".render-{os.getpid()}-", dir=out))
    workers = Workers(work, jobs)
    outcomes: list[Outcome] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
            running = {pool.submit(workers.run_one, job.scene_job(f"{i}-1-{job.stem}")): (i, job, 1) for i, job in enumerate(todo)}
            try:
                while running:
                    finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        i, job, tries = running.pop(future)
                        result = future.result()
                        error = result.error
                        if result.ok:
                            data = prepared[json.dumps(job.params.to_dict(), sort_keys=True)]
                            progress_info = workers.progress(result.job)
                            result.job = dataclasses.replace(result.job, stem=job.stem)  # the work name -> the clip's name
                            publishing = time.monotonic()
                            try:
                                publish(result, out / job.folder, sidecar(job.name, job.params, job.settings, data), progress_info)
                            except OSError as e:
                                error = f"cannot write its files to {out / job.folder}: {e.strerror or e}"
                            else:
                                outcomes.append(Outcome(job, True, tries=tries, wall=result.wall + time.monotonic() - publishing,
                                                        render=result.wall, node=socket.gethostname()))
                                progress.finished(outcomes[-1])
                                continue
                        if tries < TRIES:
                            again = pool.submit(workers.run_one, job.scene_job(f"{i}-{tries + 1}-{job.stem}"))
                            running[again] = (i, job, tries + 1)
                        else:
                            outcomes.append(Outcome(job, False, error, tries, result.wall))
                            progress.finished(outcomes[-1])
            except KeyboardInterrupt:
                workers.stop()
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return outcomes


# ------------------------------------------------------------------------------------------ on Ray

class TaskFailed(Exception):
    """A render task's failure, with the reason (Ray retries it once)."""


def connect(address: str, jobs: int):
    """ray, and whether this call started it. `local`: a one-machine cluster on 127.0.0.1 only."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "local":
        # Ray's servers bind to the node's address; with this switch (read when ray is imported) that
        # address is 127.0.0.1, so a one-machine cluster is reachable from this machine only
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs the ray package: pip install '.[cluster]' (or pip install ray)") from None
    if ray.is_initialized():
        return ray, False
    try:
        if address == "local":
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, logging_level="warning")
        else:
            if not address.startswith("ray://"):
                check_reachable(address)  # else ray.init retries for minutes
            ray.init(address=address, log_to_driver=False, logging_level="warning")
    except UserError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot connect to the Ray cluster at {address}: {first}") from None
    return ray, True


def check_reachable(address: str) -> None:
    target = address
    if address == "auto":  # the cluster `ray start` made on this machine, found as ray.init would find it
        from ray._private.services import canonicalize_bootstrap_address_or_die

        target = canonicalize_bootstrap_address_or_die("auto")  # none: ConnectionError
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray {address!r} is not an address: give host:port, auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        where = f"{target} (found by auto)" if address == "auto" else target
        raise UserError(f"cannot reach the Ray cluster at {where}: {e.strerror or e}") from None


def run_on_ray(ray, todo: list[BatchJob], out: Path, shared: bool, code: str, progress: Progress) -> list[Outcome]:
    prepare_remote = ray.remote(num_cpus=1, max_retries=1, num_returns=2)(prepare_task)
    render_remote = ray.remote(num_cpus=1, max_retries=TRIES - 1, retry_exceptions=True)(render_task)
    refs = []
    try:
        groups = trace_groups(todo)
        bundles = {}
        infos = {}
        for key, variants in groups.items():
            info, bundle = prepare_remote.remote([(names, params.to_dict()) for names, params in variants], code)
            infos[key], bundles[key] = info, bundle
        refs = list(infos.values())
        outcomes, broken = [], {}
        for key, ref in infos.items():
            try:
                info = ray.get(ref)
            except Exception as e:  # noqa: BLE001  (the task failed twice: its clips fail, the others go on)
                broken[key] = f"computing the trace failed: {ray_reason(e)}"
                continue
            if info.get("error"):
                raise UserError(info["error"])  # bad input found with the model loaded (a layer out of range ...)
        progress.say(f"traces ready for {len(groups) - len(broken)} of {len(groups)} (model, prompt) pairs; "
                     f"{len(todo)} render tasks")
        submitted = {}
        for job in todo:
            if (job.params.model, job.params.prompt) in broken:
                outcomes.append(Outcome(job, False, broken[job.params.model, job.params.prompt], TRIES))
                progress.finished(outcomes[-1])
                continue
            ref = render_remote.remote(job.spec(), bundles[(job.params.model, job.params.prompt)], str(out) if shared else None, code)
            submitted[ref] = (job, time.monotonic())
        refs = list(submitted)
        pending = list(submitted)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                job, t0 = submitted[ref]
                try:
                    reply = ray.get(ref)
                    if not shared:
                        write_files(out / job.folder, reply["files"])
                    outcome = Outcome(job, True, wall=reply["wall"], render=reply["render"], node=reply["node"])  # Ray does not tell the task which try it is
                except OSError as e:
                    outcome = Outcome(job, False, f"cannot write its files to {out / job.folder}: {e.strerror or e}", TRIES,
                                      time.monotonic() - t0)
                except Exception as e:  # noqa: BLE001  (a Ray error: the task failed twice, or its worker died twice)
                    outcome = Outcome(job, False, ray_reason(e), TRIES, time.monotonic() - t0)
                outcomes.append(outcome)
                progress.finished(outcome)
        return outcomes
    except KeyboardInterrupt:
        stop_tasks(ray, refs)
        raise


def stop_tasks(ray, refs: list) -> None:
    """Ctrl-C: ask every task to stop (it stops its manim process and removes its folder), then force the rest."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    deadline = time.monotonic() + 5
    pending = list(refs)
    while pending and time.monotonic() < deadline:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def ray_reason(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, TaskFailed):
        return str(cause)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"[:200]
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{type(error).__name__}: {first}"[:200]


def write_files(folder: Path, files: list[tuple[str, bytes]]) -> None:
    """Write a task's files into `folder`: each file renamed into place, a folder (png stills, sections)
    swapped in whole, the sidecar last (its presence says the clip is complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    singles = [(rel, data) for rel, data in files if "/" not in rel]
    groups: dict[str, list[tuple[str, bytes]]] = {}
    for rel, data in files:
        if "/" in rel:
            top, inner = rel.split("/", 1)
            groups.setdefault(top, []).append((inner, data))
    for rel, data in sorted(singles, key=lambda f: f[0].endswith(".json")):
        if rel.endswith(".json"):
            for top, inner_files in groups.items():  # folders before the sidecar
                staged = folder / f".{top}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new"
                try:
                    for inner, blob in inner_files:
                        (staged / inner).parent.mkdir(parents=True, exist_ok=True)
                        (staged / inner).write_bytes(blob)
                    swap_folder(staged, folder / top)
                finally:
                    shutil.rmtree(staged, ignore_errors=True)
            groups = {}
        with atomic_path(folder / rel) as tmp:
            tmp.write_bytes(data)


def collect_files(folder: Path) -> list[tuple[str, bytes]]:
    return [(str(p.relative_to(folder)), p.read_bytes()) for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


# --------------------------------------------------------------------- the tasks (run on the cluster's workers)

@contextlib.contextmanager
def recording_cache_reads():
    """The cache entries (facts) read or written in this block: model.cache's JSON reader and writer,
    wrapped for the block's length (each `@cached` function looks them up when it is called)."""
    import model.cache as cache

    seen: set[Path] = set()
    read, write = cache.read_json, cache.write_json

    def reading(path):
        value = read(path)
        seen.add(Path(path))
        return value

    def writing(path, value):
        write(path, value)
        seen.add(Path(path))

    cache._MEMORY.clear()  # values remembered in this worker from an earlier task would hide their files
    cache.read_json, cache.write_json = reading, writing
    try:
        yield seen
    finally:
        cache.read_json, cache.write_json = read, write


def prepare_task(variants: list[tuple[list[str], dict]], code: str):
    """One (model, prompt): its trace and every fact its scenes need, computed (or found) in this node's
    cache. Returns (info, bundle): the bundle maps each cache file used, relative to the cache, to its bytes."""
    from model.cache import cache_dir
    from model.loading import resolve
    from model.trace import cache_path
    from scenes.parts.data import prepare
    from scenes.parts.params import Params

    if clip_code_version() != code:
        return {"error": f"the Ray node {socket.gethostname()} runs other code than this one (code {clip_code_version()}, "
                         f"here {code}): install the same version everywhere"}, {}
    used: set[Path] = set()
    computed = False
    try:
        with recording_cache_reads() as seen:
            for names, params in variants:
                params = Params(**{**params, "analogy": tuple(params["analogy"])})
                trace_file = cache_path(resolve(params.model).fingerprint, params.prompt)
                computed = computed or not trace_file.is_file()
                prepare(names, params)
                used |= {trace_file, trace_file.with_suffix(".json")}
        used |= seen
    except UserError as e:
        return {"error": str(e)}, {}
    root = cache_dir().resolve()
    bundle = {}
    for path in sorted(used):
        path = path.resolve()
        if path.is_file() and path.is_relative_to(root):
            bundle[str(path.relative_to(root))] = path.read_bytes()
    return {"computed": computed, "node": socket.gethostname(), "bytes": sum(map(len, bundle.values()))}, bundle


def install_bundle(bundle: dict[str, bytes]) -> int:
    """Put a bundle's cache entries that this node lacks into its cache; returns how many."""
    from model.cache import cache_dir

    root, added = cache_dir(), 0
    for rel, data in bundle.items():
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:  # a bundle names files inside the cache only
            raise ValueError(f"a cache bundle names a file outside the cache: {rel!r}")
        if not path.is_file():
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
            added += 1
    return added


def render_task(spec: dict, bundle: dict[str, bytes], shared_out: str | None, code: str) -> dict:
    """One clip: the same SceneJob the local path runs, in a manim process, published with the same
    functions. Raises TaskFailed (Ray tries it once more) when the render fails."""
    from scenes.parts.data import prepare

    started = time.monotonic()
    if clip_code_version() != code:
        raise TaskFailed(f"the Ray node {socket.gethostname()} runs other code than the head node")
    install_bundle(bundle)
    job = BatchJob.from_spec(spec)
    data = prepare([job.name], job.params)  # from the cache: the bundle holds all of it
    scratch = Path(tempfile.gettempdir())
    sweep_dead_scratch(scratch)
    work = Path(tempfile.mkdtemp(prefix=f"mt-batch-{os.getpid()}-", dir=scratch))
    workers = Workers(work / "render", 1)
    (work / "render").mkdir()
    try:
        result = wait_interruptibly(workers.run_one, job.scene_job())
        if not result.ok:
            raise TaskFailed(result.error)
        side = sidecar(job.name, job.params, job.settings, data)
        if shared_out:
            publish(result, Path(shared_out) / job.folder, side, workers.progress(result.job))
            files = []
        else:
            stage = work / "out"
            stage.mkdir()
            publish(result, stage, side, workers.progress(result.job))
            files = collect_files(stage)
        return {"files": files, "wall": time.monotonic() - started, "render": result.wall, "node": socket.gethostname()}
    finally:
        workers.stop()
        shutil.rmtree(work, ignore_errors=True)


def wait_interruptibly(fn, *args):
    """fn(*args) in a helper thread while this one waits in short steps: Ray cancels a task by raising
    KeyboardInterrupt in its main thread, which a blocking wait for the manim process would not notice."""
    box: dict = {}

    def call():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001  (handed to the waiting thread)
            box["error"] = e

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    if "error" in box:
        raise box["error"]
    return box["value"]


def sweep_dead_scratch(scratch: Path) -> None:
    """Scratch folders of tasks whose worker process died (killed, or cancelled by force)."""
    from .render import pid_alive

    for folder in scratch.glob("mt-batch-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------ pages

def write_pages(course, all_jobs: list[BatchJob], out: Path, failed: dict[str, Outcome]) -> None:
    from .page import lecture_page

    folders: dict[str, list[BatchJob]] = {}
    for job in all_jobs:
        folders.setdefault(job.folder, []).append(job)
    links = []
    for folder, jobs in folders.items():
        clips = [clip_from_files(job, out, failed.get(job.label)) for job in jobs]
        made = sum(1 for c in clips if not c.get("error"))
        p, s = jobs[0].params, jobs[0].settings
        subtitle = f"{p.prompt} · {Path(p.model).name} · {p.theme}, {s.quality}, {s.format} · {made} of {len(clips)} clips"
        if (out / folder).is_dir():
            atomic_write_text(out / folder / "index.html", lecture_page(jobs[0].lecture, subtitle, clips, p.theme))
        links.append((jobs[0].lecture, folder, subtitle, made == len(clips)))
    atomic_write_text(out / "index.html", course_page(course.title, links))


def clip_from_files(job: BatchJob, out: Path, failure: Outcome | None) -> dict:
    """What pipeline/page.py draws for one clip, read back from the files its render published."""
    from scenes.registry import scene_entry

    folder = out / job.folder
    try:
        side = json.loads((folder / f"{job.stem}.json").read_text(encoding="utf-8"))
        captions_vtt = (folder / f"{job.stem}.vtt").read_text(encoding="utf-8")
        chapters_vtt = (folder / f"{job.stem}.chapters.vtt").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {"name": job.stem, "error": failure.error if failure else "not rendered"}
    if failure:  # an earlier clip is there, but this run's failed
        return {"name": job.stem, "error": f"{failure.error} (the clip below it on disk is from an earlier run)"}
    fmt = job.settings.format
    poster = f"{job.stem}.poster.png" if (folder / f"{job.stem}.poster.png").is_file() else None
    choice = side.get("head_choice", {})
    head = f"layer {choice.get('layer')}, head {choice.get('head')}" + (
        f" (auto: {choice.get('reason')})" if choice.get("auto") else " (chosen by hand)")
    mime = {"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "gif": "image/gif"}.get(fmt, "")
    return {
        "name": job.stem, "line": scene_entry(job.name).line,
        "video": f"{job.stem}.{fmt}" if fmt != "png" else (poster or ""), "mime": mime, "poster": poster,
        "captions_vtt": captions_vtt, "chapters_vtt": chapters_vtt, "chapters": side.get("chapters", []),
        "provenance": {"prompt": side.get("prompt", ""), "model": side.get("model", ""),
                       "fingerprint": str(side.get("model_fingerprint", ""))[:16], "head": head,
                       "seed": str(side.get("seed", "")), "trace": str(side.get("trace_hash", ""))[:16]},
    }


def course_page(title: str, links: list[tuple[str, str, str, bool]]) -> str:
    from .page import STYLE

    e = html.escape
    by_lecture: dict[str, list[str]] = {}
    for lecture, folder, subtitle, complete in links:
        mark = "" if complete else ' <span class="failed">(incomplete)</span>'
        by_lecture.setdefault(lecture, []).append(f'<li><a href="{e(quote(folder))}/index.html">{e(subtitle)}</a>{mark}</li>')
    sections = [f"<h2>{e(lecture)}</h2>\n<ul>\n" + "\n".join(items) + "\n</ul>" for lecture, items in by_lecture.items()]
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{STYLE} ul {{ line-height: 1.7; }} a {{ color: #8ab4f8; }}</style>
</head>
<body>
<main>
<h1>{e(title)}</h1>
<p class="sub">{len(links)} lecture pages · every number from a real forward pass</p>
{body}
</main>
</body>
</html>
"""
