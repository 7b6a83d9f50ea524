"""Heads labelled by what they do (multi-head), `render.py heads`, and --query / --key.

Labels and scores are checked against attention_truth.head_labels, a recomputation from the
trace's patterns that never calls facts.meaning; the hand-chosen story cells against
scene_helpers.story_cells, which never calls facts.attention."""

from __future__ import annotations

import json

import pytest

from attention_truth import head_labels
from conftest import DEFAULT_PROMPT
from facts import attention as af
from model.errors import UserError
from scene_helpers import build, check_shown, story_cells, story_head

# ---------------------------------------------------------------- multi-head: every head labelled


def test_multi_head_labels_match_the_patterns(default_trace):
    scene = build("multi-head")
    truth = head_labels(scene.trace, scene.layer)
    assert len(scene.behaviour_labels) == scene.trace.config.n_heads == len(truth)
    for h, tag in scene.behaviour_labels.items():
        name, score, strength = truth[h]
        assert tag.behaviour == (name, strength), (h, tag.behaviour, truth[h])
        scores = [m.shown for m in tag.get_family() if getattr(m, "shown", None) is not None]
        assert [s.source for s in scores] == ["attn.behaviour"] and scores[0].value == pytest.approx(score, abs=1e-9)
        words = " ".join(m.text for m in tag.get_family() if hasattr(m, "text") and m.text)
        assert ("weak" in words) == (strength == "weak"), (h, words)
    check_shown(scene)
    # the narration names the story head's label and score, and how many heads do what
    said = " ".join(scene.captions)
    name, score, strength = truth[scene.head]
    assert f"{round(100 * score)}%" in said or name == "broad", said
    for label_name in {t[0] for t in truth}:
        n = sum(t[0] == label_name for t in truth)
        assert (f"{n} " if n > 1 else "one ") in said
    # the frame is used: something right of the middle, nothing off it
    right = [m for m in scene.mobjects if m.get_center()[0] > 1.0]
    assert right and not scene.layout_problems, scene.layout_problems


# ---------------------------------------------------------------- render.py heads


