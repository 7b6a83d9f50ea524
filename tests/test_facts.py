"""facts/: the facts the story scenes show, checked against the trace and weights."""

import math

import pytest

from conftest import DEFAULT_PROMPT
from facts import counts, generation, geometry, mlp, prediction
from model.trace import get_trace


def test_mlp_neurons_are_the_real_hidden_values(default_trace):
    facts = mlp.mlp_neurons(default_trace, 1, 3, top_k=5)
    post = default_trace["blocks.1.mlp.hook_post"][3]
    assert facts["d_mlp"] == 1536 == post.numel()
    assert [t["value"] for t in facts["top"]] == [float(post[t["neuron"]]) for t in facts["top"]]
    mags = [abs(t["value"]) for t in facts["top"]]
    assert mags == sorted(mags, reverse=True) and mags[0] == pytest.approx(float(post.abs().max()))
    assert facts["near_zero"] == int((post.abs() < 0.05 * post.abs().max()).sum())
    assert 0.3 < facts["fraction"] < 0.95  # most neurons are quiet for any one token


def test_parameter_counts_add_up(smollm2):
    n = counts.parameter_counts("smollm2-135m")
    c = smollm2.config
    assert n["attention"]["layer"] == c.d_model * c.d_head * (2 * c.n_heads + 2 * c.n_kv_heads)
    assert n["attention"]["W_Q"] == c.d_model * c.d_head * c.n_heads and n["attention"]["biases"] == 0
    assert n["mlp"] == 3 * c.d_model * c.d_mlp
    norms = (2 * c.n_layers + 1) * c.d_model
    assert n["total"] == n["attention_all"] + n["mlp_all"] + n["embedding"] + norms
    assert n["mlp_share"] == pytest.approx(3 * c.d_mlp / (3 * c.d_mlp + c.d_head * (2 * c.n_heads + 2 * c.n_kv_heads)))


def smollm2_piece(token_id: int) -> str:
    from model.loading import shared

    return shared("smollm2-135m").encoding.decode_single_token_bytes(token_id).decode("utf-8", "replace")


def test_temperature_table(default_trace):
    table = prediction.temperature_table(default_trace, "smollm2-135m")
    logits = default_trace["logits"][-1]
    assert table["pieces"][0] == smollm2_piece(int(logits.argmax()))
    assert table["ids"] == logits.topk(5).indices.tolist()
    assert table["probs"]["0.0"] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert table["probs"]["1.0"] == pytest.approx(logits.softmax(-1)[table["ids"]].tolist(), rel=1e-5)
    assert table["probs"]["0.5"][0] > table["probs"]["1.0"][0] > table["probs"]["2.0"][0]


def test_sampled_steps_are_reproducible(tmp_path, monkeypatch):
    first = generation.samples("smollm2-135m", DEFAULT_PROMPT, 3, seed=5)
    again = generation.samples.uncached("smollm2-135m", DEFAULT_PROMPT, 3, seed=5)  # computed afresh
    assert [s["chosen"]["id"] for s in again] == [s["chosen"]["id"] for s in first]


def test_lens_settles_on_the_answer(smollm2):
    trace = get_trace("The capital of France is", loaded=smollm2)
    rows = prediction.lens_rows(trace, "smollm2-135m")
    layer = prediction.settling_layer(rows)
    assert rows[-1]["top"][0]["token"] == " Paris"
    assert all(r["top"][0]["token"] == " Paris" for r in rows[layer:])
    assert layer == 0 or rows[layer - 1]["top"][0]["token"] != " Paris"


def test_cost_summary(default_trace):
    summary = prediction.cost_summary(default_trace)
    costs = [r["cost"] for r in summary["rows"]]
    assert summary["mean"] == pytest.approx(sum(costs) / len(costs))
    assert costs[summary["best"]] == min(costs) and costs[summary["worst"]] == max(costs)
    assert prediction.cost_summary(get_trace("Hi"))["rows"] == []


def test_kv_counts(default_trace):
    kv = counts.kv_cache_counts(default_trace, "smollm2-135m")
    assert kv["tokens"] == 10 and kv["full"] > 9 * kv["cached"]  # the tested formula: test_model_generate
    assert kv["cache_per_token"] == 2 * 30 * 3 * 64


def test_orthogonality_facts():
    facts = geometry.orthogonality(576, seed=0, dims=(8, 32))
    assert [r["dim"] for r in facts["rows"]] == [8, 32]
    assert facts["welch_at_d_model"] == pytest.approx(geometry.welch_bound(576, 2.0))
    e2 = math.sin(math.radians(2.0)) ** 2
    assert facts["welch_finite_until"] * e2 < 1 <= (facts["welch_finite_until"] + 1) * e2
