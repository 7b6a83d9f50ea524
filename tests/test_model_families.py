"""The families read from Hugging Face folders besides GPT-2, Llama and Gemma 3: Mistral, Qwen2,
Qwen3, Gemma 2 and Phi-3. Each is a tiny random model made here with `transformers`, saved with
`save_pretrained`, read back by our loader; logits and every layer's attention pattern must match
transformers' own model (eager attention, float32) within 1e-4. Every weight is drawn large
(std 0.25, norms and biases included) so attention is peaked and each family's addition shows.

Plus the refusals: an unknown model_type, Phi-3's rope scaling, impossible config values; and the
qkv scene built with a Qwen2 folder shows the query's bias, its numbers checked against the trace."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
from builders import train_byte_level_tokenizer  # noqa: E402
from test_model_equivalence import TEXT, compare  # noqa: E402

from model.errors import UserError  # noqa: E402

SMALL = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=128)


@pytest.fixture
def folder(tmp_path):
    train_byte_level_tokenizer(tmp_path, TEXT, vocab_size=300)
    return tmp_path


def vocab(folder: Path) -> int:
    return len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])


def saved(folder: Path, config_class, model_class, **config):
    """A random model of this config, every weight ~ N(0, 0.25), saved to `folder` and read back by transformers."""
    torch.manual_seed(0)
    config = config_class(vocab_size=vocab(folder), **config)
    hf = model_class(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.25)
    hf.save_pretrained(folder, safe_serialization=True)
    return model_class.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()


def n_tokens(trace) -> int:
    return len(trace.tokens)


@pytest.mark.parametrize("window", [4, None])
def test_mistral_matches_transformers(folder, window):
    hf = saved(folder, transformers.MistralConfig, transformers.MistralForCausalLM, sliding_window=window,
               rope_theta=50000.0, **SMALL)
    trace = compare(folder, hf, 3)
    cfg = trace.config
    assert cfg.family == "mistral" and cfg.rope_base == 50000.0
    pattern = trace["blocks.1.attn.hook_pattern"]
    n = n_tokens(trace)
    if window:  # every layer slides; the prompt is longer than the window, so the window bites
        assert cfg.sliding_window == 4 and cfg.local_layers == (0, 1, 2) and n > 4
        assert float(pattern[:, n - 1, : n - 4].abs().max()) == 0.0
    else:
        assert cfg.sliding_window == 0 and cfg.local_layers == ()
        assert float(pattern[:, n - 1, 0].max()) > 0


def test_qwen2_adds_biases_to_queries_keys_and_values(folder):
    hf = saved(folder, transformers.Qwen2Config, transformers.Qwen2ForCausalLM, use_sliding_window=True,
               sliding_window=4, max_window_layers=1, tie_word_embeddings=True, **SMALL)
    trace = compare(folder, hf, 3)
    cfg = trace.config
    assert cfg.family == "qwen2" and cfg.qkv_bias and cfg.qkv_biases and not cfg.has_biases
    assert cfg.local_layers == (1, 2) and cfg.sliding_window == 4  # layers from max_window_layers on slide
    from model.loading import load

    net = load(str(folder), "cpu").model
    W = {n: net.weight(f"blocks.0.attn.{n}") for n in ("W_Q", "b_Q", "W_V", "b_V")}
    x = trace["blocks.0.ln1.hook_normalized"] * net.weight("blocks.0.ln1.w")  # what attention reads
    # hook_q is x @ W_Q + b_Q, before RoPE (TransformerLens's meaning), and the bias is not small
    q = torch.einsum("pd,hde->phe", x, W["W_Q"]) + W["b_Q"]
    torch.testing.assert_close(trace["blocks.0.attn.hook_q"], q, atol=1e-5, rtol=1e-5)
    assert float(W["b_Q"].detach().abs().mean()) > 0.1
    v = torch.einsum("pd,hde->phe", x, W["W_V"]) + W["b_V"]
    torch.testing.assert_close(trace["blocks.0.attn.hook_v"], v, atol=1e-5, rtol=1e-5)
    assert not hasattr(net.blocks[0].attn, "b_O") or net.blocks[0].attn.b_O is None


def test_qwen3_normalises_each_heads_query_and_key(folder):
    hf = saved(folder, transformers.Qwen3Config, transformers.Qwen3ForCausalLM, head_dim=16, **SMALL)
    trace = compare(folder, hf, 3)
    cfg = trace.config
    assert cfg.family == "qwen3" and cfg.qk_norm and not cfg.post_norms and cfg.embed_scale == 1.0
    # the normed query has RMS 1 per head before its weight: q / q_norm.hook_scale
    q = trace["blocks.2.attn.hook_q"]
    rms = (q.pow(2).mean(-1, keepdim=True) + cfg.norm_eps).sqrt()
    torch.testing.assert_close(trace["blocks.2.attn.q_norm.hook_normalized"], q / rms, atol=1e-5, rtol=1e-5)


def test_gemma2_soft_caps_scores_and_logits(folder):
    hf = saved(folder, transformers.Gemma2Config, transformers.Gemma2ForCausalLM, head_dim=16, sliding_window=4,
               query_pre_attn_scalar=24, attn_logit_softcapping=2.0, final_logit_softcapping=3.0, **SMALL)
    trace = compare(folder, hf, 3)
    cfg = trace.config
    assert cfg.family == "gemma2" and cfg.attn_softcap == 2.0 and cfg.final_softcap == 3.0
    assert cfg.local_layers == (0, 2) and cfg.sliding_window == 4 and cfg.post_norms and not cfg.qk_norm
    assert math.isclose(cfg.embed_scale, 8.0) and cfg.query_pre_attn_scalar == 24
    # hook_attn_scores holds the capped scores (TransformerLens's meaning): inside (-2, 2), and
    # equal to 2 tanh(q.k / sqrt(24) / 2) recomputed from the rotated queries and keys
    L = 1
    scores = trace[f"blocks.{L}.attn.hook_attn_scores"]
    seen = torch.isfinite(scores)
    assert float(scores[seen].abs().max()) < 2.0
    q, k = trace[f"blocks.{L}.attn.hook_rot_q"], trace[f"blocks.{L}.attn.hook_rot_k"]
    k = k.repeat_interleave(cfg.heads_per_kv, dim=1)
    raw = torch.einsum("qhe,khe->hqk", q, k) / math.sqrt(24)
    torch.testing.assert_close(scores[seen], (2.0 * torch.tanh(raw / 2.0))[seen], atol=1e-5, rtol=1e-5)
    assert float(raw[seen].abs().max()) > 3.0  # the cap bites: some raw scores lie well outside it
    logits = trace["logits"]
    assert float(logits.abs().max()) < 3.0
    n = n_tokens(trace)
    assert float(trace["blocks.0.attn.hook_pattern"][:, n - 1, : n - 4].abs().max()) == 0.0  # layer 0 slides


def test_phi3_fused_weights_are_split(folder):
    hf = saved(folder, transformers.Phi3Config, transformers.Phi3ForCausalLM, pad_token_id=None, bos_token_id=0,
               eos_token_id=0, **SMALL)
    trace = compare(folder, hf, 3)
    cfg = trace.config
    assert cfg.family == "phi3" and cfg.gated_mlp and cfg.n_kv_heads == 2
    from model.loading import load

    net = load(str(folder), "cpu").model
    fused = hf.model.layers[1].mlp.gate_up_proj.weight.detach()  # [2 * d_mlp, d_model], gate rows first
    torch.testing.assert_close(net.weight("blocks.1.mlp.W_gate"), fused[: cfg.d_mlp].T)
    torch.testing.assert_close(net.weight("blocks.1.mlp.W_in"), fused[cfg.d_mlp:].T)
    qkv = hf.model.layers[1].self_attn.qkv_proj.weight.detach()  # V is the last K * E rows, never rotated
    torch.testing.assert_close(net.weight("blocks.1.attn.W_V").transpose(1, 2).reshape(-1, cfg.d_model),
                               qkv[-cfg.n_kv_heads * cfg.d_head:])


def config_json(folder: Path, **changes) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return folder


def test_phi3_rope_scaling_is_refused_in_one_line(folder):
    saved(folder, transformers.Phi3Config, transformers.Phi3ForCausalLM, pad_token_id=None, bos_token_id=0,
          eos_token_id=0, **SMALL)
    from model.hf_folder import read_config

    config_json(folder, rope_scaling={"type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8})
    with pytest.raises(UserError) as e:
        read_config(folder)
    assert str(e.value) == "Phi-3 config sets rope scaling ('longrope'): not supported, plain RoPE only"
    config_json(folder, rope_scaling=None, rope_parameters={"rope_type": "default", "rope_theta": 1e4,
                                                            "partial_rotary_factor": 0.5})
    with pytest.raises(UserError, match="partial_rotary_factor 0.5"):
        read_config(folder)


def test_unknown_family_is_named_with_the_known_ones(tmp_path):
    from model.hf_folder import read_config

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "falcon", "hidden_size": 64}))
    with pytest.raises(UserError) as e:
        read_config(tmp_path)
    line = str(e.value)
    assert "\n" not in line and "'falcon'" in line
    for family in ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "Phi-3", "Gemma 2"):
        assert family in line, line


@pytest.mark.parametrize("field, value", [("attn_softcap", -1.0), ("final_softcap", float("nan")),
                                          ("qkv_bias", "yes"), ("family", "qwen4")])
def test_validate_refuses_impossible_family_values(field, value):
    from model.config import ModelConfig

    fields = dict(name="t", family="qwen2", n_layers=1, d_model=8, n_heads=2, n_kv_heads=2, d_head=4, d_mlp=8,
                  vocab_size=10, n_ctx=8, norm_eps=1e-6, activation="silu")
    ModelConfig(**fields).validate()  # the same config without the bad value is fine
    cfg = ModelConfig(**fields | {field: value})
    with pytest.raises(UserError, match=field.replace("family", "unknown family")):
        cfg.validate()


# --------------------------------------------------------------------------- scenes built with these folders

@pytest.fixture(scope="module")
def family_folders(tmp_path_factory):
    """A tiny Qwen2 and a tiny Gemma 2 folder (as above), made once for the scene builds."""
    out = {}
    for name, config_class, model_class, extra in (
            ("qwen2", transformers.Qwen2Config, transformers.Qwen2ForCausalLM, {}),
            ("gemma2", transformers.Gemma2Config, transformers.Gemma2ForCausalLM,
             dict(head_dim=16, sliding_window=4, attn_logit_softcapping=2.0, final_logit_softcapping=3.0))):
        folder = tmp_path_factory.mktemp(name)
        train_byte_level_tokenizer(folder, TEXT, vocab_size=300)
        saved(folder, config_class, model_class, **SMALL, **extra)
        out[name] = folder
    return out




def test_qkv_scene_shows_qwen2s_query_and_key_biases(family_folders):
    from scene_helpers import build, check_shown, loaded, said, shown_sources

    model = str(family_folders["qwen2"])
    scene = build("qkv", MT_MODEL=model)
    assert scene.trace.config.family == "qwen2"
    assert check_shown(scene) >= 10 and scene.layout_problems == []
    sources = shown_sources(scene)
    L, H = scene.layer, scene.head
    assert {s.index[:2] for s in sources["attn.b_Q"]} == {(L, H)} and sources["attn.b_K"]
    # the row adds up: the drawn input times W_Q plus the drawn bias is the drawn query (hook_q)
    net = loaded(model).model
    q = scene.query
    x = scene.data.norm_outputs["ln1"][q]
    recomputed = torch.tensor(x) @ net.weight(f"blocks.{L}.attn.W_Q")[H].detach() + net.weight(f"blocks.{L}.attn.b_Q")[H].detach()
    torch.testing.assert_close(recomputed, scene.trace[f"blocks.{L}.attn.hook_q"][q, H], atol=1e-5, rtol=1e-5)
    assert "This model also adds a bias" in said(scene) and "plus a bias of their own" in said(scene)


def test_attention_pattern_scene_says_gemma2s_soft_cap(family_folders):
    from scene_helpers import build, check_shown, said, shown_sources

    scene = build("attention-pattern", MT_MODEL=str(family_folders["gemma2"]))
    assert check_shown(scene) >= 10 and scene.layout_problems == []
    assert [s.value for s in shown_sources(scene)["config.attn_softcap"]] == [2]
    assert "caps each score" in said(scene) and "plus or minus 2" in said(scene)


def test_mlp_scene_adds_the_pushes_up_to_gemma2s_logit_before_the_cap(family_folders):
    """The direct effects add up to the logit before the final soft-cap; the scene shows that sum
    and the capped logit, and the cap undone (atanh) gives the sum back."""
    from scene_helpers import build, check_shown, said, shown_sources

    scene = build("mlp", MT_MODEL=str(family_folders["gemma2"]))
    assert check_shown(scene) >= 10 and scene.layout_problems == []
    cfg, effects = scene.trace.config, scene.data.direct_effects
    (raw,) = [s.value for s in shown_sources(scene)["effect.raw_logit"]]
    assert abs(raw) > cfg.final_softcap  # the cap bites on this answer
    assert math.isclose(cfg.final_softcap * math.tanh(raw / cfg.final_softcap), effects["logit"], abs_tol=1e-5)
    assert "before the cap" in said(scene) and "the tanh of the logit" in said(scene)


def test_fuzzed_family_configs_load_or_give_one_line(tmp_path):
    """config.json of the five families with fields removed or garbled (the values tests/test_fuzz.py
    draws, plus these families' own keys): a checked config or one UserError line, nothing else."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from test_fuzz import FIELD_VALUES, KNOWN

    from model.loading import read_hf_config

    base = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "vocab_size": 300}
    good = {"mistral": {"sliding_window": 4}, "qwen2": {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1},
            "qwen3": {"head_dim": 8}, "gemma2": {"attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0},
            "phi3": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0}}}
    own = ["attn_logit_softcapping", "final_logit_softcapping", "use_sliding_window", "max_window_layers",
           "partial_rotary_factor", "hidden_activation"]
    counts = {"accepted": 0, "refused": 0}

    @st.composite
    def configs(draw):
        family = draw(st.sampled_from(sorted(good)))
        config = {"model_type": family, **base, **good[family]}
        for key in draw(st.lists(st.sampled_from(KNOWN + own), max_size=3, unique=True)):
            if draw(st.booleans()):
                config.pop(key, None)
            else:
                config[key] = draw(FIELD_VALUES)
        return config

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(configs())
    def case(config):
        (tmp_path / "config.json").write_text(json.dumps(config))
        try:
            cfg = read_hf_config(tmp_path)
        except UserError as e:
            assert "\n" not in str(e)
            counts["refused"] += 1
            return
        cfg.validate()
        assert cfg.family == config["model_type"] and math.isfinite(cfg.attn_softcap) and math.isfinite(cfg.final_softcap)
        counts["accepted"] += 1

    case()
    assert counts["accepted"] and counts["refused"], counts
