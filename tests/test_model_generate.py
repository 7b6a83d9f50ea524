"""Sampling, temperature and the KV cache."""

import copy

import pytest
import torch

from conftest import DEFAULT_PROMPT
from facts.counts import multiply_adds
from facts.generation import generate, softmax_with_temperature
from model.transformer import KVCache


def cached_vs_full(model, ids, split):
    past = KVCache()
    steps = [model(ids[:split], past=past)] + [model(ids[i:i + 1], past=past) for i in range(split, len(ids))]
    assert past.length() == len(ids)
    return torch.cat(steps), model(ids)


def test_kv_cache_gives_the_same_logits_as_full_recompute(smollm2):
    ids = torch.tensor(smollm2.encoding.encode(DEFAULT_PROMPT))
    # In float64 the two orders of summation agree far below 1e-5 ...
    double = copy.deepcopy(smollm2.model).double()
    cached, full = cached_vs_full(double, ids, 6)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)
    # ... and in float32, as rendered, within float32 rounding of logits of size ~20.
    cached, full = cached_vs_full(smollm2.model, ids, 6)
    torch.testing.assert_close(cached, full, atol=2e-4, rtol=1e-5)
    assert torch.equal(cached.argmax(-1), full.argmax(-1))


def test_kv_cache_with_learned_positions(tmp_path):
    transformers = pytest.importorskip("transformers")
    from model.loading import load

    torch.manual_seed(1)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=50257)).save_pretrained(tmp_path)
    loaded = load(str(tmp_path), "cpu")
    ids = torch.tensor(loaded.encoding.encode("positions are learned in GPT-2 models"))
    cached, full = cached_vs_full(loaded.model.double(), ids, 3)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_same_seed_same_tokens_other_seed_other_tokens(smollm2):
    a = generate(smollm2, DEFAULT_PROMPT, 6, temperature=1.0, seed=7)
    b = generate(smollm2, DEFAULT_PROMPT, 6, temperature=1.0, seed=7)
    assert [s["chosen"]["id"] for s in a] == [s["chosen"]["id"] for s in b]
    others = {tuple(s["chosen"]["id"] for s in generate(smollm2, DEFAULT_PROMPT, 6, 1.0, seed)) for seed in range(4)}
    assert len(others) > 1
    # each step continues the sampled text: step 2's top tokens are a fresh full pass over the
    # prompt and step 1's token (no KV cache)
    from model.trace import encode_prompt

    ids = torch.tensor(encode_prompt(smollm2, DEFAULT_PROMPT) + [a[0]["chosen"]["id"]])
    top = torch.softmax(smollm2.model(ids)[-1].float(), -1).topk(len(a[1]["top"]))
    assert [t["id"] for t in a[1]["top"]] == top.indices.tolist()
    torch.testing.assert_close(torch.tensor([t["probability"] for t in a[1]["top"]]), top.values, atol=1e-5, rtol=0)


def test_temperature_zero_is_greedy(smollm2):
    steps = generate(smollm2, "The capital of France is", 1, temperature=0, seed=123)
    assert steps[0]["chosen"]["token"] == " Paris"
    assert steps[0]["top"][0]["probability"] == 1.0


def test_temperature_reshapes_the_distribution():
    logits = torch.tensor([2.0, 1.0, 0.0])
    cold, warm, hot = (softmax_with_temperature(logits, t) for t in (0.5, 1.0, 2.0))
    assert cold[0] > warm[0] > hot[0] > 1 / 3
    for p in (cold, warm, hot):
        assert p.sum().item() == pytest.approx(1.0)
    assert softmax_with_temperature(logits, 0).tolist() == [1.0, 0.0, 0.0]


def test_multiply_adds_match_the_formula(smollm2):
    c = smollm2.config
    ids = smollm2.encoding.encode(DEFAULT_PROMPT)
    n = len(ids)
    per_token = (  # weights touched by one token, per layer: Q, K, V, O projections and the gated MLP
        c.d_model * c.d_head * (2 * c.n_heads + 2 * c.n_kv_heads) + 3 * c.d_model * c.d_mlp
    )
    attention = lambda queries, keys: 2 * queries * keys * c.n_heads * c.d_head  # noqa: E731  q.k and weights x values
    unembed = c.d_model * c.vocab_size
    full = c.n_layers * (n * per_token + attention(n, n)) + n * unembed
    cached = c.n_layers * (per_token + attention(1, n)) + unembed
    assert multiply_adds(smollm2, ids, with_cache=False) == full
    assert multiply_adds(smollm2, ids, with_cache=True) == cached
