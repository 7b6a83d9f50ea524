"""Bad input that used to end in a traceback (or was silently accepted): one line on stderr and
exit 2, in-process through render.main. Checkpoint folders with NaN weights, a vocabulary smaller
than the tokenizer's ids, config.json values of the wrong kind; lecture files with wrong types,
non-UTF-8 text or no regular file at all; an unusable cache folder; standard output that cannot
be written; a trace whose sidecar path is a folder. And a lecture of 10,000 scenes planned quickly."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from builders import write_random_gpt2  # noqa: E402

import render  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A one-layer random GPT-2 with GPT-2's vocabulary (its tokenizer comes with the project)."""
    return write_random_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2", d_model=16)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = render.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def variant(tiny: Path, where: Path, config=None, weights=None, files=None) -> Path:
    folder = where / "model"
    shutil.copytree(tiny, folder)
    if config is not None:
        c = json.loads((folder / "config.json").read_text())
        c = config(c)
        (folder / "config.json").write_text(c if isinstance(c, str) else json.dumps(c))
    if weights is not None:
        w = load_file(str(folder / "model.safetensors"))
        weights(w)
        save_file(w, str(folder / "model.safetensors"))
    if files is not None:
        files(folder)
    return folder


def poke(name: str, index, value):
    def edit(w):
        w[name][index] = value
    return edit


