"""Performance properties that are not timings: what a render must not redo, and the
speed patches' promise that output stays the same. (Timings live in bench/.)"""

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

# A fresh process (like a render worker) with the model loaders booby-trapped: reading the
# trace and every scene's facts for an already traced prompt must not load the model.
NO_LOADING = """
import sys
import model.loading as loading
def refuse(*args, **kwargs):
    raise SystemExit("the model was loaded")
loading.load_gguf = loading.load_hf = refuse
from scenes.parts.data import prepare
from scenes.parts.params import Params
from scenes.registry import SCENES
data = prepare(list(SCENES), Params(prompt=sys.argv[1]))  # every registry entry's needs
print(len(data.trace.tokens))
"""


def test_rendering_a_traced_prompt_does_not_load_the_model(smollm2, tmp_path, monkeypatch):
    from model.cache import cache_dir

    cache = tmp_path / "cache"  # fresh: no traces, no facts; the float weights shared
    cache.mkdir()
    (cache / "weights").symlink_to(cache_dir() / "weights")
    (cache_dir() / "derived" / "orthogonality").mkdir(parents=True, exist_ok=True)
    (cache / "derived").mkdir()  # and the model-free packing experiment (30 s), which loads no model either
    (cache / "derived" / "orthogonality").symlink_to(cache_dir() / "derived" / "orthogonality")
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(cache))
    prompt = "An owl watched the quiet river"
    first = subprocess.run([sys.executable, "-c", NO_LOADING, prompt], cwd=ROOT, capture_output=True, text=True)
    assert first.returncode != 0 and "the model was loaded" in first.stderr  # the trap works: nothing cached yet ...
    from scenes.parts.data import prepare
    from scenes.parts.params import Params
    from scenes.registry import SCENES

    prepare(list(SCENES), Params(prompt=prompt))  # ... trace and facts computed once ...
    again = subprocess.run([sys.executable, "-c", NO_LOADING, prompt], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # ... then every scene's data comes from the cache
    assert int(again.stdout.split()[-1]) > 1


def test_fast_copy_is_a_true_deep_copy():
    from manim import Square, VGroup

    from scenes.parts import compat
    from scenes.parts.components import label
    from scenes.parts.theme import get_theme

    compat.install()  # what every TransformerScene does when it is created
    group = VGroup(label("fluffy", get_theme("dark")), Square().set_fill(opacity=0.5))
    twin = group.copy()
    for a, b in zip(group.get_family(), twin.get_family()):
        assert a is not b
        for key, value in a.__dict__.items():
            if isinstance(value, np.ndarray):
                assert value is not b.__dict__[key] and np.array_equal(value, b.__dict__[key]), key
    twin.shift([1, 0, 0]).set_color("#ff0000")
    assert not np.allclose(group.get_center(), twin.get_center())
    assert group[1].get_fill_color().to_hex() != "#FF0000"
    glyph = group[0][0]
    assert twin[0][0].path_obj is glyph.path_obj  # the parsed SVG path is shared (never changed after parsing)


@pytest.mark.parametrize("repeat", [1, 5])
def test_held_frame_encodes_the_same_bytes(tmp_path, repeat):
    """A held frame converted once gives the very same video as manim's per-copy conversion."""
    from fractions import Fraction

    from manim._config.video_encoder import VideoEncoderSpec
    from manim.scene.video_segment_encoder import VideoSegmentEncoder

    from scenes.parts import compat

    spec = VideoEncoderSpec("mp4", "libx264", "yuv420p", 64, 48, Fraction(15), (("crf", "23"),))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 4), dtype=np.uint8) for _ in range(3)]
    videos = []
    for name, write in (("manim", compat._write_frame), ("ours", compat.write_held_frame)):
        encoder = VideoSegmentEncoder(target=tmp_path / f"{name}.mp4", spec=spec)
        for frame in frames:
            write(encoder, frame, repeat=repeat)
        encoder.finish()
        videos.append((tmp_path / f"{name}.mp4").read_bytes())
    assert videos[0] == videos[1]


def test_bench_harness_counts_frames_and_mobjects():
    """bench/render.py's counters, on its blank baseline: every frame drawn, none holding a mobject."""
    from bench.render import run_child

    result = run_child("blank", "Blank", "480p15", {"MT_BLANK_SECONDS": "2"})
    assert result["frames"] == 30 and result["duration"] == 2.0
    assert result["drawn_frames"] == 30 and result["most_mobjects"] == 0
    assert result["fps"] > 0 and result["peak_mb"] > 50


def test_results_sections_are_replaced_not_duplicated(tmp_path, monkeypatch):
    from bench import results

    monkeypatch.setattr(results, "RESULTS", tmp_path / "RESULTS.md")
    results.write_section("render", "Scenes", "first")
    results.write_section("lecture", "Lecture", "lecture body")
    results.write_section("render", "Scenes", "second")
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.count("<!-- render -->") == 1 and "second" in text and "first" not in text
    assert "lecture body" in text and text.index("second") < text.index("lecture body")  # kept its place
