"""The scenes that adapt to the model's config, built with Gemma 3 270M (--model gemma3-270m) on
the default prompt: what they show equals the trace (check_shown), nothing leaves the frame, the
captions are readable; and the beats that adapt to Gemma's config (embedding scale, BOS, QK-norm, sliding window, one shared key/value
head, sandwich norms, GeGLU) show what the config says.

Builds only (no video). Slow: the first load of Gemma's weights takes about 80 s, then seconds.
The other scenes read nothing Gemma changes; all of them were built and rendered with Gemma by
hand (a build of every scene would double this file's time, and `make test` has 15 minutes)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from scene_helpers import build, check_shown, loaded, said, shown_sources, story_head  # noqa: E402
from test_scenes import assert_cues_readable  # noqa: E402


GEMMA = "gemma3-270m"
pytestmark = pytest.mark.slow


def gemma(name: str):
    return build(name, MT_MODEL=GEMMA)




ADAPTED = ["tokens", "embeddings", "qkv", "masking", "multi-head", "values", "mlp"]  # beats that read Gemma's flags


@pytest.mark.parametrize("name", ADAPTED)
def test_adapted_scenes_build_with_gemma(name):
    scene = gemma(name)
    assert scene.trace.config.family == "gemma3"
    assert check_shown(scene) >= 10
    assert scene.sections_run == list(scene.beats)
    assert scene.layout_problems == []
    assert_cues_readable(scene)


def test_embeddings_show_the_stored_row_and_its_scale():
    """The highlighted row is W_E's own row; times sqrt(d_model) it is hook_embed (recomputed here)."""
    scene = gemma("embeddings")
    trace, cfg = scene.trace, scene.trace.config
    sources = shown_sources(scene)
    assert [s.value for s in sources["config.embed_scale"]] == [cfg.embed_scale]
    assert math.isclose(cfg.embed_scale, math.sqrt(cfg.d_model), rel_tol=1e-6)
    _, _, _, q, _ = story_head(trace)
    tid = trace.tokens[q]
    W_E = loaded(GEMMA).model.weight("embed.W_E").detach().float()
    assert torch.allclose(W_E[tid] * math.sqrt(cfg.d_model), trace["hook_embed"][q], rtol=1e-5, atol=1e-6)
    assert {s.index[0] for s in sources["embed.W_E"]} >= {tid}  # the row itself, as stored
    assert f"the square root of {cfg.d_model}" in said(scene)


def test_rotary_pair_starts_from_the_normed_query_with_the_layers_base():
    scene = gemma("embeddings")
    trace, cfg = scene.trace, scene.trace.config
    L = story_head(trace)[0]
    sources = shown_sources(scene)
    assert f"blocks.{L}.attn.hook_q_normed" in sources and f"blocks.{L}.attn.hook_q" not in sources
    angle = sources["rope.angle.local" if cfg.is_local(L) else "rope.angle"]
    (pos, i), = {s.index for s in angle}
    base = cfg.rope_base_local if L in cfg.local_layers else cfg.rope_base
    # the pair really turned by that angle: rotate the normed pair by it and get the rotated one
    x, y = (float(trace[f"blocks.{L}.attn.hook_q_normed"][pos, story_head(trace)[1], 2 * i + j]) for j in (0, 1))
    a = pos * base ** (-2 * i / cfg.d_head)
    rx, ry = (float(trace[f"blocks.{L}.attn.hook_rot_q"][pos, story_head(trace)[1], 2 * i + j]) for j in (0, 1))
    assert math.isclose(x * math.cos(a) - y * math.sin(a), rx, abs_tol=1e-4)
    assert math.isclose(x * math.sin(a) + y * math.cos(a), ry, abs_tol=1e-4)


def test_tokens_show_the_start_token_and_the_vocabulary():
    scene = gemma("tokens")
    trace = scene.trace
    assert trace.pieces[0] == "<bos>" and "".join(trace.pieces[1:]) == trace.prompt
    sources = shown_sources(scene)
    assert sources["count.start_heads"] and sources["config.vocab_size"][0].value == 262_144
    text = said(scene)
    assert "The first token, “<bos>”, is not from our text." in text, text
    assert "262,144 tokens" in text


def test_qkv_shows_the_query_and_key_norms():
    scene = gemma("qkv")
    L = scene.data.choice.layer
    sources = shown_sources(scene)
    assert f"blocks.{L}.attn.hook_q_normed" in sources and f"blocks.{L}.attn.hook_k_normed" in sources
    assert "root mean square" in said(scene)


def test_masking_says_whether_the_window_bites():
    scene = gemma("masking")
    trace, cfg = scene.trace, scene.trace.config
    L = scene.data.choice.layer
    sources = shown_sources(scene)
    assert {s.value for s in sources["config.sliding_window"]} == {cfg.sliding_window}
    text = said(scene)
    if L in cfg.local_layers:
        assert len(trace.tokens) <= cfg.sliding_window and "so here it still sees them all" in text, text
    else:
        assert "it sees every earlier token" in text, text
    band = [s for s in sources["attn.cells"] if s.index == ("n_ctx", "window")]
    assert band and band[0].value < cfg.n_ctx * (cfg.n_ctx + 1) // 2


def test_multi_head_one_shared_key_value_head_and_the_post_norm():
    scene = gemma("multi-head")
    cfg = scene.trace.config
    assert cfg.n_kv_heads == 1 and cfg.n_heads == 4
    text = said(scene)
    assert "all 4 query heads share one single set of keys and values" in text, text
    assert "one more norm" in text, text


def test_the_heads_add_up_to_attn_out_through_the_post_norm():
    """What values/multi-head say: each head's output, divided by ln1_post's scale for the summed
    heads and times its weight, adds up to hook_attn_out (Gemma's sandwich norm)."""
    trace = gemma("values").trace
    L = story_head(trace)[0]
    w = dict(loaded(GEMMA).model.named_parameters())[f"blocks.{L}.ln1_post.w"].detach()
    heads = trace[f"blocks.{L}.attn.hook_result"].double()  # [pos, n_heads, d_model]
    rms = (heads.sum(1).pow(2).mean(-1, keepdim=True) + trace.config.norm_eps).sqrt()
    assert torch.allclose((heads / rms[:, None]).sum(1) * w.double(), trace[f"blocks.{L}.hook_attn_out"].double(),
                          rtol=1e-4, atol=1e-4)
    assert not torch.allclose(heads.sum(1), trace[f"blocks.{L}.hook_attn_out"].double(), atol=1e-2)


def test_mlp_names_geglu():
    scene = gemma("mlp")
    assert scene.trace.config.activation == "gelu_tanh"
    text = said(scene)
    assert "GELU" in text and "GeGLU" in text and "one more norm" in text, text