CHECKPOINTS = {
    "nan-weight": ({"weights": poke("wte.weight", (5, 3), float("nan"))}, ["weight embed.W_E", "NaN or infinite"]),
    "inf-weight": ({"weights": poke("h.0.mlp.c_fc.weight", (0, 0), float("inf"))}, ["blocks.0.mlp.W_in", "NaN or infinite"]),
    "nan-epsilon": ({"config": lambda c: {**c, "layer_norm_epsilon": float("nan")}}, ["layer_norm_epsilon", "not a finite"]),
    "config-a-list": ({"config": lambda c: "[1, 2]"}, ["must hold a JSON object", "list"]),
    "config-fraction": ({"config": lambda c: {**c, "n_layer": 1.5}}, ["n_layer must be a whole number", "1.5"]),
    "config-flag-as-count": ({"config": lambda c: {**c, "n_head": True}}, ["n_head must be a whole number"]),
    "config-infinity": ({"config": lambda c: json.dumps(c).replace('"n_layer": 1', '"n_layer": Infinity')},
                        ["n_layer must be a whole number", "Infinity"]),
    "config-absurd": ({"config": lambda c: {**c, "n_layer": 10 ** 30}}, ["impossible n_layers"]),
    "config-table-as-text": ({"config": lambda c: {**c, "rope_scaling": "yes"}}, ["rope_scaling must be a table"]),
    "config-folder": ({"files": lambda f: ((f / "config.json").unlink(), (f / "config.json").mkdir())},
                      ["config.json is a folder"]),
    "weight-file-a-folder": ({"files": lambda f: (f / "extra.safetensors").mkdir()}, ["extra.safetensors is a folder"]),
    "dangling-weight-link": ({"files": lambda f: (f / "extra.safetensors").symlink_to(f / "gone")},
                             ["extra.safetensors is a broken link"]),
    "tokenizer-a-list": ({"files": lambda f: (f / "tokenizer.json").write_text("[]")}, ["not a tokenizer file"]),
    "tokenizer-no-vocab": ({"files": lambda f: (f / "tokenizer.json").write_text(json.dumps(
        {"model": {"type": "BPE", "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}))}, ["has no vocabulary"]),
    "tokenizer-a-folder": ({"files": lambda f: (f / "tokenizer.json").mkdir()}, ["tokenizer.json is a folder"]),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_a_broken_checkpoint_folder_is_one_line(case, tiny, tmp_path, own_cache, capsys):
    edits, words = CHECKPOINTS[case]
    folder = variant(tiny, tmp_path, **edits)
    code, out, err = run(["predict", "hello", "--top", "1", "--model", folder], capsys)
    one_line(code, err, *words)
    assert out == ""


def test_a_tokenizer_with_ids_past_the_vocabulary_is_refused(tmp_path, own_cache, capsys):
    """A Llama folder whose tokenizer makes ids up to 299 for an embedding of 100 rows (it crashed
    with an IndexError in the forward pass)."""
    from builders import train_byte_level_tokenizer

    folder = tmp_path / "llama"
    folder.mkdir()
    train_byte_level_tokenizer(folder, "hello world", 300)
    D, M, V = 16, 32, 100
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": D, "num_hidden_layers": 1,
                                                    "num_attention_heads": 2, "intermediate_size": M, "vocab_size": V}))
    g = torch.Generator().manual_seed(0)
    shapes = {"embed_tokens.weight": (V, D), "lm_head.weight": (V, D), "layers.0.self_attn.q_proj.weight": (D, D),
              "layers.0.self_attn.k_proj.weight": (D, D), "layers.0.self_attn.v_proj.weight": (D, D),
              "layers.0.self_attn.o_proj.weight": (D, D), "layers.0.mlp.gate_proj.weight": (M, D),
              "layers.0.mlp.up_proj.weight": (M, D), "layers.0.mlp.down_proj.weight": (D, M)}
    weights = {k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()}
    weights |= {k: torch.ones(D) for k in ("norm.weight", "layers.0.input_layernorm.weight",
                                           "layers.0.post_attention_layernorm.weight")}
    save_file(weights, str(folder / "model.safetensors"))
    largest = max(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"].values())
    assert largest >= V
    code, _, err = run(["predict", "hello", "--model", folder], capsys)
    one_line(code, err, f"ids up to {largest}", "only 100 rows")


# --------------------------------------------------------------------------- lecture files

LECTURES = {
    "defaults-a-string": ('defaults = "x"\n[[scene]]\nname = "tokens"\n', [":1:", "defaults must be a table"]),
    "scenes-not-tables": ("scene = [1, 2]\n", [":1:", "scene must be a list of [[scene]] tables"]),
    "out-a-number": ('out = 5\n[[scene]]\nname = "tokens"\n', [":1:", "out must be a string"]),
    "out-empty": ('out = ""\n[[scene]]\nname = "tokens"\n', [":1:", "out is empty"]),
    "out-newline": ('out = "a\\nb"\n[[scene]]\nname = "tokens"\n', [":1:", "control character"]),
    "sections-no": ('sections = "no"\n[[scene]]\nname = "tokens"\n', [":1:", "sections must be true or false"]),
    "title-a-number": ('title = 5\n[[scene]]\nname = "tokens"\n', [":1:", "title must be a string"]),
    "jobs-true": ('jobs = true\n[[scene]]\nname = "tokens"\n', [":1:", "jobs must be a whole number"]),
    "unknown-device": ('[defaults]\ndevice = "tpu"\n[[scene]]\nname = "tokens"\n', [":2:", "device must be one of"]),
    "inline-scene-without-name": ("scene = [{name = 5}]\n", [":1:", "needs a name"]),
    "scene-device": ('[[scene]]\nname = "tokens"\ndevice = "gpu0"\n', [":3:", "device must be one of"]),
}


@pytest.mark.parametrize("case", list(LECTURES))
def test_a_lecture_file_of_the_wrong_shape_is_one_line(case, tmp_path, capsys):
    text, words = LECTURES[case]
    path = tmp_path / "l.toml"
    path.write_text(text)
    code, out, err = run(["lecture", path, "--out", tmp_path / "out", "--quiet", "--plan"], capsys)
    one_line(code, err, *words)
    assert not (tmp_path / "out").exists()


def test_a_lecture_file_that_is_not_text_or_not_a_file(tmp_path, capsys):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[[scene]]\nname = "tokens"\nprompt = "café"\n'.encode("latin-1"))
    one_line(*run(["lecture", bad, "--plan"], capsys)[::2], "latin1.toml:3:", "not UTF-8")
    one_line(*run(["lecture", "/dev/zero", "--plan"], capsys)[::2], "/dev/zero", "not a regular file")
    os.mkfifo(tmp_path / "pipe.toml")  # read plainly, this would wait for a writer forever
    one_line(*run(["lecture", tmp_path / "pipe.toml", "--plan"], capsys)[::2], "not a regular file")
    course = tmp_path / "c.toml"
    course.symlink_to("/dev/zero")
    one_line(*run(["batch", course, "--out", tmp_path / "o"], capsys)[::2], "course file", "not a regular file")


def test_a_lecture_device_is_used_not_ignored(tmp_path):
    import argparse

    from pipeline.render import lecture_jobs

    path = tmp_path / "l.toml"
    path.write_text('[defaults]\ndevice = "cpu"\n[[scene]]\nname = "tokens"\n[[scene]]\nname = "tokens"\ndevice = "auto"\n')
    args = render.build_parser().parse_args(["lecture", str(path)])
    _, items, _ = lecture_jobs(args)
    assert [p.device for _, p, _ in items] == ["cpu", "auto"]
    args = argparse.Namespace(**{**vars(args), "device": "cuda"})  # the command line wins
    try:
        _, items, _ = lecture_jobs(args)
        assert [p.device for _, p, _ in items] == ["cuda", "cuda"]
    except Exception as e:  # no GPU here: refused with one line, naming the flag
        assert "--device cuda" in str(e)


# --------------------------------------------------------------------------- the cache folder and the outputs

def test_an_unusable_cache_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from model import cache

    cache.usable.cache_clear()
    (tmp_path / "file").write_text("x")
    for value, words in ((str(tmp_path / "file"), ["is a file, not a folder", "MANIM_TRANSFORMER_CACHE"]),
                         ("/proc/no-such-cache", ["cannot use the cache folder", "MANIM_TRANSFORMER_CACHE"])):
        monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", value)
        one_line(*run(["predict", "hello"], capsys)[::2], *words)
        code, out, err = run(["models"], capsys)  # a listing still lists, saying what is wrong on the cached model's line
        assert code == 0 and err == "" and "gemma3-270m" in out and words[0] in out
    monkeypatch.delenv("MANIM_TRANSFORMER_CACHE")
    monkeypatch.setenv("HOME", "")  # an empty HOME put the cache under / (or the working folder)
    one_line(*run(["predict", "hello"], capsys)[::2], "HOME", "MANIM_TRANSFORMER_CACHE")
    assert not Path("/.cache/manim-transformer").exists() or Path.home() == Path("/")
    cache.usable.cache_clear()


def test_standard_output_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    """`render.py models > /dev/full`: one line and exit 2, no traceback (the same for `list`)."""
    import subprocess

    for command in ("models", "list"):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, render.__file__, command], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=120)
        one_line(proc.returncode, proc.stderr, "cannot write the output", "No space left")
    proc = subprocess.run(f"{sys.executable} {render.__file__} list | head -c 1 >/dev/null; echo $PIPESTATUS",
                          shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert proc.stderr == "" and proc.stdout.strip() in ("0", "141")  # a reader that stops early is no error


def test_trace_writes_both_files_or_neither(tmp_path, capsys, smollm2, monkeypatch):
    monkeypatch.setattr("model.loading.load", lambda *a, **k: smollm2)
    (tmp_path / "t.safetensors").write_bytes(b"earlier")
    (tmp_path / "t.json").mkdir()
    code, out, err = run(["trace", "hello", "-o", tmp_path / "t.safetensors"], capsys)
    one_line(code, err, "t.json", "folder")
    assert (tmp_path / "t.safetensors").read_bytes() == b"earlier"  # the earlier file is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.safetensors"]  # nothing temporary left
    code, out, err = run(["trace", "hello", "-o", tmp_path / "u.safetensors"], capsys)
    assert code == 0 and err == ""
    from model.trace import Trace

    assert Trace.load(tmp_path / "u.safetensors").tokens == smollm2.encoding.encode("hello")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.safetensors", "u.json", "u.safetensors"]


# --------------------------------------------------------------------------- a lecture of 10,000 scenes

def test_a_lecture_of_ten_thousand_scenes_is_planned_promptly(tmp_path, capsys, monkeypatch, default_trace):
    """`lecture --plan` with 10,000 scenes, each with its own seed (so 10,000 parameter sets): the
    trace is read once and the story head chosen once, not once per scene (0.17 s each: half an
    hour before the first render). Counted, and timed loosely."""
    from facts import attention
    from model import untrusted
    from scenes.parts import data

    monkeypatch.setattr(data, "_TRACES", {})
    monkeypatch.setattr(data, "_CHOICES", {})
    calls = {"trace": 0, "choose": 0}

    def counted(name, real):
        def wrapper(*a, **k):
            calls[name] += 1
            return real(*a, **k)
        return wrapper

    monkeypatch.setattr(data, "trusted_trace", counted("trace", untrusted.trusted_trace))
    monkeypatch.setattr(attention, "choose_cells", counted("choose", attention.choose_cells))
    n = 10_000
    path = tmp_path / "big.toml"
    path.write_text('title = "big"\n[defaults]\nvoice = "none"\n'
                    + "".join(f'[[scene]]\nname = "tokens"\nseed = {i}\n' for i in range(n)))
    started = time.perf_counter()
    code, out, err = run(["lecture", path, "--plan", "--out", tmp_path / "out"], capsys)
    seconds = time.perf_counter() - started
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == n + 1 and lines[-1] == f"{n} clips planned, nothing rendered"
    assert lines[0].endswith("tokens  low mp4") and f"tokens-{n}" in lines[-2]
    assert calls == {"trace": 1, "choose": 1}, calls
    assert not (tmp_path / "out").exists()  # a plan writes nothing
    print(f"10,000-scene lecture planned in {seconds:.1f} s")
    assert seconds < 120
