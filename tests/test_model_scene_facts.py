"""model/scene_facts.py: the facts the story scenes show, checked against the trace and weights."""

import math

import pytest

from conftest import DEFAULT_PROMPT
from model import scene_facts
from model.trace import get_trace


def test_mlp_neurons_are_the_real_hidden_values(default_trace):
    facts = scene_facts.mlp_neurons(default_trace, 1, 3, top_k=5)
    post = default_trace["blocks.1.mlp.hook_post"][3]
    assert facts["d_mlp"] == 1536 == post.numel()
    assert [t["value"] for t in facts["top"]] == [float(post[t["neuron"]]) for t in facts["top"]]
    mags = [abs(t["value"]) for t in facts["top"]]
    assert mags == sorted(mags, reverse=True) and mags[0] == pytest.approx(float(post.abs().max()))
    assert facts["near_zero"] == int((post.abs() < 0.05 * post.abs().max()).sum())
    assert 0.3 < facts["fraction"] < 0.95  # most neurons are quiet for any one token


def test_parameter_counts_add_up(smollm2):
    counts = scene_facts.parameter_counts("smollm2-135m")
    c = smollm2.config
    assert counts["attention"] == c.d_model * c.d_head * (2 * c.n_heads + 2 * c.n_kv_heads)
    assert counts["mlp"] == 3 * c.d_model * c.d_mlp
    norms = (2 * c.n_layers + 1) * c.d_model
    assert counts["total"] == counts["attention_all"] + counts["mlp_all"] + counts["embedding"] + norms
    assert counts["mlp_share"] == pytest.approx(0.75, abs=0.01)


def test_temperature_table(default_trace):
    table = scene_facts.temperature_table(default_trace, "smollm2-135m")
    assert table["pieces"][0] == ","
    logits = default_trace["logits"][-1]
    assert table["ids"] == logits.topk(5).indices.tolist()
    assert table["probs"]["0.0"] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert table["probs"]["1.0"] == pytest.approx(logits.softmax(-1)[table["ids"]].tolist(), rel=1e-5)
    assert table["probs"]["0.5"][0] > table["probs"]["1.0"][0] > table["probs"]["2.0"][0]


def test_sampled_steps_are_reproducible(tmp_path, monkeypatch):
    first = scene_facts.sampled_steps("smollm2-135m", DEFAULT_PROMPT, 3, seed=5)
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))  # no cache: computed again
    again = scene_facts.sampled_steps("smollm2-135m", DEFAULT_PROMPT, 3, seed=5)
    assert [s["chosen"]["id"] for s in again] == [s["chosen"]["id"] for s in first]


def test_lens_settles_on_the_answer(smollm2):
    trace = get_trace("The capital of France is", loaded=smollm2)
    rows = scene_facts.lens_rows(trace, "smollm2-135m")
    layer = scene_facts.settling_layer(rows)
    assert rows[-1]["top"][0]["token"] == " Paris"
    assert all(r["top"][0]["token"] == " Paris" for r in rows[layer:])
    assert layer == 0 or rows[layer - 1]["top"][0]["token"] != " Paris"


def test_cost_summary(default_trace):
    summary = scene_facts.cost_summary(default_trace)
    costs = [r["cost"] for r in summary["rows"]]
    assert summary["mean"] == pytest.approx(sum(costs) / len(costs))
    assert costs[summary["best"]] == min(costs) and costs[summary["worst"]] == max(costs)
    assert scene_facts.cost_summary(get_trace("Hi"))["rows"] == []


def test_kv_counts(default_trace):
    counts = scene_facts.kv_cache_counts(default_trace, "smollm2-135m")
    assert counts["tokens"] == 10 and counts["full"] > 9 * counts["cached"]  # the tested formula: test_model_generate
    assert counts["cache_per_token"] == 2 * 30 * 3 * 64


def test_orthogonality_facts():
    facts = scene_facts.orthogonality(576, seed=0, dims=(8, 32))
    assert [r["dim"] for r in facts["rows"]] == [8, 32]
    assert facts["welch_at_d_model"] == pytest.approx(scene_facts.welch_bound(576, 2.0))
    e2 = math.sin(math.radians(2.0)) ** 2
    assert facts["welch_finite_until"] * e2 < 1 <= (facts["welch_finite_until"] + 1) * e2
