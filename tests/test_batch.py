"""`render.py batch` on a local Ray cluster that the test starts itself (2 CPUs, 127.0.0.1 only),
with a small course: 2 prompts x 2 scenes at low quality, rendered once on Ray (slow).

- the course renders, with a page per (lecture, prompt) and a course index linking them;
- each (model, prompt)'s trace is computed exactly once in the whole cluster: every Python
  process the cluster starts (Ray workers, their manim processes) carries an audit hook
  (a sitecustomize.py put first on PYTHONPATH) that logs each trace file renamed into the cache,
  and the batch runs against a fresh cache (only the float weights shared);
- clips are byte-identical to a local `render` of the same jobs (a subset: one prompt, one scene);
- a clip whose sidecar says other code, model or prompt is not done; a second run renders only
  the clip that is missing, and while it runs the Ray worker rendering it is SIGKILLed
  mid-render: its task is tried again and the batch completes, the three other clips untouched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install '.[cluster]')")]

PROMPTS = ["The capital of France is", "Michael Jordan plays the sport of"]
SCENES = ["cost", "softmax"]  # two of the quickest scenes to render
COURSE = f"""title = "Test course"

[matrix]
prompts = {json.dumps(PROMPTS)}

[defaults]
quality = "low"
fps = 2
voice = "none"

[[lecture]]
title = "Basics"
scenes = {json.dumps(SCENES)}
"""
CLIP_FILES = (".mp4", ".srt", ".vtt", ".chapters.vtt", ".poster.png", ".json")

# Imported by every Python process whose PYTHONPATH starts with its folder: logs each trace written
# into the cache (Trace.save renames the finished file into traces/; a trace is only written when computed).
COUNTER = """
import os, sys

def _trace_written(event, args):
    if event == "os.rename" and "/traces/" in str(args[1]) and str(args[1]).endswith(".safetensors"):
        with open(os.environ["MT_TEST_TRACE_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {args[1]}\\n")

if os.environ.get("MT_TEST_TRACE_LOG"):
    sys.addaudithook(_trace_written)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster (ray.init, 2 CPUs) on 127.0.0.1 only, its workers on a fresh cache."""
    base = tmp_path_factory.mktemp("batch")
    (base / "hook").mkdir()
    (base / "hook" / "sitecustomize.py").write_text(COUNTER)
    from model.cache import cache_dir

    cache = base / "cache"
    cache.mkdir()
    (cache / "weights").symlink_to(cache_dir() / "weights")  # the float weights: no dequantizing here
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "MANIM_TRANSFORMER_CACHE": str(cache), "MT_TEST_TRACE_LOG": str(base / "traces.log"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(base / "hook"), str(ROOT), os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray_tmp = tempfile.mkdtemp(prefix="mtray-")  # short: Ray's socket paths must fit in 107 bytes
    import ray  # after the variables: ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when imported

    import psutil

    started: list = []
    try:
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=ray_tmp, object_store_memory=300 << 20,
                 log_to_driver=False, logging_level="warning")
        started = psutil.Process().children(recursive=True)
        listening = [c.laddr for p in started for c in safe_connections(p) if c.status == psutil.CONN_LISTEN]
        assert listening and all(a.ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for a in listening), listening  # reachable from this machine only
        yield SimpleNamespace(base=base, cache=cache, log=base / "traces.log", address=ray.get_runtime_context().gcs_address,
                              ray=ray)
    finally:
        ray.shutdown()
        gone, alive = psutil.wait_procs(started, timeout=15)
        for proc in alive:  # only the processes this fixture's cluster started, by pid
            proc.kill()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not alive, f"Ray processes outlived ray.shutdown(): {alive}"


def safe_connections(proc):
    import psutil

    try:
        return proc.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def run_batch(course_file: Path, out: Path, address: str, capsys) -> tuple[int, str]:
    from render import main

    capsys.readouterr()
    code = main(["batch", str(course_file), "--out", str(out), "--ray", address])
    return code, capsys.readouterr().err


def render_course(cluster):
    folder = cluster.base / "course"
    folder.mkdir()
    (folder / "course.toml").write_text(COURSE)
    out = folder / "out"
    from render import main

    started = time.monotonic()
    code = main(["batch", str(folder / "course.toml"), "--out", str(out), "--ray", cluster.address, "--quiet"])
    wall = time.monotonic() - started
    log = cluster.log.read_text().splitlines() if cluster.log.exists() else []
    pages = sorted(p.parent for p in out.rglob("index.html") if p.parent != out)
    return SimpleNamespace(file=folder / "course.toml", out=out, code=code, wall=wall, trace_writes=log, pages=pages)


def sidecar(folder: Path, scene: str) -> dict:
    return json.loads((folder / f"{scene}.json").read_text(encoding="utf-8"))


def check_the_course_renders(course):
    assert course.code == 0
    assert len(course.pages) == 2
    prompts = {}
    for page in course.pages:
        for scene in SCENES:
            for suffix in CLIP_FILES:
                assert (page / f"{scene}{suffix}").stat().st_size > 0, page / f"{scene}{suffix}"
        prompt = sidecar(page, SCENES[0])["prompt"]
        assert {sidecar(page, s)["prompt"] for s in SCENES} == {prompt}
        prompts[prompt] = sidecar(page, SCENES[0])["trace_hash"]
        html = (page / "index.html").read_text(encoding="utf-8")
        assert html.count("<video") == len(SCENES) and "Basics" in html
    assert sorted(prompts) == sorted(PROMPTS) and len(set(prompts.values())) == 2
    index = (course.out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+/index\.html)"', index)
    assert sorted((course.out / link).parent for link in links) == course.pages
    assert not [p for p in course.out.rglob(".*")], "temporary files or work folders left in --out"
    assert not list(Path(tempfile.gettempdir()).glob("mt-batch-*")), "a task's scratch folder was left"


def check_each_trace_is_computed_once(course):
    """2 prompts x 2 scenes, 4 render tasks: exactly 2 traces computed in the whole cluster."""
    written = [line.split(" ", 1)[1] for line in course.trace_writes]
    assert len(written) == 2 and len(set(written)) == 2, course.trace_writes
    writers = {int(line.split(" ", 1)[0]) for line in course.trace_writes}
    assert os.getpid() not in writers  # computed on the cluster, by the prepare tasks


def check_clips_are_byte_identical_to_a_local_render(course, cluster):
    local = cluster.base / "local"
    result = subprocess.run([sys.executable, str(ROOT / "render.py"), "render", "cost", "--prompt", PROMPTS[0], "--out", str(local),
                             "--quality", "low", "--fps", "2", "--voice", "none", "--quiet"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    page = next(p for p in course.pages if sidecar(p, "cost")["prompt"] == PROMPTS[0])
    if sidecar(local, "cost")["code"] != sidecar(page, "cost")["code"]:
        return "someone edited the renderer's code between the two renders (shared tree)"
    names = sorted(p.name for p in local.iterdir())
    assert names == sorted(f"cost{suffix}" for suffix in CLIP_FILES)
    for name in names:
        assert (local / name).read_bytes() == (page / name).read_bytes(), name


def manim_process_of(log: Path, timeout: float = 240):
    """The first manim process of this test's cluster that is drawing (its progress file exists): (pid, parent pid)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
            try:
                if "manim" not in " ".join(proc.info["cmdline"] or []):
                    continue
                env = proc.environ()
                if env.get("MT_TEST_TRACE_LOG") == str(log) and Path(env.get("MT_PROGRESS", "/nonexistent")).exists():
                    return proc.info["pid"], proc.info["ppid"]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.2)
    return None


