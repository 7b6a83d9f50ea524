"""facts/meaning.py: measured meaning, checked against identities of the forward pass and
against patterns whose behaviour is known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from facts import meaning
from model.trace import get_trace

PROMPT = "The capital of France is"


def pattern_of(kind: str, n: int = 12) -> torch.Tensor:
    """A [1, n, n] causal attention pattern that does exactly one thing."""
    p = torch.zeros(1, n, n, dtype=torch.float64)
    for q in range(n):
        if kind == "previous":
            p[0, q, max(q - 1, 0)] = 1.0
        elif kind == "first":
            p[0, q, 0] = 1.0
        elif kind == "self":
            p[0, q, q] = 1.0
        elif kind == "broad":
            p[0, q, : q + 1] = 1.0 / (q + 1)
        elif kind == "content":  # the token two back (not first, previous or self), from q = 3 on
            if q >= 3:
                p[0, q, q - 2] = 1.0
            else:
                p[0, q, : q + 1] = 1.0 / (q + 1)
    return p


@pytest.mark.parametrize("kind", ["previous", "first", "self", "broad", "content"])
def test_head_labels_on_patterns_that_do_one_thing(kind):
    trace = {"blocks.0.attn.hook_pattern": pattern_of(kind)}
    (head,) = meaning.head_behaviours(trace, 0)
    assert head["label"] == kind
    if kind in ("previous", "first", "broad"):
        assert head["strength"] == "strong" and head["score"] == pytest.approx(1.0)
    if kind == "content":
        assert head["scores"]["content"] == pytest.approx(9 / 11)  # queries 3..11 of the eleven measured


def test_a_mixed_head_is_called_weak():
    p = 0.2 * pattern_of("previous") + 0.8 * pattern_of("broad")
    (head,) = meaning.head_behaviours({"blocks.0.attn.hook_pattern": p}, 0)
    assert head["label"] == "previous" and head["strength"] == "weak" and 0.3 <= head["score"] < 0.5


@pytest.fixture(scope="module")
def trace(smollm2):
    return get_trace(PROMPT, loaded=smollm2)


def test_direct_effects_add_up_to_the_logit(trace):
    """Embedding + every layer's attention and MLP push = the answer's logit (RMSNorm: nothing else)."""
    d = meaning.direct_effects(trace, "smollm2-135m")
    logits = trace["logits"][-1].double()
    assert d["token"] == int(logits.argmax()) and d["logit"] == pytest.approx(float(logits.max()), abs=1e-4)
    total = d["embed"] + sum(r["attention"] + r["mlp"] for r in d["layers"])
    assert total == pytest.approx(d["logit"], abs=2e-3) and abs(d["rest"]) < 2e-3
    # the residual stream really is embedding + every sub-layer's output (what the decomposition relies on)
    last = trace.config.n_layers - 1
    resid = trace["hook_embed"][-1].double() + sum(trace[f"blocks.{L}.hook_attn_out"][-1].double()
                                                   + trace[f"blocks.{L}.hook_mlp_out"][-1].double()
                                                   for L in range(trace.config.n_layers))
    assert torch.allclose(resid, trace[f"blocks.{last}.hook_resid_post"][-1].double(), atol=1e-3)


def test_direct_effects_of_another_token_differ(trace):
    second = int(trace["logits"][-1].topk(2).indices[1])
    d = meaning.direct_effects(trace, "smollm2-135m", token=second)
    assert d["token"] == second
    assert d["embed"] + sum(r["attention"] + r["mlp"] for r in d["layers"]) == pytest.approx(d["logit"], abs=2e-3)


def test_the_lens_after_the_last_layer_is_the_models_prediction(trace):
    last = trace.config.n_layers - 1
    answer = int(trace["logits"][-1].argmax())
    v = meaning.vector_meaning(trace, "smollm2-135m", last, 0, len(trace.tokens) - 1, (answer,))
    top = v["stages"]["after_layer"][0]
    assert top["id"] == answer
    assert top["probability"] == pytest.approx(float(trace["logits"][-1].double().softmax(-1).max()), abs=1e-4)
    assert v["watch"][0]["after_layer_rank"] == 1
    head_out = trace[f"blocks.{last}.attn.hook_result"][-1, 0].double()
    assert v["update_share"] == pytest.approx(float(head_out.norm() / trace[f"blocks.{last}.hook_resid_pre"][-1].double().norm()))


def test_neuron_promotes_its_top_tokens(smollm2):
    top = meaning.neuron_promotes("smollm2-135m", 20, 5)
    row = smollm2.model.weight("blocks.20.mlp.W_out")[5].double() * smollm2.model.ln_final.w.double()
    pushes = row @ smollm2.model.weight("unembed.W_U").double()  # [vocab]
    assert [t["id"] for t in top] == pushes.topk(5).indices.tolist()
    assert [t["push"] for t in top] == pytest.approx(pushes.topk(5).values.tolist(), rel=1e-4)


def test_random_pairs_baseline(smollm2):
    r = meaning.random_pair_cosines("smollm2-135m", n=500, seed=1)
    assert r == meaning.random_pair_cosines("smollm2-135m", n=500, seed=1)
    assert 450 <= r["pairs"] <= 500 and r["words"] > 1000
    assert -1 <= r["mean"] <= r["mean_abs"] <= r["p95_abs"] <= 1 and math.isfinite(r["max"])


def test_random_direction_baseline(smollm2):
    r = meaning.random_direction_cosines("smollm2-135m", n=400, seed=2)
    assert r == meaning.random_direction_cosines("smollm2-135m", n=400, seed=2)
    assert r["pairs"] >= 390 and 0 <= r["mean_abs"] <= r["p95_abs"] <= 1
    # independent: two arrows between the same random words, recomputed by hand, inside [-1, 1] and far below 1
    W_E = smollm2.model.weight("embed.W_E").double()
    a, b, c, d = (W_E[i] for i in (1000, 2000, 3000, 4000))
    cos = float((b - a) @ (d - c) / ((b - a).norm() * (d - c).norm()))
    assert -1 <= cos <= 1
