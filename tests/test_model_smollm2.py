"""The embedded SmolLM2-135M: real predictions, trace invariants, caches, tokenizer."""

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import DEFAULT_PROMPT
from model import loading
from model.errors import UserError
from model.tokenizer import unencodable
from model.trace import MAX_PROMPT_TOKENS, Trace, cache_path, get_trace, run_trace


def top_token(loaded, prompt):
    trace = get_trace(prompt, loaded=loaded)
    return loaded.encoding.decode([int(trace["logits"][-1].argmax())])


def test_config_is_the_real_smollm2(smollm2):
    c = smollm2.config
    assert (c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.d_mlp, c.vocab_size) == (30, 576, 9, 3, 64, 1536, 49152)
    assert c.rope_base == 100000.0 and c.tied_embeddings and c.positional == "rotary"
    n_params = sum(p.numel() for p in smollm2.model.parameters())
    assert 134_000_000 < n_params < 135_000_000  # "135M", embeddings counted once (tied)


@pytest.mark.parametrize("prompt, expected", [
    ("The capital of France is", " Paris"),
    ("One, two, three, four,", " five"),
    ("The opposite of hot is", " cold"),
])
def test_real_predictions_are_sensible(smollm2, prompt, expected):
    assert top_token(smollm2, prompt) == expected


def test_story_head_attends_from_the_noun_to_its_adjectives(default_trace):
    # The storyboard's measured fact: layer 1 head 2, ' creature' -> ' fluffy' + ' blue' ~ 0.92.
    pieces = default_trace.pieces
    q, adjectives = pieces.index(" creature"), [pieces.index(" fluffy"), pieces.index(" blue")]
    weight = default_trace["blocks.1.attn.hook_pattern"][2, q, adjectives].sum()
    assert weight == pytest.approx(0.92, abs=0.02)


def test_trace_invariants(default_trace):
    t, cfg = default_trace, default_trace.config
    n = len(t.tokens)
    future = torch.ones(n, n, dtype=torch.bool).triu(1)
    for L in range(cfg.n_layers):
        b = f"blocks.{L}."
        pattern = t[b + "attn.hook_pattern"]  # [heads, q, k]
        torch.testing.assert_close(pattern.sum(-1), torch.ones(cfg.n_heads, n))
        assert (pattern[:, future] == 0).all()  # masked cells exactly 0
        assert torch.isneginf(t[b + "attn.hook_attn_scores"][:, future]).all()
        torch.testing.assert_close(t[b + "hook_resid_mid"], t[b + "hook_resid_pre"] + t[b + "hook_attn_out"])
        torch.testing.assert_close(t[b + "hook_resid_post"], t[b + "hook_resid_mid"] + t[b + "hook_mlp_out"])
        torch.testing.assert_close(t[b + "hook_attn_out"], t[b + "attn.hook_result"].sum(1), atol=1e-5, rtol=1e-5)
        if L + 1 < cfg.n_layers:
            assert torch.equal(t[b + "hook_resid_post"], t[f"blocks.{L + 1}.hook_resid_pre"])
    assert torch.equal(t["hook_embed"], t["blocks.0.hook_resid_pre"])  # rotary: no position vector added
    assert "hook_pos_embed" not in t
    assert t["logits"].shape == (n, cfg.vocab_size)