def run_heads(capsys, *args) -> tuple[int, str, str]:
    import render

    code = render.main(["heads", DEFAULT_PROMPT, "--device", "cpu", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_heads_json_is_ranked_and_agrees_with_choose_head(default_trace, capsys):
    code, out, err = run_heads(capsys, "--json")
    assert code == 0, err
    got = json.loads(out)
    rows = got["heads"]
    cfg = default_trace.config
    assert len(rows) == cfg.n_layers * cfg.n_heads
    assert [r["story_score"] for r in rows] == sorted((r["story_score"] for r in rows), reverse=True)
    L, H, score, q, keys = story_head(default_trace)
    (auto,) = [r for r in rows if r["auto"]]
    assert (auto["layer"], auto["head"]) == (L, H) == (got["auto"]["layer"], got["auto"]["head"])
    assert auto["story_score"] == pytest.approx(score) and auto["query"] == q and tuple(auto["keys"]) == keys
    for r in rows:  # every head's story score is its own best under the rule, never above the chosen one's top
        one = story_head(default_trace, r["layer"], r["head"])
        assert r["story_score"] == pytest.approx(one[2]), r
    for L_ in (0, L, cfg.n_layers - 1):
        truth = head_labels(default_trace, L_)
        for r in (r for r in rows if r["layer"] == L_):
            assert (r["behaviour"], r["strength"]) == (truth[r["head"]][0], truth[r["head"]][2])
            assert r["behaviour_score"] == pytest.approx(truth[r["head"]][1], abs=1e-9)


def test_heads_text_marks_the_auto_pick_of_one_layer(default_trace, capsys):
    code, out, err = run_heads(capsys, "--layer", "3")
    assert code == 0, err
    L, H, *_ = story_head(default_trace, layer=3)
    marked = [line for line in out.splitlines() if "<- auto" in line]
    assert len(marked) == 1
    cells = [c.strip() for c in marked[0].split("│")]
    assert cells[2:4] == ["3", str(H)], marked
    assert all(c.strip() in ("", "3") for line in out.splitlines() if line.startswith("│")
               for c in line.split("│")[2:3]), out


@pytest.mark.parametrize("args, words", [(["--layer", "99"], "out of range"), (["--layer", "x"], "number or 'auto'")])
def test_heads_bad_layer_is_one_line(capsys, args, words):
    code, out, err = run_heads(capsys, *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- --query / --key: reading what a person types

PIECES = ["The", " quick", " fox", " saw", " the", " Fox", " ver", "d", "ant", " 14", " fox", "!"]


@pytest.mark.parametrize("text, at_most, want", [
    ("fox", None, 10),  # the last occurrence, exact case first
    ("Fox", None, 5),
    ("FOX", None, 10),  # then any case: the last of them
    (" fox", None, 10),  # a typed leading space is ignored too
    ("▁saw", None, 3),
    ("fox@2", None, 2),
    ("3", None, 3),  # digits alone: a position
    ("verdant", None, 8),  # a word of several tokens: its last token
    ("fox", 6, 2),  # a key: the last occurrence at or before the query (exact case first)
    ("FOX", 6, 5),
    ("the", None, 4),
    ("The", None, 0),
])
def test_token_position_reads_typed_tokens(text, at_most, want):
    assert af.token_position(PIECES, text, "--key" if at_most is not None else "--query", at_most) == want


@pytest.mark.parametrize("text, at_most, words", [
    ("", None, ["empty"]),
    ("  ", None, ["empty"]),
    ("wolf", None, ["not a token", "fox@2"]),
    ("fox@3", None, ["position 3", "' saw'"]),
    ("99", None, ["past the prompt's end", "0..11"]),
    ("14", None, ["ambiguous", "14@9"]),  # position 14 does not exist, but "14" here: position 9 ... see below
    ("!", 3, ["after the query at 3", "The@0"]),  # causal: a key must not come after its query
])
def test_token_position_refuses_in_one_line(text, at_most, words):
    pieces = PIECES + [" x"] * 3 if text == "14" else PIECES  # 15 tokens: "14" is a position and a token
    with pytest.raises(UserError) as e:
        af.token_position(pieces, text, "--key" if at_most is not None else "--query", at_most)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_choose_cells_without_choices_is_choose_head(default_trace):
    assert af.choose_cells(default_trace) == af.choose_head(default_trace)


@pytest.mark.parametrize("query, key", [("creature", "fluffy"), ("forest", None), (None, "blue"), ("roamed@4", "2")])
def test_choose_cells_agrees_with_a_recomputation(default_trace, query, key):
    c = af.choose_cells(default_trace, None, None, query, key)
    L, H, score, q, keys = story_cells(default_trace, None, None, query, key)
    assert (c.layer, c.head, c.query, tuple(c.keys)) == (L, H, q, keys) and c.score == pytest.approx(score)
    assert all(k <= c.query for k in c.keys)


def test_attention_pattern_draws_the_chosen_cells(default_trace):
    scene = build("attention-pattern", MT_QUERY="roamed", MT_KEY="fluffy")
    pieces = scene.trace.pieces
    assert pieces[scene.query].strip() == "roamed" and [pieces[k].strip() for k in scene.story_keys] == ["fluffy"]
    L, H, score, q, keys = story_cells(scene.trace, None, None, "roamed", "fluffy")
    assert (scene.layer, scene.head, scene.query, tuple(scene.story_keys)) == (L, H, q, keys)
    shown = {(m.shown.source, m.shown.index) for m in scene.seen.values() if getattr(m, "shown", None) is not None}
    assert (f"blocks.{L}.attn.hook_pattern", (H, q, keys[0])) in shown  # the story cell's weight is on screen
    check_shown(scene)
    assert "roamed" in scene.captions[-1] and "fluffy" in scene.captions[-1]