def check_resume_renders_only_what_changed_and_survives_a_killed_worker(course, cluster, capsys):
    from pipeline.batch import fingerprints, is_done, plan
    from pipeline.course import load_course
    from pipeline.render import clip_code_version
    from scenes.registry import SCENES as REGISTRY

    first, second = course.pages
    code_before = sidecar(first, SCENES[0])["code"]  # the code the course was rendered with
    jobs = plan(load_course(course.file, list(REGISTRY)))
    prints = fingerprints(jobs)
    assert all(is_done(j, course.out, prints[j.params.model], code_before) for j in jobs)
    # changed: a sidecar from other code (or another prompt, model, option) is not done
    stale = next(j for j in jobs if course.out / j.folder == second and j.stem == "cost")
    original = (second / "cost.json").read_bytes()
    for key, value in (("code", "0" * 16), ("model_fingerprint", "0" * 64), ("prompt", "another prompt")):
        (second / "cost.json").write_text(json.dumps({**json.loads(original), key: value}))
        assert not is_done(stale, course.out, prints[stale.params.model], code_before), key
    (second / "cost.json").write_bytes(original)
    # missing: rendered again by the batch below, while its Ray worker is killed once mid-render
    (first / "cost.mp4").unlink()
    keep = {p: (p.read_bytes(), p.stat().st_mtime_ns) for page in course.pages for p in page.iterdir()
            if p.is_file() and p.name != "index.html" and not (page == first and p.name.startswith("cost."))}

    killed = {}

    def kill_one_worker():
        found = manim_process_of(cluster.log)
        if found:
            killed["manim"], killed["worker"] = found
            os.kill(found[1], signal.SIGKILL)  # the Ray worker running the task, mid-render

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    code, err = run_batch(course.file, course.out, cluster.address, capsys)
    killer.join(timeout=1)
    if clip_code_version.__wrapped__() != code_before:
        return "someone edited the renderer's code during the test (shared tree): every clip is out of date"
    assert code == 0, err
    assert "4 clips in 2 pages; 3 already done, 1 to render" in err
    assert "1 rendered, 3 skipped, 0 failed" in err
    assert killed, "no render of this cluster was seen to kill"
    assert not any(p.pid == killed["worker"] for p in __import__("psutil").process_iter())
    assert (first / "cost.mp4").stat().st_size > 0 and sidecar(first, "cost")["code"] == code_before
    for path, (data, mtime) in keep.items():  # the three finished clips: not rendered again, not rewritten
        assert (path.read_bytes(), path.stat().st_mtime_ns) == (data, mtime), path
    assert not [p for p in course.out.rglob(".*")]
    assert not list(Path(tempfile.gettempdir()).glob(f"mt-batch-{killed['worker']}-*")), "the killed task's scratch was not swept"


def test_batch_on_a_local_ray_cluster(cluster, capsys):
    """One test, so that `pytest -n 2 --dist worksteal` never starts a second cluster for part of the module."""
    course = render_course(cluster)
    check_the_course_renders(course)
    check_each_trace_is_computed_once(course)
    skipped = [reason for reason in (check_clips_are_byte_identical_to_a_local_render(course, cluster),
                                     check_resume_renders_only_what_changed_and_survives_a_killed_worker(course, cluster, capsys))
               if reason]
    if skipped:
        pytest.skip("; ".join(skipped))
