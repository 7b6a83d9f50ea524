"""model/transformer.py against a reference written here from the formulas.

Tiny random models built straight from ModelConfig (no checkpoint, no SmolLM2), in float64.
The reference is deliberately plain: loops over heads and positions, LayerNorm / RMSNorm,
RoPE, softmax attention with an explicit causal test, GELU (tanh and erf) and the SiLU-gated
MLP written out from their definitions. Every hook the model records is compared with the
reference's value under the same TransformerLens name, and the set of names must match.
"""

from __future__ import annotations

import math

import pytest
import torch

from model.config import ModelConfig
from model.transformer import KVCache, Transformer, record, rotary_angles, rotate_pairs

torch.set_default_dtype(torch.float32)
TOL = dict(rtol=1e-5, atol=1e-6)  # rotary angles are float32 in the model


def config(**over) -> ModelConfig:
    base = dict(name="tiny", family="gpt2", n_layers=2, d_model=8, n_heads=2, n_kv_heads=2, d_head=4,
                d_mlp=12, vocab_size=13, n_ctx=16, norm_eps=0.1)
    base.update(over)
    cfg = ModelConfig(**base)
    cfg.validate()
    return cfg


CONFIGS = {
    "gpt2": config(activation="gelu_new"),
    "gpt2-erf-gelu-untied-3heads": config(activation="gelu", n_heads=3, n_kv_heads=3, d_head=2, n_layers=1),
    "llama-gqa-tied": config(family="llama", n_heads=4, n_kv_heads=2, d_head=4, activation="silu",
                             rope_base=50.0, tied_embeddings=True),
    "llama-mqa-untied": config(family="llama", n_heads=3, n_kv_heads=1, d_head=6, activation="silu",
                               rope_base=10000.0, n_layers=1, norm_eps=0.01),
}


def random_model(cfg: ModelConfig, seed: int = 0) -> Transformer:
    model = Transformer(cfg).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            p.copy_(1 + 0.3 * noise if name.endswith(".w") else 0.5 * noise)
    return model


TOKENS = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5])


# --------------------------------------------------------------------------- the reference


def ref_norm(x, w, b, eps, layernorm, hooks, name):
    centred = x - x.sum(-1, keepdim=True) / x.shape[-1] if layernorm else x
    scale = torch.sqrt((centred * centred).sum(-1, keepdim=True) / x.shape[-1] + eps)  # [pos, 1]
    hooks[f"{name}.hook_scale"] = scale
    hooks[f"{name}.hook_normalized"] = centred / scale
    return centred / scale * w + (b if layernorm else 0)


