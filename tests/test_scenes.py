"""Scenes built without video: what they show equals the trace; layout; escaping; head choice; CLI basics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from scene_helpers import build, check_shown  # noqa: E402

from facts.attention import choose_head, word_spans  # noqa: E402
from model.trace import get_trace  # noqa: E402
from scenes.parts.params import DEFAULT_PROMPT, Params, parse_analogy, parse_choice
from scenes.registry import SCENES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ALL = list(SCENES)
LONG_PROMPT = " ".join(["The fluffy blue creature roamed the verdant forest, and"] * 21) + " the end"


@pytest.mark.parametrize("name", ALL)
def test_default_prompt_scene(name):
    """Every shown value equals its source; every beat is a section with a caption; nothing off-frame."""
    scene = build(name)
    assert check_shown(scene) >= 10
    assert scene.sections_run == list(scene.beats)
    assert all(scene.beat_captions[b] >= 1 for b in scene.beats), scene.beat_captions
    assert scene.layout_problems == []
    trace = get_trace(DEFAULT_PROMPT)
    tag = scene.provenance.text.text
    assert "layer1head2" in tag and trace.hash[:8] in tag
    if name == "word-vectors":
        assert "' queen'" in " ".join(scene.captions)


def test_default_story_head():
    trace = get_trace(DEFAULT_PROMPT)
    choice = choose_head(trace)
    assert (choice.layer, choice.head) == (1, 2)
    assert [trace.pieces[k] for k in choice.keys] == [" fluffy", " blue"] and trace.pieces[choice.query] == " creature"
    assert choice.score == pytest.approx(0.92, abs=0.01)


def test_word_spans_and_head_choice_edges():
    assert word_spans(["The", " ver", "d", "ant", ",", " x"]) == [(0, 1), (1, 4), (4, 5), (5, 6)]
    short = get_trace("Hi")
    c = choose_head(short)
    assert c.query == 0 and c.keys == (0,)
    c = choose_head(get_trace(DEFAULT_PROMPT), layer=3, head=4)
    assert (c.layer, c.head, c.auto) == (3, 4, False)


def test_params_parsing():
    assert parse_analogy("uncle-man+woman") == ("uncle", "man", "woman")
    assert parse_analogy("a, b, c") == ("a", "b", "c")
    assert parse_choice("auto", "head") is None and parse_choice("3", "head") == 3
    p = Params.from_env({"MT_PROMPT": "x", "MT_HEAD": "2", "MT_THEME": "light"})
    assert (p.prompt, p.head, p.layer, p.theme) == ("x", 2, None, "light")
    assert Params.from_env(p.to_env()) == p
    from model.errors import UserError
    for bad in ("a-b", "a,b"):
        with pytest.raises(UserError):
            parse_analogy(bad)
    with pytest.raises(UserError):
        parse_choice("-1", "layer")


def test_markup_in_prompt_is_shown_literally():
    prompt = '<span foreground="red">x</span>'
    scene = build("tokens", MT_PROMPT=prompt)
    lines = [m for m in scene.seen.values() if getattr(m, "shown", None) and m.shown.source == "prompt"]
    assert "".join(m.shown.text for m in lines) == prompt
    for m in lines:  # one glyph per visible character: Pango did not eat the tags
        assert len(m.submobjects) == len(m.shown.text.replace(" ", ""))
    check_shown(scene)


@pytest.mark.parametrize("prompt", ["Hi", LONG_PROMPT], ids=["shortest", "longest"])
@pytest.mark.parametrize("name", ALL)
def test_layout_fits_the_frame(name, prompt):
    trace = get_trace(prompt)
    assert len(trace.tokens) <= 256
    scene = build(name, MT_PROMPT=prompt)
    assert scene.layout_problems == []
    check_shown(scene)


def test_long_prompt_is_at_the_limit():
    assert len(get_trace(LONG_PROMPT).tokens) >= 240


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "render.py"), *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_list_and_unknown_scene():
    out = run_cli("list")
    assert out.returncode == 0 and [line.split()[0] for line in out.stdout.splitlines()] == ALL
    bad = run_cli("render", "nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown scene 'nope'" in bad.stderr
    bad = run_cli("render", "tokens", "--head", "99")
    assert bad.returncode == 2 and "out of range" in bad.stderr
    bad = run_cli("render", "word-vectors", "--analogy", "king-zzqxj+woman")
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
