"""The README's promises, one test each (the slow ones render for real, at low quality, few frames).

- every `--quality` preset's resolution and frame rate (README = pipeline/jobs.py = manim's own
  table for the flag we pass), and one real render probed with PyAV;
- `render all` takes every scene in storyboard order (README table = registry = `list`), and its
  index.html lists them in that order (a real `render all`, two of its scenes really rendered);
- the plain manim route, `MT_PROMPT=... MT_THEME=light manim -ql scenes/tokens.py Tokens`;
- a valid `--analogy` reaches the word-vectors scene (sidecar and captions);
- a user-supplied Llama-family GGUF file: written here with gguf's GGUFWriter (random F32
  weights, grouped-query attention, a byte-level BPE vocabulary with merges), loaded, traced,
  compared with transformers' own GGUF loader (so the RoPE row order is checked by an
  independent reader), used by `predict` and by `render`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
FAST = ["--quality", "low", "--fps", "2", "--quiet"]


def cli(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "render.py"), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, env=env)


def probe(path: Path) -> tuple[int, int, float, int]:
    """(width, height, frames per second, decoded frames) of a video, read by PyAV."""
    import av

    with av.open(str(path)) as video:
        stream = video.streams.video[0]
        frames = sum(1 for _ in video.decode(video=0))
        return stream.codec_context.width, stream.codec_context.height, float(stream.average_rate), frames


# ---------------------------------------------------------------- quality presets

def readme_presets() -> dict[str, tuple[int, int]]:
    """`--quality low|medium|high|4k` (480p15, 720p30, 1080p60, 2160p60) -> {name: (height, fps)}."""
    m = re.search(r"`--quality ([\w|]+)` \(([^)]*)\)", README)
    assert m, "the README no longer documents --quality"
    names, values = m.group(1).split("|"), re.findall(r"(\d+)p(\d+)", m.group(2))
    assert len(names) == len(values)
    return {n: (int(h), int(f)) for n, (h, f) in zip(names, values)}


def test_quality_presets_reach_manim_as_documented():
    """README -> pipeline/jobs.QUALITY -> the -q flag in the manim command -> manim's own preset for that flag."""
    from manim.constants import QUALITIES

    from pipeline.jobs import QUALITY, SceneJob, manim_command

    documented = readme_presets()
    assert documented == {"low": (480, 15), "medium": (720, 30), "high": (1080, 60), "4k": (2160, 60)}
    assert list(documented) == list(QUALITY)
    by_flag = {q["flag"]: q for q in QUALITIES.values() if q["flag"]}
    for name, (height, fps) in documented.items():
        cmd = manim_command(SceneJob("tokens", "tokens", "Tokens", {}, quality=name), Path("/tmp/media"))
        flags = [a for a in cmd if re.fullmatch(r"-q\w", a)]
        assert len(flags) == 1, cmd
        manim_preset = by_flag[flags[0][2:]]
        assert (manim_preset["pixel_height"], manim_preset["frame_rate"]) == (height, fps), name
        assert manim_preset["pixel_width"] == {480: 854, 720: 1280, 1080: 1920, 2160: 3840}[height], name  # 16:9
        assert "--fps" not in cmd  # the preset's own rate, unless --fps says otherwise
        assert QUALITY[name][1:] == (height, fps)
        with_fps = manim_command(SceneJob("tokens", "tokens", "Tokens", {}, quality=name, fps=7), Path("/tmp/media"))
        assert with_fps[with_fps.index("--fps") + 1] == "7"


# ---------------------------------------------------------------- render all: storyboard order

def readme_scene_table() -> list[str]:
    table = README.split("## Scenes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([\w-]+)` \|", table, flags=re.M)


def readme_gallery() -> list[str]:
    return re.findall(r"^!\[([\w-]+)\]\(assets/gallery/", README, flags=re.M)


def test_all_is_every_scene_in_storyboard_order():
    """registry order = `render all` = `render.py list` = the README's contact sheets."""
    from pipeline.render import resolve_scene_names
    from scenes.registry import SCENES

    order = list(SCENES)
    assert len(order) == 16 and sorted(readme_scene_table()) == sorted(order)
    assert resolve_scene_names(["all"]) == order
    assert resolve_scene_names(["tokens", "all"]) == ["tokens"] + [n for n in order if n != "tokens"]
    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == order
    assert readme_gallery() == order


def test_readme_scene_table_is_in_lecture_order():
    """README: "One concept per scene, in lecture order (`python render.py list`)"."""
    from scenes.registry import SCENES

    assert readme_scene_table() == list(SCENES)