def test_trace_shapes_and_rope(default_trace, smollm2):
    t, c = default_trace, smollm2.config
    n = len(t.tokens)
    assert t["blocks.3.attn.hook_q"].shape == (n, c.n_heads, c.d_head)
    assert t["blocks.3.attn.hook_k"].shape == (n, c.n_kv_heads, c.d_head)
    assert t["blocks.3.attn.hook_result"].shape == (n, c.n_heads, c.d_model)
    assert t["blocks.3.mlp.hook_post"].shape == (n, c.d_mlp)
    # Position 0 is not rotated; later positions are, and rotation keeps each pair's length.
    q_pre, q = t["blocks.3.attn.hook_q"], t["blocks.3.attn.hook_rot_q"]
    torch.testing.assert_close(q[0], q_pre[0])
    assert not torch.allclose(q[5], q_pre[5])
    pair_norm = lambda x: x.reshape(*x.shape[:-1], -1, 2).norm(dim=-1)  # noqa: E731
    torch.testing.assert_close(pair_norm(q), pair_norm(q_pre))
    # hook_z is the pattern-weighted sum of the (shared) values.
    v = t["blocks.3.attn.hook_v"].repeat_interleave(c.heads_per_kv, dim=1)
    z = torch.einsum("hqk,khe->qhe", t["blocks.3.attn.hook_pattern"], v)
    torch.testing.assert_close(t["blocks.3.attn.hook_z"], z)