def ref_rope(x, base):
    """x: [pos, heads, d_head]; pair (2i, 2i+1) at position p turns by p * base**(-2i/d_head).

    As complex numbers: (x[2i] + i x[2i+1]) * exp(i theta).
    """
    pos, heads, d_head = x.shape
    theta = torch.tensor([[p * base ** (-(2 * i) / d_head) for i in range(d_head // 2)] for p in range(pos)],
                         dtype=torch.float64)
    pairs = torch.complex(x[..., 0::2].double(), x[..., 1::2].double())  # [pos, heads, d_head/2]
    turned = pairs * torch.polar(torch.ones_like(theta), theta)[:, None, :]
    return torch.stack((turned.real, turned.imag), dim=-1).reshape(pos, heads, d_head).to(x.dtype)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def silu(x):
    return x / (1 + torch.exp(-x))


def ref_attention(cfg, P, x, hooks, n):
    pos, H, K = x.shape[0], cfg.n_heads, cfg.n_kv_heads
    gpt2 = cfg.family == "gpt2"
    q = torch.stack([x @ P[n + "W_Q"][h] + (P[n + "b_Q"][h] if gpt2 else 0) for h in range(H)], dim=1)
    k = torch.stack([x @ P[n + "W_K"][g] + (P[n + "b_K"][g] if gpt2 else 0) for g in range(K)], dim=1)
    v = torch.stack([x @ P[n + "W_V"][g] + (P[n + "b_V"][g] if gpt2 else 0) for g in range(K)], dim=1)
    hooks[n + "hook_q"], hooks[n + "hook_k"], hooks[n + "hook_v"] = q, k, v
    if not gpt2:
        q, k = ref_rope(q, cfg.rope_base), ref_rope(k, cfg.rope_base)
        hooks[n + "hook_rot_q"], hooks[n + "hook_rot_k"] = q, k
    i, j = torch.arange(pos)[:, None], torch.arange(pos)[None, :]
    visible = j <= i  # a query at i sees keys 0..i
    scores, pattern, zs = [], [], []
    for h in range(H):
        g = h // (H // K)  # query heads 0..H/K-1 share key head 0, and so on
        s = (q[:, h] @ k[:, g].T) / math.sqrt(cfg.d_head)
        s = torch.where(visible, s, -math.inf)
        e = torch.where(visible, torch.exp(s - s.max(-1, keepdim=True).values), 0.0)
        p = e / e.sum(-1, keepdim=True)
        scores.append(s), pattern.append(p), zs.append(p @ v[:, g])
    scores, pattern, z = torch.stack(scores), torch.stack(pattern), torch.stack(zs, dim=1)
    result = torch.stack([z[:, h] @ P[n + "W_O"][h] for h in range(H)], dim=1)
    hooks.update({n + "hook_attn_scores": scores, n + "hook_pattern": pattern, n + "hook_z": z, n + "hook_result": result})
    return result.sum(1) + (P[n + "b_O"] if gpt2 else 0)


def ref_mlp(cfg, P, x, hooks, n):
    act = {"gelu_new": gelu_tanh, "gelu": gelu_erf, "silu": silu}[cfg.activation]
    if cfg.family == "gpt2":
        pre = x @ P[n + "W_in"] + P[n + "b_in"]
        post = act(pre)
        hooks[n + "hook_pre"] = pre
    else:
        gate, up = x @ P[n + "W_gate"], x @ P[n + "W_in"]
        post = act(gate) * up
        hooks[n + "hook_pre"], hooks[n + "hook_pre_linear"] = gate, up
    hooks[n + "hook_post"] = post
    return post @ P[n + "W_out"] + (P[n + "b_out"] if cfg.family == "gpt2" else 0)


def reference(cfg, model, tokens):
    P = {name: p.detach() for name, p in model.named_parameters()}
    gpt2 = cfg.family == "gpt2"
    hooks = {}
    x = P["embed.W_E"][tokens]
    hooks["hook_embed"] = x
    if gpt2:
        hooks["hook_pos_embed"] = P["pos_embed.W_pos"][: len(tokens)]
        x = x + hooks["hook_pos_embed"]
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}."
        hooks[b + "hook_resid_pre"] = x
        h = ref_norm(x, P[b + "ln1.w"], P.get(b + "ln1.b"), cfg.norm_eps, gpt2, hooks, b + "ln1")
        attn = hooks[b + "hook_attn_out"] = ref_attention(cfg, P, h, hooks, b + "attn.")
        x = hooks[b + "hook_resid_mid"] = x + attn
        h = ref_norm(x, P[b + "ln2.w"], P.get(b + "ln2.b"), cfg.norm_eps, gpt2, hooks, b + "ln2")
        mlp = hooks[b + "hook_mlp_out"] = ref_mlp(cfg, P, h, hooks, b + "mlp.")
        x = hooks[b + "hook_resid_post"] = x + mlp
    x = ref_norm(x, P["ln_final.w"], P.get("ln_final.b"), cfg.norm_eps, gpt2, hooks, "ln_final")
    W_U = P["embed.W_E"].T if cfg.tied_embeddings else P["unembed.W_U"]
    hooks["logits"] = x @ W_U
    return hooks


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", CONFIGS)
def test_forward_and_every_hook_match_the_reference(name):
    cfg = CONFIGS[name]
    model = random_model(cfg)
    tokens = TOKENS[:7]
    cache = {}
    logits = model(tokens, cache=cache)
    ref = reference(cfg, model, tokens)
    assert sorted(cache) == sorted(ref)
    for hook, value in ref.items():
        assert cache[hook].shape == value.shape, hook
        torch.testing.assert_close(cache[hook], value, **TOL, msg=hook)
        assert not cache[hook].requires_grad
    torch.testing.assert_close(logits, ref["logits"], **TOL)
    assert model(tokens).shape == (7, cfg.vocab_size)  # no cache: same logits, nothing recorded
    torch.testing.assert_close(model(tokens), logits, rtol=0, atol=0)


@pytest.mark.parametrize("name", CONFIGS)
def test_causal_mask(name):
    cfg = CONFIGS[name]
    model = random_model(cfg, seed=1)
    cache = {}
    logits = model(TOKENS, cache=cache)
    changed = TOKENS.clone()
    changed[5:] = torch.tensor([0, 12, 7, 8])
    other = model(changed)
    torch.testing.assert_close(other[:5], logits[:5], rtol=0, atol=0)  # earlier tokens never see later ones
    assert not torch.allclose(other[5:], logits[5:])
    pattern = cache["blocks.0.attn.hook_pattern"]
    future = torch.ones(len(TOKENS), len(TOKENS), dtype=torch.bool).triu(1)
    assert (pattern[:, future] == 0).all() and (pattern[:, ~future] > 0).all()
    torch.testing.assert_close(pattern.sum(-1), torch.ones(cfg.n_heads, len(TOKENS), dtype=pattern.dtype))
    assert torch.isneginf(cache["blocks.0.attn.hook_attn_scores"][:, future]).all()


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("chunks", [[4, 3, 1, 1], [1, 8]])
def test_kv_cache_equals_full_recompute(name, chunks):
    cfg = CONFIGS[name]
    model = random_model(cfg, seed=2)
    full_cache = {}
    full = model(TOKENS, cache=full_cache)
    past, start, parts = KVCache(), 0, []
    for size in chunks:
        cache = {}
        parts.append(model(TOKENS[start:start + size], cache=cache, past=past))
        start += size
        assert past.length() == start
        assert past.length(f"blocks.{cfg.n_layers - 1}.attn") == start
        assert cache["blocks.0.attn.hook_pattern"].shape == (cfg.n_heads, size, start)
    torch.testing.assert_close(torch.cat(parts), full, rtol=1e-9, atol=1e-10)
    assert past.length("no such layer") == 0
    k_hook = "hook_k" if cfg.family == "gpt2" else "hook_rot_k"
    for layer in range(cfg.n_layers):
        torch.testing.assert_close(past.keys[f"blocks.{layer}.attn"], full_cache[f"blocks.{layer}.attn.{k_hook}"])
        torch.testing.assert_close(past.values[f"blocks.{layer}.attn"], full_cache[f"blocks.{layer}.attn.hook_v"])


def test_kv_cache_extend_appends_old_then_new():
    past = KVCache()
    assert past.length() == 0
    k1, v1 = torch.zeros(2, 1, 3), torch.ones(2, 1, 3)
    assert past.extend("blocks.0.attn", k1, v1) == (k1, v1)
    k, v = past.extend("blocks.0.attn", torch.full((1, 1, 3), 5.0), torch.full((1, 1, 3), 6.0))
    assert k[:, 0, 0].tolist() == [0, 0, 5] and v[:, 0, 0].tolist() == [1, 1, 6]
    assert past.length() == 3 and past.length("blocks.1.attn") == 0
    assert past.keys["blocks.0.attn"] is k and past.values["blocks.0.attn"] is v


def test_rotary_angles_and_rotate_pairs():
    cfg = CONFIGS["llama-gqa-tied"]
    angles = rotary_angles(cfg, 5)
    assert angles.shape == (5, cfg.d_head // 2)
    for p in range(5):
        for i in range(cfg.d_head // 2):
            assert angles[p, i].item() == pytest.approx(p * cfg.rope_base ** (-2 * i / cfg.d_head), rel=1e-6)
    x = torch.randn(5, 3, cfg.d_head, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rotated = rotate_pairs(x, angles)
    torch.testing.assert_close(rotated, ref_rope(x, cfg.rope_base), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rotated[0], x[0])  # position 0 is not turned
    pairs = lambda t: t.reshape(5, 3, -1, 2).norm(dim=-1)  # noqa: E731
    torch.testing.assert_close(pairs(rotated), pairs(x))  # a rotation keeps each pair's length


def test_parameter_names_shapes_and_initial_values():
    cfg = CONFIGS["gpt2"]
    shapes = {n: tuple(p.shape) for n, p in Transformer(cfg).named_parameters()}
    H, D, E, M, V = cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_mlp, cfg.vocab_size
    expected = {"embed.W_E": (V, D), "pos_embed.W_pos": (cfg.n_ctx, D), "ln_final.w": (D,), "ln_final.b": (D,),
                "unembed.W_U": (D, V)}
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}."
        expected.update({b + "ln1.w": (D,), b + "ln1.b": (D,), b + "ln2.w": (D,), b + "ln2.b": (D,),
                         b + "attn.W_Q": (H, D, E), b + "attn.W_K": (H, D, E), b + "attn.W_V": (H, D, E),
                         b + "attn.W_O": (H, E, D), b + "attn.b_Q": (H, E), b + "attn.b_K": (H, E),
                         b + "attn.b_V": (H, E), b + "attn.b_O": (D,), b + "mlp.W_in": (D, M),
                         b + "mlp.W_out": (M, D), b + "mlp.b_in": (M,), b + "mlp.b_out": (D,)})
    assert shapes == expected

    cfg = CONFIGS["llama-gqa-tied"]
    model = Transformer(cfg)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    H, K, D, E, M = cfg.n_heads, cfg.n_kv_heads, cfg.d_model, cfg.d_head, cfg.d_mlp
    expected = {"embed.W_E": (cfg.vocab_size, D), "ln_final.w": (D,)}
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}."
        expected.update({b + "ln1.w": (D,), b + "ln2.w": (D,), b + "attn.W_Q": (H, D, E), b + "attn.W_K": (K, D, E),
                         b + "attn.W_V": (K, D, E), b + "attn.W_O": (H, E, D), b + "mlp.W_in": (D, M),
                         b + "mlp.W_gate": (D, M), b + "mlp.W_out": (M, D)})
    assert shapes == expected
    for n, p in model.named_parameters():  # a fresh model: norm scales 1, everything else 0
        assert (p == (1 if n.endswith(".w") else 0)).all(), n


@pytest.mark.parametrize("name", ["gpt2", "llama-gqa-tied"])
def test_weight_by_transformerlens_name(name):
    model = random_model(CONFIGS[name])
    W_U = model.weight("unembed.W_U")
    if CONFIGS[name].tied_embeddings:
        assert torch.equal(W_U, model.embed.W_E.T)
    else:
        assert W_U is model.unembed.W_U
    assert model.weight("blocks.1.attn.W_Q") is model.blocks[1].attn.W_Q
    assert model.weight("embed.W_E") is model.embed.W_E


def test_record():
    x = torch.ones(2, requires_grad=True)
    assert record(None, "a", x) is x
    cache = {}
    assert record(cache, "a", x) is x
    assert list(cache) == ["a"] and not cache["a"].requires_grad and torch.equal(cache["a"], x.detach())
