"""The story scenes (mlp, prediction, cost, orthogonality, layers, kv-cache), built without video.

Every scene registered in scenes/params.py is also built by tests/test_scenes.py (shown
values == trace, captions per beat, layout for the shortest and the longest prompt) and
rendered at low quality for the default and a second prompt by tests/test_scenes_render.py.
The KV cache giving the same logits as a full recompute is tested in
tests/test_model_generate.py (test_kv_cache_gives_the_same_logits_as_full_recompute).
Here: what each scene must show, and that the same seed gives the same video.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from scene_helpers import expect_spoken_token, build, check_shown, shown_sources  # noqa: E402

from facts.generation import generate  # noqa: E402
from scenes.parts.params import DEFAULT_PROMPT  # noqa: E402



def test_prediction_same_seed_same_video(smollm2):
    """The sampled tokens on screen are exactly what seeded sampling gives, recomputed without any cache."""
    scene = build("prediction", MT_SEED="3", MT_PROMPT="The capital of France is")
    check_shown(scene)
    fresh = generate(smollm2, "The capital of France is", len(scene.steps), temperature=1.0, seed=3)
    assert [s["chosen"]["id"] for s in scene.steps] == [s["chosen"]["id"] for s in fresh]
    drawn = [s.value for s in shown_sources(scene)["vocab"] if s.index[0] in {t["chosen"]["id"] for t in fresh}]
    assert drawn  # the drawn tokens are on screen
    story = " ".join(scene.captions)
    assert expect_spoken_token(fresh[0]["chosen"]["token"]) in story  # the narration names the first draw
    # the temperatures shown are the real distribution at each T
    temps = {s.index[1] for s in shown_sources(scene)["probs@T"]}
    assert temps == {0.0, 0.5, 1.0, 2.0}


@pytest.fixture(scope="module")
def built():
    """Each story scene built once for the default prompt (skipping animations)."""
    cache: dict = {}

    def get(name):
        if name not in cache:
            cache[name] = build(name)
        return cache[name]
    return get


def test_mlp_shows_the_real_layer(built, default_trace):
    scene = built("mlp")
    layer, pos = scene.layer, scene.pos
    sources = shown_sources(scene)
    assert f"norm_output:blocks.{layer}.ln2" in sources  # what the MLP reads: the norm's output after its weight
    for hook in ("mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out", "hook_resid_post"):
        assert f"blocks.{layer}.{hook}" in sources, hook
    post = default_trace[f"blocks.{layer}.mlp.hook_post"][pos]
    strongest = int(post.abs().argmax())
    assert any(s.index == (pos, strongest) for s in sources[f"blocks.{layer}.mlp.hook_post"])
    assert {"mlp.near_zero", "params.attention", "params.mlp"} <= set(sources)
    assert "SiLU" in " ".join(scene.captions)


def test_cost_shows_every_position_and_the_mean(built, default_trace):
    sources = shown_sources(built("cost"))
    n = len(default_trace.tokens)
    assert sorted(s.index[0] for s in sources["cost"]) == list(range(n - 1))  # 9 positions: all listed
    assert len(sources["cost.mean"]) == 1


def test_layers_reads_every_layer_and_ends_on_the_answer(built, default_trace):
    scene = built("layers")
    sources = shown_sources(scene)
    layers = sorted({s.index[0] for s in sources["lens.piece"]})
    assert layers == list(range(default_trace.config.n_layers))
    from model.tokenizer import token_pieces
    from scene_helpers import loaded

    from story_truth import _full_forward

    fresh = int(_full_forward("smollm2-135m", tuple(default_trace.tokens)).argmax())  # no trace, no cache
    assert int(default_trace["logits"][-1].argmax()) == fresh
    answer = token_pieces(loaded("smollm2-135m").encoding, [fresh])[0]
    assert scene.final["token"] == answer


def test_kv_cache_counts(built):
    sources = shown_sources(built("kv-cache"))
    full, cached = sources["kv.full"][0].value, sources["kv.cached"][0].value
    n = len(built("kv-cache").trace.tokens)
    assert full > (n - 1) * cached  # n tokens: the cache skips n - 1 of them (attention aside)


def test_orthogonality_marks_d_model(built):
    scene = built("orthogonality")
    sources = shown_sources(scene)
    d_model = scene.trace.config.d_model
    assert any(s.value == d_model for s in sources["config.d_model"])
    assert max(r["dim"] for r in scene.rows) == d_model  # measured up to the model's own width
    first = next(r["dim"] for r in scene.rows if r["count"] >= 1.5 * r["dim"])  # where the slack starts to pay
    assert {s.index[0] for s in sources["ortho.count"]} == {first, d_model}
    assert [s.index for s in sources["ortho.welch"]] == [(d_model,)] * len(sources["ortho.welch"])


def test_mlp_with_gelu_on_a_small_gpt2(tmp_path):
    """The GELU branch (GPT-2: no gate), on a tiny random GPT-2 saved as a Hugging Face folder."""
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=50257)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    scene = build("mlp", MT_MODEL=str(tmp_path), MT_PROMPT=DEFAULT_PROMPT)
    assert not scene.gated and scene.act == "GELU"
    assert scene.layout_problems == []
    check_shown(scene)
