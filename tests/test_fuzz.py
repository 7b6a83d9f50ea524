"""Fuzzing the inputs a user controls, in-process: command-line arguments (render.main), lecture
files (`lecture FILE --plan`) and a checkpoint folder's config.json (model.loading.read_hf_config).

For every generated case: exit 0 or 2 (a render would be 1 for a failed scene, but none starts
here: `render` is sent down the plan-only path, `lecture` always carries --plan), one stderr line
for 2, never an exception out of main, nothing written outside --out and the cache, no partial
file, the earlier output in --out byte-identical. Each test counts the cases accepted and refused
and fails if either never happens: a fuzzer that only ever hits the first error checks nothing.

The model is loaded once per session (the `smollm2` fixture stands in for model.loading.load) and
prompts come from a short list, so only a handful of forward passes run; the file takes ~20 s."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import render
from model.errors import UserError

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROMPTS = ["The capital of France is", "a", "東京は日本の首都です 🍣"]
EARLIER = {"tokens.mp4": b"\x00\x00\x00\x18ftypmp42 earlier video", "tokens.json": b'{"earlier": true}\n'}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file and folder under `folder` (hidden ones too): path -> bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def sandbox(tmp_path, monkeypatch, smollm2):
    """A working folder holding an earlier output in out/; the model load and the render are
    replaced by the loaded session model and the plan-only path."""
    from pipeline import render as pipeline_render

    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    for name, data in EARLIER.items():
        (work / "out" / name).write_bytes(data)
    monkeypatch.chdir(work)
    real = pipeline_render.render_scenes

    def plan_only(items, out, jobs, quiet=False, page_title=None, plan_only=False, **page):
        return real(items, out, jobs, quiet, page_title, plan_only=True, **page)

    monkeypatch.setattr(pipeline_render, "render_scenes", plan_only)
    monkeypatch.setattr("model.loading.load", lambda *a, **k: smollm2)
    return work


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = render.main(argv)
    except SystemExit as e:  # argparse: usage errors (2) and --help (0)
        code = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def check_outcome(code: int, out: str, err: str, counts: dict, before: dict, work: Path) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        counts["refused"] += 1
    else:
        counts["accepted"] += 1
    after = snapshot(work)
    written = {k for k in after if k not in before}
    # a trace written with -o lands in out/ whole (both files); nothing else appears anywhere
    assert all(k.startswith("out/") and k.endswith((".safetensors", ".json")) for k in written), written
    assert not any(Path(k).name.startswith(".") or k.endswith(".tmp") for k in written), written
    for name, data in EARLIER.items():
        assert after[f"out/{name}"] == data, name
    for k in written:  # the next case starts from the same earlier output
        (work / k).unlink()


def report(name: str, counts: dict) -> None:
    print(f"{name}: {counts['accepted']} accepted, {counts['refused']} refused")
    assert counts["accepted"] > 0 and counts["refused"] > 0, counts


# --------------------------------------------------------------------------- command-line arguments

WORDS = st.sampled_from(["", " ", "auto", "0", "1", "-1", "99", "1e9", "nan", "x", "tokens", "all", "a\nb", "..", "/",
                         "The@0", "3@3", "東京", "\x1b[31m", "\udcff", "out", "out/t.safetensors", "out/x.txt"])
OPTIONS = {
    "--prompt": st.one_of(st.sampled_from(PROMPTS), WORDS), "--model": st.sampled_from(["smollm2-135m", "nope", "x.gguf", "/"]),
    "--device": st.sampled_from(["auto", "cpu", "tpu"]), "--layer": WORDS, "--head": WORDS, "--query": WORDS, "--key": WORDS,
    "--theme": st.sampled_from(["dark", "light", "pink"]), "--seed": st.sampled_from(["0", "7", "-1", "2e3", str(2 ** 64)]),
    "--voice": st.sampled_from(["none", "joe", "alice"]), "--speed": st.sampled_from(["1", "0", "2.5", "nan", "fast"]),
    "--quality": st.sampled_from(["low", "ultra"]), "--fps": st.sampled_from(["2", "0", "500", "x"]),
    "--format": st.sampled_from(["mp4", "png", "avi"]), "--jobs": st.sampled_from(["1", "0", "x"]),
    "--out": st.sampled_from(["out", "", "out/sub", "a\nb", "x" * 300]), "--top": st.sampled_from(["1", "3", "0", "-2", "x"]),
    "--analogy": st.sampled_from(["uncle-man+woman", "king", "a-b+c+d"]), "--bogus": WORDS,
}
COMMANDS = {
    "predict": ["--model", "--device", "--top"], "heads": ["--layer", "--model"], "trace": ["--model"],
    "render": ["--prompt", "--model", "--device", "--layer", "--head", "--query", "--key", "--theme", "--seed", "--voice",
               "--speed", "--quality", "--fps", "--format", "--jobs", "--out", "--analogy"],
    "list": [], "models": [], "frobnicate": [],
}


@st.composite
def argvs(draw) -> list[str]:
    command = draw(st.sampled_from(list(COMMANDS)))
    argv = [command]
    if command in ("predict", "heads", "trace"):
        argv.append(draw(st.one_of(st.sampled_from(PROMPTS), WORDS)))
    if command == "trace":
        argv += ["-o", draw(st.sampled_from(["out/t.safetensors", "out/x.txt", "out/tokens.mp4/in.safetensors", "out"]))]
    if command == "render":
        argv += draw(st.lists(st.sampled_from(["tokens", "softmax", "all", "tokenz"]), min_size=0, max_size=2))
        argv += ["--voice", "none"]  # the plan checks the voice; no voice file is needed to refuse or plan
    for option in draw(st.lists(st.sampled_from(COMMANDS[command] + ["--bogus"]), max_size=3, unique=True)):
        argv += [option, draw(OPTIONS[option])]
    if command == "render" and "--out" not in argv:
        argv += ["--out", "out"]
    return argv


def test_fuzz_command_line(sandbox, capsys):
    counts = {"accepted": 0, "refused": 0}

    @FUZZ
    @given(argvs())
    @example(["predict", "The capital of France is", "--bogus", "a\nb"])  # found by this test: two stderr lines
    @example(["list", "--bogus", "\udcff"])  # found by this test: an undecodable byte broke the error message
    def case(argv):
        before = snapshot(sandbox)
        code, out, err = run_main(argv, capsys)
        check_outcome(code, out, err, counts, before, sandbox)

    case()
    report("command line", counts)


# --------------------------------------------------------------------------- lecture files

def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


SCALARS = st.one_of(st.booleans(), st.integers(-3, 40), st.sampled_from([1.5, float("nan"), 1e300]),
                    st.sampled_from(["auto", "tokens", "", "cpu", "tpu", "low", "png", "dark", "none", "joe", "x", "a\nb"]),
                    st.sampled_from(PROMPTS))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2))
LECTURE_OPTIONS = ["prompt", "model", "device", "layer", "head", "quality", "fps", "format", "theme", "seed", "voice",
                   "speed", "burn_captions", "query", "key", "colour"]
SCENE_NAMES = st.sampled_from(["tokens", "softmax", "embeddings", "tokenz", ""])


FITTING = {  # values each option takes in a working lecture
    "prompt": st.sampled_from(PROMPTS), "model": st.just("smollm2-135m"), "device": st.sampled_from(["auto", "cpu"]),
    "layer": st.one_of(st.just("auto"), st.integers(0, 29)), "head": st.one_of(st.just("auto"), st.integers(0, 8)),
    "quality": st.sampled_from(["low", "medium"]), "fps": st.integers(1, 30), "format": st.sampled_from(["mp4", "png", "gif"]),
    "theme": st.sampled_from(["dark", "light"]), "seed": st.integers(0, 2 ** 40), "voice": st.just("none"),
    "speed": st.sampled_from([1, 1.5, 0.75]), "burn_captions": st.booleans(), "query": st.just(0), "key": st.just(0),
    "title": st.text(max_size=20), "out": st.sampled_from(["out", "out/lecture"]), "sections": st.booleans(),
    "jobs": st.integers(1, 4), "colour": VALUES,
}


@st.composite
def lectures(draw) -> str:
    """A lecture that mostly works, with a hostile value, key or byte here and there."""
    hostile = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))  # the share of values drawn from anything at all

    def value(option: str):
        wild = draw(st.floats(0, 1)) < hostile or option == "colour"
        return toml_value(draw(VALUES) if wild else draw(FITTING[option]))

    lines = [f"{key} = {value(key)}" for key in draw(st.lists(st.sampled_from(["title", "out", "sections", "jobs"]),
                                                              max_size=3, unique=True))]
    if draw(st.floats(0, 1)) < hostile:
        lines.insert(0, f"{draw(st.sampled_from(['defaults', 'scene', 'colour']))} = {toml_value(draw(VALUES))}")
        lines.append("")  # (a [defaults] table or [[scene]] below then clashes with it: a TOML error, also refused)
    if draw(st.booleans()):
        lines += ["[defaults]", 'voice = "none"']
        lines += [f"{o} = {value(o)}" for o in draw(st.lists(st.sampled_from(LECTURE_OPTIONS), max_size=3, unique=True))
                  if o != "voice"]
    for _ in range(draw(st.integers(0 if hostile else 1, 3))):
        lines.append("[[scene]]")
        if draw(st.floats(0, 1)) >= hostile / 3:
            lines.append(f"name = {toml_value(draw(SCENE_NAMES) if draw(st.floats(0, 1)) < hostile else 'tokens')}")
        lines += [f"{o} = {value(o)}" for o in draw(st.lists(st.sampled_from(LECTURE_OPTIONS), max_size=2, unique=True))]
    text = "\n".join(lines) + "\n"
    if draw(st.floats(0, 1)) < hostile / 3:  # now and then a byte-level accident: a cut or a stray bracket
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "[", "\x00", "=\n"])) + text[cut:]
    return text


def test_fuzz_lecture_files(sandbox, capsys):
    counts = {"accepted": 0, "refused": 0}
    path = sandbox / "lecture.toml"

    @FUZZ
    @given(lectures(), st.integers(0, 9))
    def case(text, dice):
        path.write_bytes(text.encode("utf-8") + (b"# \xff\n" if dice == 0 else b""))  # now and then not UTF-8
        before = snapshot(sandbox)
        code, out, err = run_main(["lecture", str(path), "--plan", "--out", "out", "--quiet", "--voice", "none"], capsys)
        check_outcome(code, out, err, counts, before, sandbox)
        if code == 0:
            assert out.strip().splitlines()[-1].endswith("clips planned, nothing rendered")

    case()
    report("lecture files", counts)


# --------------------------------------------------------------------------- config.json of a checkpoint folder

FIELD_VALUES = st.one_of(st.integers(-2, 70000), st.sampled_from([0, 1, 2, 4, 8, 16, 64, 10 ** 30]), st.booleans(),
                         st.none(), st.sampled_from([1e-5, 0.0, -1.0, 1.5, float("nan"), float("inf"), 10000.0]),
                         st.sampled_from(["silu", "gelu_new", "x", "", "default", "linear"]),
                         st.lists(st.sampled_from(["full_attention", "sliding_attention", 3]), max_size=3),
                         st.fixed_dictionaries({}, optional={"rope_type": st.sampled_from(["default", "linear", 5]),
                                                            "rope_theta": st.sampled_from([10000.0, 0, "x"])}))
KNOWN = ["n_embd", "n_layer", "n_head", "n_positions", "vocab_size", "n_inner", "layer_norm_epsilon", "activation_function",
         "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size",
         "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "hidden_act",
         "tie_word_embeddings", "sliding_window", "layer_types", "query_pre_attn_scalar", "attention_bias"]
GOOD = {"gpt2": {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 300},
        "llama": {"model_type": "llama", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                  "intermediate_size": 32, "vocab_size": 300}}


@st.composite
def configs(draw):
    if draw(st.integers(0, 19)) == 0:  # not an object at all
        return draw(st.sampled_from([[], [1, 2], "config", 3, None]))
    base = dict(GOOD[draw(st.sampled_from(list(GOOD)))])
    for key in draw(st.lists(st.sampled_from(KNOWN + ["model_type"]), max_size=3, unique=True)):
        if draw(st.booleans()):
            base.pop(key, None)
        else:
            base[key] = draw(FIELD_VALUES) if key != "model_type" else draw(st.sampled_from(["gpt2", "llama", "bert", 7]))
    return base


def test_fuzz_config_json(tmp_path):
    from model.loading import read_hf_config

    counts = {"accepted": 0, "refused": 0}
    folder = tmp_path / "model"
    folder.mkdir()

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(configs())
    @example({**GOOD["gpt2"], "n_head": 0})  # found by this test: a ZeroDivisionError
    def case(config):
        (folder / "config.json").write_text(json.dumps(config))  # NaN and Infinity as JSON writes them
        try:
            cfg = read_hf_config(folder)
        except UserError as e:
            assert "\n" not in str(e)
            counts["refused"] += 1
            return
        cfg.validate()
        assert all(isinstance(getattr(cfg, f), int) and not isinstance(getattr(cfg, f), bool) and getattr(cfg, f) > 0
                   for f in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "d_mlp", "vocab_size", "n_ctx"))
        assert math.isfinite(cfg.norm_eps) and math.isfinite(cfg.rope_base)
        counts["accepted"] += 1

    case()
    report("config.json", counts)
    assert os.listdir(folder) == ["config.json"]
