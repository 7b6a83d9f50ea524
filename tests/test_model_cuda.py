"""GPU and CPU traces agree (runs only where a CUDA GPU is present)."""

import pytest
import torch

from conftest import DEFAULT_PROMPT

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


def test_cuda_trace_matches_cpu(smollm2):
    from model.loading import load
    from model.trace import run_trace

    cpu = run_trace(smollm2, DEFAULT_PROMPT)
    gpu = run_trace(load("smollm2-135m", "cuda"), DEFAULT_PROMPT)
    assert gpu.meta["device"].startswith("cuda")
    worst = max((cpu[n] - gpu[n]).abs().nan_to_num(0).max().item() for n in cpu.tensors if not n.endswith("attn_scores"))
    assert worst < 1e-3, worst
    assert cpu["logits"][-1].argmax() == gpu["logits"][-1].argmax()
