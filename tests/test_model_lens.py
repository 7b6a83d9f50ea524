"""Logit lens and next-token cost, read from real traces."""

import math

import pytest

from facts.prediction import logit_lens, mean_cost, next_token_costs
from model.trace import get_trace


def test_logit_lens_last_layer_is_the_models_prediction(smollm2):
    trace = get_trace("The capital of France is", loaded=smollm2)
    rows = logit_lens(smollm2, trace)
    assert len(rows) == 30
    assert rows[-1]["top"][0]["token"] == " Paris"
    final = trace["logits"][-1].softmax(-1)
    assert rows[-1]["top"][0]["probability"] == pytest.approx(float(final.max()), abs=1e-5)
    # early layers have not found the answer yet; the last has
    assert rows[0]["answer_probability"] < 0.01 < rows[-1]["answer_probability"]


def test_costs_are_minus_log_of_the_real_probabilities(default_trace):
    rows = next_token_costs(default_trace)
    assert len(rows) == len(default_trace.tokens) - 1
    probs = default_trace["logits"].softmax(-1)
    for r in rows:
        p = float(probs[r["position"], r["next_id"]])
        assert r["probability"] == pytest.approx(p, rel=1e-4)
        assert r["cost"] == pytest.approx(-math.log(p), rel=1e-4)
    assert mean_cost(default_trace) == pytest.approx(sum(r["cost"] for r in rows) / len(rows))
    assert [r["next"] for r in rows] == default_trace.pieces[1:]


def test_a_predictable_text_costs_less_than_a_scrambled_one(smollm2):
    plain = get_trace("One, two, three, four, five, six, seven, eight", loaded=smollm2)
    scrambled = get_trace("eight, three, seven, one, six, two, five, four", loaded=smollm2)
    assert mean_cost(plain) < mean_cost(scrambled)