def test_weights_are_reachable_by_name(smollm2, default_trace):
    m = smollm2.model
    assert m.weight("blocks.3.attn.W_Q").shape == (9, 576, 64)
    assert m.weight("unembed.W_U").shape == (576, 49152)
    # hook_embed rows are rows of W_E
    torch.testing.assert_close(default_trace["hook_embed"], m.weight("embed.W_E")[default_trace.tokens])
    # logits = final normalised stream, times the final norm's weight, @ W_U
    final = default_trace["ln_final.hook_normalized"] * m.weight("ln_final.w")
    torch.testing.assert_close(default_trace["logits"], final @ m.weight("unembed.W_U"), atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------- hooks mean what TransformerLens means

def test_hook_rot_q_is_hook_q_turned_by_the_position_angles(default_trace, smollm2):
    """hook_q / hook_k are before RoPE; hook_rot_q / hook_rot_k are each pair (2i, 2i+1) turned by
    p * base^(-2i/d_head), computed here from the formula, not with the model's own helper."""
    c = smollm2.config
    for which in ("q", "k"):
        before, after = default_trace[f"blocks.2.attn.hook_{which}"], default_trace[f"blocks.2.attn.hook_rot_{which}"]
        n, heads, d = before.shape
        for p in (0, 3, n - 1):
            for i in (0, 7, d // 2 - 1):
                angle = p * c.rope_base ** (-2 * i / d)
                x, y = before[p, :, 2 * i].double(), before[p, :, 2 * i + 1].double()
                want = torch.stack([x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)], 1)
                torch.testing.assert_close(after[p, :, 2 * i: 2 * i + 2].double(), want, atol=1e-5, rtol=1e-4)


def test_hook_normalized_is_before_the_norm_weight_and_feeds_attention_and_mlp(default_trace, smollm2):
    """hook_normalized = x / hook_scale (RMS); times the norm's weight it is what W_Q and W_gate read."""
    m, t = smollm2.model, default_trace
    L = 4
    x = t[f"blocks.{L}.hook_resid_pre"].double()
    scale = (x.pow(2).mean(-1, keepdim=True) + smollm2.config.norm_eps).sqrt()
    torch.testing.assert_close(t[f"blocks.{L}.ln1.hook_scale"].double(), scale, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(t[f"blocks.{L}.ln1.hook_normalized"].double(), x / scale, atol=1e-5, rtol=1e-5)
    read_by_attention = t[f"blocks.{L}.ln1.hook_normalized"] * m.weight(f"blocks.{L}.ln1.w")
    q = torch.einsum("pd,hde->phe", read_by_attention, m.weight(f"blocks.{L}.attn.W_Q"))
    torch.testing.assert_close(t[f"blocks.{L}.attn.hook_q"], q, atol=1e-4, rtol=1e-4)
    read_by_mlp = t[f"blocks.{L}.ln2.hook_normalized"] * m.weight(f"blocks.{L}.ln2.w")
    torch.testing.assert_close(t[f"blocks.{L}.mlp.hook_pre"], read_by_mlp @ m.weight(f"blocks.{L}.mlp.W_gate"), atol=1e-4, rtol=1e-4)


def test_gated_mlp_multiplies_the_gate_and_the_up_projection(default_trace, smollm2):
    """Gated MLP, TransformerLens's names: hook_pre is the gate (what SiLU reads), hook_pre_linear the
    up-projection, hook_post = silu(hook_pre) * hook_pre_linear, and W_out of that is hook_mlp_out."""
    m, t = smollm2.model, default_trace
    L = 7
    x = t[f"blocks.{L}.ln2.hook_normalized"] * m.weight(f"blocks.{L}.ln2.w")
    torch.testing.assert_close(t[f"blocks.{L}.mlp.hook_pre_linear"], x @ m.weight(f"blocks.{L}.mlp.W_in"), atol=1e-4, rtol=1e-4)
    gate = t[f"blocks.{L}.mlp.hook_pre"].double()
    post = gate / (1 + torch.exp(-gate)) * t[f"blocks.{L}.mlp.hook_pre_linear"].double()
    torch.testing.assert_close(t[f"blocks.{L}.mlp.hook_post"].double(), post, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(t[f"blocks.{L}.hook_mlp_out"], t[f"blocks.{L}.mlp.hook_post"] @ m.weight(f"blocks.{L}.mlp.W_out"),
                               atol=1e-4, rtol=1e-4)


def test_unknown_activation_is_refused():
    from model.config import ModelConfig
    from model.errors import UserError

    cfg = ModelConfig("x", "gpt2", 1, 8, 2, 2, 4, 32, 50257, 16, 1e-5, activation="relu")
    with pytest.raises(UserError, match="unknown activation 'relu'"):
        cfg.validate()
    with pytest.raises(UserError, match="unknown family"):
        ModelConfig("x", "mamba", 1, 8, 2, 2, 4, 32, 50257, 16, 1e-5).validate()


def test_trace_cache_hit_does_not_load_the_model(smollm2, monkeypatch):
    prompt = "A cached prompt about owls"
    first = get_trace(prompt, loaded=smollm2)

    def no_loading(*a, **k):
        raise AssertionError("the model was loaded for a cached prompt")

    monkeypatch.setattr(loading, "load", no_loading)
    monkeypatch.setattr("model.trace.load", no_loading)
    again = get_trace(prompt)
    assert again.hash == first.hash
    torch.testing.assert_close(again["logits"], first["logits"])


def test_damaged_trace_cache_entry_is_rebuilt(smollm2):
    prompt = "A prompt whose cache entry gets damaged"
    good = get_trace(prompt, loaded=smollm2)
    path = cache_path(smollm2.fingerprint, prompt)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip one byte inside a tensor
    path.write_bytes(bytes(data))
    with pytest.raises(UserError):
        Trace.load(path)
    rebuilt = get_trace(prompt, loaded=smollm2)
    assert rebuilt.hash == good.hash


def test_trace_file_round_trip(default_trace, tmp_path):
    path = tmp_path / "t.safetensors"
    default_trace.save(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["prompt"] == DEFAULT_PROMPT
    assert meta["model"]["fingerprint"] and meta["config"]["n_layers"] == 30
    assert {"torch", "tiktoken", "gguf"} <= set(meta["versions"])
    back = Trace.load(path)
    assert back.pieces == default_trace.pieces
    assert set(back.tensors) == set(default_trace.tensors)


def test_weight_cache_gives_the_same_model(smollm2):
    cached = list((loading.cache_dir() / "weights").glob(f"{smollm2.fingerprint}-*.safetensors"))
    assert len(cached) == 1
    again = loading.load("smollm2-135m", "cpu")  # from the cache
    for name, p in smollm2.model.state_dict().items():
        assert torch.equal(p, again.model.state_dict()[name]), name


def test_damaged_weight_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))
    first = loading.load("smollm2-135m", "cpu")
    (entry,) = (tmp_path / "weights").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[: 1 << 20])  # truncate
    again = loading.load("smollm2-135m", "cpu")
    assert torch.equal(first.model.weight("embed.W_E"), again.model.weight("embed.W_E"))


def test_prompt_limits(smollm2):
    with pytest.raises(UserError, match="empty"):
        get_trace("   \n", loaded=smollm2)
    with pytest.raises(UserError, match="control character"):
        get_trace("a\x00b", loaded=smollm2)
    with pytest.raises(UserError, match=f"at most {MAX_PROMPT_TOKENS}"):
        run_trace(smollm2, "word " * (MAX_PROMPT_TOKENS + 1))
    assert len(run_trace(smollm2, "1" * MAX_PROMPT_TOKENS).tokens) == MAX_PROMPT_TOKENS  # every digit is a token


# --- tokenizer -----------------------------------------------------------------------------

def test_gpt2_tokenizer_gives_the_published_ids():
    from model.tokenizer import gpt2_encoding

    enc = gpt2_encoding()
    assert enc.n_vocab == 50257
    assert enc.encode("hello world") == [31373, 995]
    assert enc.encode("Hello world, this is a test.") == [15496, 995, 11, 428, 318, 257, 1332, 13]


@pytest.fixture(scope="module")
def reference_smollm2_tokenizer(smollm2):
    """SmolLM2's real tokenizer, rebuilt with the `tokenizers` library from the same GGUF vocabulary.

    transformers' GGUF conversion drops the Digits pre-tokenizer, so we restore SmolLM2's
    published pre-tokenizer (individual digits, then byte-level) on top of it.
    """
    transformers = pytest.importorskip("transformers")
    from tokenizers import pre_tokenizers

    path = smollm2.source.path
    tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return tok


SAMPLES = [
    DEFAULT_PROMPT, "abc  123 x1y22", "  1", "Hello\n\n  world!! It's 3.14", "ünïcödé 🙂 中文 مرحبا",
    "def f(x):\n    return x**2  # square", "<b> & \"quotes\" </b>", "1,000,000 and 3.50", "we'll they're I'M",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_smollm2_tokenizer_matches_reference(smollm2, reference_smollm2_tokenizer, text):
    assert smollm2.encoding.encode(text) == reference_smollm2_tokenizer.encode(text, add_special_tokens=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80))
def test_smollm2_tokenizer_matches_reference_on_any_text(smollm2, reference_smollm2_tokenizer, text):
    assume(unencodable(smollm2.encoding, text) is None)
    ids = smollm2.encoding.encode(text, disallowed_special=())  # a special token's text in a prompt is plain text
    assert ids == reference_smollm2_tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
    assert smollm2.encoding.decode(ids) == text


def test_characters_outside_the_vocabulary_are_refused_cleanly(smollm2):
    assert unencodable(smollm2.encoding, "plain text 🙂") is None
    odd = chr(0x50000)  # UTF-8 starts with byte 0xF1, which SmolLM2 has no token for
    with pytest.raises(UserError, match="U\\+50000"):
        run_trace(smollm2, f"a {odd} b")


def test_special_token_text_in_a_prompt_is_plain_text(smollm2):
    trace = run_trace(smollm2, "say <|endoftext|> now")
    assert 0 not in trace.tokens  # not the special token id
    assert "".join(trace.pieces) == "say <|endoftext|> now"


def test_real_smollm2_matches_transformers_with_the_same_weights(smollm2, default_trace):
    """Real pre-trained weights, not only random ones: transformers' Llama gives the same logits and patterns."""
    pytest.importorskip("transformers")
    from builders import transformers_from_gguf

    hf = transformers_from_gguf(smollm2.source.path)  # transformers' own GGUF reader: not our converter
    with torch.no_grad():
        out = hf(torch.tensor([default_trace.tokens]), output_attentions=True)
    torch.testing.assert_close(default_trace["logits"], out.logits[0], atol=1e-3, rtol=1e-4)
    for layer in (0, 1, 15, 29):
        torch.testing.assert_close(default_trace[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0], atol=1e-4, rtol=1e-4)