# ---------------------------------------------------------------- plain manim

@pytest.mark.slow
def test_plain_manim_route(tmp_path, smollm2):
    """README: MT_PROMPT="The capital of France is" MT_THEME=light manim -ql scenes/tokens.py Tokens"""
    from model.trace import get_trace

    prompt = "The capital of France is"
    manim = Path(sys.executable).with_name("manim")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MT_")}
    env |= {"MT_PROMPT": prompt, "MT_THEME": "light"}
    # --fps 2: few frames (the presets' rates are test_quality_presets_reach_manim_as_documented's)
    result = subprocess.run([str(manim), "-ql", "--fps", "2", "--media_dir", str(tmp_path / "media"), "--progress_bar", "none",
                             "scenes/tokens.py", "Tokens"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    if "No module named 'facts'" in output:
        pytest.fail("plain manim cannot import `facts`: the editable install predates pyproject.toml listing it "
                    "(run `make setup`, or `pip install -e .`)")
    assert result.returncode == 0, output[-3000:]
    (video,) = (tmp_path / "media" / "videos" / "tokens").glob("*/Tokens.mp4")
    width, height, fps, frames = probe(video)
    assert (width, height, fps) == (854, 480, 2.0)  # -ql: 480p, at the --fps asked for
    assert frames > 15

    import av
    import numpy as np

    with av.open(str(video)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.median(first) > 180  # MT_THEME=light: a light background
    srt = video.with_suffix(".srt").read_text(encoding="utf-8")  # manim's own subcaptions
    trace = get_trace(prompt, loaded=smollm2)
    assert f"Our prompt is {len(prompt)} characters" in srt
    assert f"into {len(trace.tokens)} tokens" in srt  # MT_PROMPT reached the scene, counted by the real tokenizer


# ---------------------------------------------------------------- a user-supplied GGUF file

PROMPT = "the cat sat on the mat"
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "c"), ("a", "t"), ("Ġc", "at"), ("Ġ", "s"), ("Ġs", "at"),
          ("o", "n"), ("Ġ", "m"), ("Ġm", "at"), ("t", "he"), ("Ġ", "on")]  # "the cat sat on the mat": 6 tokens


def write_tiny_llama_gguf(path: Path, D=32, H=4, K=2, L=2, M=64, n_ctx=64, seed=0) -> Path:
    """A Llama GGUF as llama.cpp's converter lays it out: F32 [out, in] matrices, Q/K rows in
    llama.cpp's order, grouped-query attention (H query heads, K key/value heads), an untied
    output matrix, and a byte-level BPE tokenizer (256 byte tokens, merges, one control token)."""
    import gguf
    import numpy as np

    from model.tokenizer import byte_to_unicode

    E = D // H
    tokens = [byte_to_unicode()[b] for b in range(256)] + [a + b for a, b in MERGES] + ["<|endoftext|>"]
    types = [1] * (len(tokens) - 1) + [3]
    V = len(tokens)
    rng = np.random.default_rng(seed)

    def r(*shape, std=0.3):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(L), w.add_context_length(n_ctx), w.add_embedding_length(D), w.add_feed_forward_length(M)
    w.add_head_count(H), w.add_head_count_kv(K), w.add_layer_norm_rms_eps(1e-5), w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(E), w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2"), w.add_tokenizer_pre("gpt2"), w.add_token_list(tokens), w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" for a, b in MERGES]), w.add_bos_token_id(V - 1), w.add_eos_token_id(V - 1)
    w.add_tensor("token_embd.weight", r(V, D, std=1.0))
    w.add_tensor("output_norm.weight", 1 + r(D, std=0.1))
    w.add_tensor("output.weight", r(V, D))
    for i in range(L):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", 1 + r(D, std=0.1))
        w.add_tensor(b + "attn_q.weight", r(H * E, D, std=0.5))  # large enough that attention is far from uniform:
        w.add_tensor(b + "attn_k.weight", r(K * E, D, std=0.5))  # a wrong RoPE pairing shows in the logits
        w.add_tensor(b + "attn_v.weight", r(K * E, D))
        w.add_tensor(b + "attn_output.weight", r(D, H * E))
        w.add_tensor(b + "ffn_norm.weight", 1 + r(D, std=0.1))
        w.add_tensor(b + "ffn_gate.weight", r(M, D)), w.add_tensor(b + "ffn_up.weight", r(M, D))
        w.add_tensor(b + "ffn_down.weight", r(D, M))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def reference_logits(tiny_gguf):
    """transformers' own reading of the file (its GGUF loader un-permutes Q/K itself): logits and patterns."""
    pytest.importorskip("transformers")
    import torch

    from builders import transformers_from_gguf
    from model.loading import load

    ids = load(str(tiny_gguf), "cpu").encoding.encode(PROMPT)
    with torch.no_grad():
        out = transformers_from_gguf(tiny_gguf)(torch.tensor([ids]), output_attentions=True)
    return ids, out.logits[0], [a[0] for a in out.attentions]


