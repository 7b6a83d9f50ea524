import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One cache for the whole test run (dequantized weights, traces), outside the user's home.
os.environ.setdefault("MANIM_TRANSFORMER_CACHE", str(ROOT / ".cache" / "test-cache"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one thread each. More threads than cores makes torch crawl.
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # and the renders it starts share the cores with the other worker

DEFAULT_PROMPT = "The fluffy blue creature roamed the verdant forest"


@pytest.fixture(scope="session")
def smollm2():
    from model.loading import load

    return load("smollm2-135m", "cpu")


@pytest.fixture(scope="session")
def default_trace(smollm2):
    from model.trace import get_trace

    return get_trace(DEFAULT_PROMPT, loaded=smollm2)


EARLIER_FILES = {"tokens.mp4", "tokens.json", "tokens.srt", "tokens.vtt", "tokens.chapters.vtt", "tokens.poster.png"}


def no_network_prefix() -> list[str]:
    """`unshare -n` when this machine allows it (root, or user namespaces), else []."""
    import shutil
    import subprocess

    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


@pytest.fixture(scope="session")
def earlier_render(tmp_path_factory):
    """One real render of `tokens` (silent, 480p, 2 frames a second): the earlier good output that
    the reliability, atomicity and kill tests start from (each copies it; none may change it).
    Made once per test run, shared by the xdist workers under a lock; made without network where
    `unshare -n` works (test_reliability's test_no_network checks that). -> (folder, prefix)"""
    import fcntl
    import shutil
    import subprocess

    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker of this run
    out, prefix = shared / "earlier-render", no_network_prefix()
    with open(shared / "earlier-render.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "earlier-render.done").exists():
            shutil.rmtree(out, ignore_errors=True)
            result = subprocess.run([*prefix, sys.executable, str(ROOT / "render.py"), "render", "tokens", "--out", str(out),
                                     "--quality", "low", "--fps", "2", "--quiet", "--voice", "none"],
                                    capture_output=True, text=True, cwd=ROOT, timeout=900)
            assert result.returncode == 0, result.stderr
            assert result.stdout == f"{out.resolve()}\n"  # --quiet: only where the clips went
            (shared / "earlier-render.done").touch()
    assert {p.name for p in out.iterdir()} == EARLIER_FILES
    return out, prefix


# --------------------------------------------------------------------------- scheduling
# `make test` runs `pytest -n 2 --dist worksteal`: each worker starts with half of the list, and an
# idle worker takes tests from the end of the other's. So the longest tests are dealt out first,
# one to each half in turn, and the rest keep their file order (tests sharing a build stay
# together) to balance the end. Seconds from a `--durations=0` run on two cores; a stale number
# only costs balance, never correctness.
LONGEST = {
    "tests/test_scenes_render.py::test_render_all_scenes[default]": 280,
    "tests/test_batch.py::test_batch_on_a_local_ray_cluster": 270,
    "tests/test_pipeline_render.py::test_lecture_writes_every_output": 150,
    "tests/test_determinism.py::test_renders_are_identical_across_runs_and_jobs": 110,
    "tests/test_scenes_render.py::test_render_all_scenes[tricky]": 85,
    "tests/test_pipeline_render.py::test_every_format_and_sections": 75,
    "tests/test_pipeline_render.py::test_narration_that_cannot_be_synthesized_fails_that_scene_only": 60,
    "tests/test_reliability.py::test_bad_input_case[mixed-prompt-renders]": 60,
    "tests/test_scenes.py::test_layout_fits_the_frame[prediction-longest]": 55,
    "tests/test_promises.py::test_render_with_user_gguf": 50,
    "tests/test_scenes_attention.py::test_render_at_the_length_limit": 45,
    "tests/test_model_gemma3.py::test_config_is_read_from_the_gguf": 45,
    "tests/test_one_sampler.py::test_overview_and_prediction_sample_the_same_text": 37,
    "tests/test_reliability.py::test_edited_weight_cache_entry_is_rebuilt": 33,
    "tests/test_scenes_gemma.py::test_adapted_scenes_build_with_gemma[values]": 31,
    "tests/test_reliability.py::test_two_renders_into_the_same_out": 30,
    "tests/test_model_smollm2.py::test_real_smollm2_matches_transformers_with_the_same_weights": 30,
    "tests/test_scenes.py::test_layout_fits_the_frame[prediction-scripts]": 30,
}
HEAVY = 30  # seconds: dealt out first


def expected_seconds(item) -> float:
    for name, seconds in LONGEST.items():
        if item.nodeid.startswith(name):
            return seconds
    return HEAVY if "longest" in item.nodeid else 1  # layout builds at the token limit


def pytest_collection_modifyitems(config, items):
    heavy = sorted((i for i in items if expected_seconds(i) >= HEAVY), key=expected_seconds, reverse=True)
    light = [i for i in items if expected_seconds(i) < HEAVY]
    first, second = heavy[0::2], heavy[1::2]
    k = max(0, len(items) // 2 - len(first))  # the first worker's half: `first`, then the first k light tests
    items[:] = first + light[:k] + second + light[k:]
