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