def test_user_gguf_loads_traces_and_matches_transformers(tiny_gguf, reference_logits):
    import torch

    from model.loading import load
    from model.trace import run_trace

    loaded = load(str(tiny_gguf), "cpu")
    c = loaded.config
    assert (c.family, c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.d_mlp, c.vocab_size, c.n_ctx) == \
        ("llama", 2, 32, 4, 2, 8, 64, 256 + len(MERGES) + 1, 64)
    assert not c.tied_embeddings and c.rope_base == 10000.0
    trace = run_trace(loaded, PROMPT)
    ids, logits, patterns = reference_logits
    assert trace.tokens == ids
    assert trace.pieces == ["the", " cat", " sat", " on", " the", " mat"]  # the file's merges, applied
    n = len(ids)
    assert trace["logits"].shape == (n, c.vocab_size)
    assert trace["blocks.1.attn.hook_pattern"].shape == (4, n, n)
    assert trace["blocks.1.attn.hook_k"].shape == (n, 2, 8)
    torch.testing.assert_close(trace["logits"], logits, atol=1e-4, rtol=1e-4)
    for layer in range(2):
        torch.testing.assert_close(trace[f"blocks.{layer}.attn.hook_pattern"], patterns[layer], atol=1e-4, rtol=1e-4)


def test_wrong_rope_row_order_is_caught(tiny_gguf, reference_logits, tmp_path, monkeypatch):
    """Mutant: un-permute Q/K rows as if our transformer rotated half-split pairs (transformers'
    convention): the comparison above fails by far more than its tolerance."""
    import torch

    from model import gguf_file
    from model.loading import load
    from model.trace import run_trace

    real = gguf_file.gguf_to_canonical

    def unpermuted(cfg, w):
        w = dict(w)
        for name in [k for k in w if "attn_q" in k or "attn_k" in k]:
            n = cfg.n_heads if "attn_q" in name else cfg.n_kv_heads
            w[name] = w[name].reshape(n, cfg.d_head // 2, 2, cfg.d_model).swapaxes(1, 2).reshape(n * cfg.d_head, cfg.d_model)
        return real(cfg, w)

    monkeypatch.setattr(gguf_file, "gguf_to_canonical", unpermuted)
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))  # not the correct weights from the shared cache
    trace = run_trace(load(str(tiny_gguf), "cpu"), PROMPT)
    ids, logits, _ = reference_logits
    assert trace.tokens == ids
    assert (trace["logits"] - logits).abs().max() > 0.1
    with pytest.raises(AssertionError):
        torch.testing.assert_close(trace["logits"], logits, atol=1e-4, rtol=1e-4)


def test_predict_with_user_gguf(tiny_gguf):
    from model.loading import load
    from model.trace import run_trace

    result = cli("predict", PROMPT, "--model", str(tiny_gguf), "--json", "--top", "3")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["model"] == "tiny" and got["prompt"] == PROMPT
    probs = run_trace(load(str(tiny_gguf), "cpu"), PROMPT)["logits"][-1].softmax(-1)
    values, ids = probs.topk(3)
    assert [row["id"] for row in got["top"]] == ids.tolist()
    assert [row["probability"] for row in got["top"]] == pytest.approx(values.tolist(), abs=1e-5)


@pytest.mark.slow
def test_render_with_user_gguf(tiny_gguf, tmp_path):
    """`render --model path/to/model.gguf`, as png stills (one per beat)."""
    out = tmp_path / "out"
    result = cli("render", "tokens", "--model", str(tiny_gguf), "--prompt", PROMPT, "--out", str(out),
                 "--format", "png", "--quality", "low", "--fps", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    stills = sorted((out / "tokens").glob("*.png"))
    assert [p.name[:3] for p in stills] == ["01-", "02-", "03-"]
    from PIL import Image

    assert Image.open(stills[0]).size == (854, 480)
    side = json.loads((out / "tokens.json").read_text(encoding="utf-8"))
    assert side["model"] == "tiny" and side["pieces"] == ["the", " cat", " sat", " on", " the", " mat"]
    captions = " ".join(side["captions"])
    assert f"{256 + len(MERGES) + 1:,} tokens" in captions and "into 6 tokens" in captions
