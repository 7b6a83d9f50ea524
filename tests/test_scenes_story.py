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
from scene_helpers import build, check_shown  # noqa: E402

from model.generate import generate  # noqa: E402
from scenes.params import DEFAULT_PROMPT  # noqa: E402


def shown_sources(scene) -> dict[str, list]:
    out: dict[str, list] = {}
    for m in scene.seen.values():
        shown = getattr(m, "shown", None)
        if shown is not None:
            out.setdefault(shown.source, []).append(shown)
    return out


def test_prediction_same_seed_same_video(smollm2):
    """The sampled tokens on screen are exactly what seeded sampling gives, recomputed without any cache."""
    scene = build("prediction", MT_SEED="3", MT_PROMPT="The capital of France is")
    check_shown(scene)
    fresh = generate(smollm2, "The capital of France is", len(scene.steps), temperature=1.0, seed=3)
    assert [s["chosen"]["id"] for s in scene.steps] == [s["chosen"]["id"] for s in fresh]
    drawn = [s.value for s in shown_sources(scene)["vocab"] if s.index[0] in {t["chosen"]["id"] for t in fresh}]
    assert drawn  # the drawn tokens are on screen
    story = " ".join(scene.captions)
    assert "seed 3" in story and repr(fresh[0]["chosen"]["token"]) in story
    # the temperatures shown are the real distribution at each T
    temps = {s.index[1] for s in shown_sources(scene)["probs@T"]}
    assert temps == {0.0, 0.5, 1.0, 2.0}
