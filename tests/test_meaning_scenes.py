"""What E + delta E means (values), the answer's rank through the layers (layers), and the
sampled continuation drawn after the prompt (overview): built without video, every number on
screen and in the narration recomputed here from the trace and the weights (scene_helpers'
story_lens / lens_answer_rank: the final norm written out, the head's change rebuilt from
hook_z and W_O), never through facts/meaning.py or facts/prediction.py."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from scene_helpers import (build, check_shown, embeddings, expect_spoken_count as cnt,  # noqa: E402
                           expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok,
                           lens_answer_logits, loaded, rank_band, story_head, story_lens)

from model.tokenizer import token_pieces  # noqa: E402

MODEL = "smollm2-135m"
LENS_SOURCES = {"story_lens.p", "story_lens.piece", "story_lens.rank", "story_lens.cos", "story_lens.cos_p05",
                "story_lens.cos_p95", "story_lens.share"}


def piece(tid: int) -> str:
    return token_pieces(loaded(MODEL).encoding, [int(tid)])[0]


def caption_with(scene, anchor: str) -> str:
    found = [c for c in scene.captions if anchor in c]
    assert found, f"no caption with {anchor!r}: {scene.captions}"
    return found[0]


def sources(scene) -> set[str]:
    return {m.shown.source for m in scene.seen.values() if getattr(m, "shown", None) is not None}


def rank(probs: torch.Tensor, tid: int) -> int:
    return int((probs > probs[tid]).sum()) + 1


RANK = r"([\d,]+)"


def said_ranks(text: str, before: str, between: list[str], logits: list[torch.Tensor], tid: int) -> None:
    """The ranks said after `before` (joined by `between`) each lie in the honest band of its stage
    (float32 against float64: logits within scene_helpers.RANK_EPS may swap places)."""
    pattern = re.escape(before) + RANK + "".join(re.escape(b) + RANK for b in between)
    m = re.search(pattern, text)
    assert m, (pattern, text)
    for said, x in zip(m.groups(), logits):
        low, high = rank_band(x, tid)
        assert low <= int(said.replace(",", "")) <= high, (text, said, low, high)


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- values: what E + delta E means

def watched(trace, layer: int, head: int, query: int, keys) -> list[int]:
    """The key positions the table shows: one per distinct token, the most attended first, at most three."""
    weights = trace[f"blocks.{layer}.attn.hook_pattern"][head, query]
    out, seen = [], set()
    for k in sorted(keys, key=lambda k: -float(weights[k])):
        if trace.tokens[k] not in seen and len(out) < 3:
            out.append(k)
            seen.add(trace.tokens[k])
    return sorted(out)


def check_meaning_captions(scene) -> None:
    trace = scene.trace
    L, H, _, q, keys = story_head(trace)
    lens = story_lens(scene)
    probs = lens["probs"]
    me = tok(trace.pieces[q])
    # the top guess at each stage
    tops = [int(p.argmax()) for p in probs]
    text = caption_with(scene, "reads as")
    assert (f"Before layer {L}, {me} reads as {tok(piece(tops[0]))}, at {pct(probs[0][tops[0]])}. "
            f"With head {H}'s change added: {tok(piece(tops[1]))}, at {pct(probs[1][tops[1]])}. "
            f"After the whole layer: {tok(piece(tops[2]))}, at {pct(probs[2][tops[2]])}.") == text, text
    # the model's own final guess after the story token, through the lens
    final = int(trace["logits"][q].argmax())
    ranks = [rank(p, final) for p in probs]
    text = caption_with(scene, "Through the lens here")
    said_ranks(text, f"predicts {tok(piece(final))} after {me}. Through the lens here, it ranks ",
               [", then ", ", then "], lens["logits"], final)
    if min(ranks) > 10 and L < trace.config.n_layers // 2:
        assert "mostly noise" in text, text
    # the story keys: their ranks at each stage, and the verdict
    shown = watched(trace, L, H, q, keys)
    text = caption_with(scene, "Out of")
    assert f"Out of {cnt(trace.config.vocab_size)} tokens, " in text, text
    for k in shown:
        said_ranks(text, f"{tok(trace.pieces[k])} goes from rank ", [" to ", " with this head, and "],
                   lens["logits"], trace.tokens[k])
    climbed = [rank(probs[1], trace.tokens[k]) < rank(probs[0], trace.tokens[k]) for k in shown]
    strong = [c and (rank(probs[1], trace.tokens[k]) <= 10
                     or float(probs[1][trace.tokens[k]] - probs[0][trace.tokens[k]]) >= 0.01)
              for c, k in zip(climbed, shown)]
    if all(rank(probs[0], trace.tokens[k]) == 1 == rank(probs[1], trace.tokens[k]) for k in shown):
        assert "It is the top guess already, and the head's change keeps it there." in text, text
    elif any(strong):
        assert "really pushes" in text, text
    else:
        assert "weak here" in text or "does not push" in text, text
        assert ("does not push" in text) == (not any(climbed)), text
    # the change's length and its cosine with the keys' embeddings, against the whole vocabulary
    u = lens["update"]
    W_E = embeddings(MODEL).double()
    cos = W_E @ u / (W_E.norm(dim=1) * u.norm())
    text = caption_with(scene, "Its cosine with the embedding of")
    share = float(u.norm() / lens["before"].norm())
    assert f"Head {H}'s change is {pct(share)} as long as the vector." in text, text
    said = [f"{tok(trace.pieces[k])} is {num(cos[trace.tokens[k]])}" if i == 0 else
            f"with {tok(trace.pieces[k])}, {num(cos[trace.tokens[k]])}" for i, k in enumerate(shown)]
    assert f"Its cosine with the embedding of {'; '.join(said)}." in text, text
    low, high = (float(cos.quantile(x)) for x in (0.05, 0.95))
    assert f"Most tokens score between {num(low)} and {num(high)}." in text, text
    stand = [k for k in shown if float(cos[trace.tokens[k]]) > high]
    assert ("out:" in text) == bool(stand), (text, stand)
    away = [tok(trace.pieces[k]) for k in shown if float(cos[trace.tokens[k]]) < low]
    assert ("points away from " + and_list(away) in text) if away else "points away" not in text, (text, away)


def test_values_meaning_default_prompt():
    """The new beat: every number drawn is recomputed (all its sources appear), nothing leaves the
    frame, and the narration quotes the recomputed lens, ranks and cosines."""
    scene = build("values")
    assert check_shown(scene) >= 10
    assert LENS_SOURCES <= sources(scene), sources(scene)
    assert scene.layout_problems == []
    assert "beat_meaning" in scene.sections_run and scene.beat_captions["beat_meaning"] >= 4
    check_meaning_captions(scene)


def test_values_meaning_of_a_one_token_prompt():
    """One token: the story head's only key is the token itself; the beat says so and still holds."""
    scene = build("values", MT_PROMPT="a")
    check_shown(scene)
    assert LENS_SOURCES <= sources(scene)
    assert scene.layout_problems == []
    assert "attends to its own token" in caption_with(scene, "Out of")
    check_meaning_captions(scene)


# --------------------------------------------------------------------------- layers: the answer's rank, layer by layer

def check_rank_story(scene) -> None:
    n = scene.trace.config.n_layers
    lens = [lens_answer_logits(scene, layer) for layer in range(n)]
    answer = lens[0][1]
    ranks = [int((x > x[answer]).sum()) + 1 for x, _ in lens]
    text = caption_with(scene, "in the last column")
    assert f"Now follow the final answer, {tok(piece(answer))}, in the last column" in text, text
    assert f"its rank among all {cnt(scene.trace.config.vocab_size)} tokens." in text, text
    few = next((layer for layer in range(n) if ranks[layer] <= 10), None)
    top = next((layer for layer in range(n) if ranks[layer] == 1), None)
    settled = min(layer for layer in range(n) if all(r == 1 for r in ranks[layer:]))
    if ranks[0] == 1:
        assert "It is already the top token at layer 0." in text, text
    elif few == 0:
        said_ranks(text, "It is already in the top 10 at layer 0, at rank ", [], [lens[0][0]], answer)
    else:
        said_ranks(text, "It starts at rank ", [], [lens[0][0]], answer)
        assert f". It first enters the top 10 at layer {few}, with " in text, text
    assert (f"It first becomes the top token at layer {top}, with " in text) == (0 < top < settled), text
    assert ("slips back" in text) == (top < settled), (text, top, settled)
    ranks_drawn = {m.shown.index[0]: m.shown.value for m in scene.seen.values()
                   if getattr(m, "shown", None) is not None and m.shown.source == "lens.answer_rank"}
    assert sorted(ranks_drawn) == list(range(n))  # every layer's rank is on screen (check_shown checks each one)


def text_boxes(scene) -> list[tuple]:
    """The boxes of every text in the answer beat's plot area (tick labels, names, marks, tags)."""
    from manim import DOWN, LEFT, RIGHT, UP, Text

    fixed = {id(m) for part in (scene.header, scene.provenance) for m in part.get_family()}
    out = []
    for top in scene.mobjects:
        for m in top.get_family():
            if isinstance(m, Text) and id(m) not in fixed and m.width > 0:
                (x0, y0, _), (x1, y1, _) = m.get_corner(DOWN + LEFT), m.get_corner(UP + RIGHT)
                out.append((x0, y0, x1, y1, m.text))
    assert out
    return out


@pytest.mark.parametrize("prompt", [None, "a"], ids=["default", "one-token"])  # builds the scene tests make too
def test_layers_rank_story_and_a_clear_plot(prompt):
    """The answer's rank after every layer is drawn and told with its numbers; on the curve, no
    label touches another, the curve or its dots."""
    scene = build("layers", **({"MT_PROMPT": prompt} if prompt else {}))
    check_shown(scene)
    assert "lens.answer_rank" in sources(scene)
    assert scene.layout_problems == []
    check_rank_story(scene)
    boxes = text_boxes(scene)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    curve = [p for p in scene.curve.get_anchors()]
    samples = [a + (b - a) * t / 20 for a, b in zip(curve, curve[1:]) for t in range(21)]
    for x0, y0, x1, y1, text in boxes:
        assert not any(x0 <= p[0] <= x1 and y0 <= p[1] <= y1 for p in samples), f"{text!r} lies on the curve"


# --------------------------------------------------------------------------- overview: the continuation after the prompt

def test_overview_continuation_has_no_stray_spaces():
    """The prompt's end and the sampled tokens are one line of text: exactly the prompt's last
    characters then the drawn tokens' own text, nothing added between them; the tokens drawn
    in the highlight colour, the prompt dim."""
    from manim import ManimColor, Text

    scene = build("overview")
    prompt = scene.trace.prompt
    drawn = [s["chosen"]["id"] for s in scene.data.samples]
    ends = [m for m in scene.mobjects if isinstance(m, Text) and getattr(m, "parts", None)]
    assert len(ends) == 1, ends
    text = ends[0]
    tail = prompt if len(prompt) <= 40 else "\u2026" + prompt[-39:]
    new = "".join(piece(t) for t in drawn)
    assert text.parts == (tail, new), (text.parts, tail, new)
    assert text.text.replace(" ", "") == (tail + new).replace(" ", "")
    glyphs = len(new.replace(" ", ""))
    accent = ManimColor(scene.theme.accent).to_hex().lower()
    colours = [ManimColor(g.get_fill_color()).to_hex().lower() for g in text.submobjects]
    assert all(c == accent for c in colours[-glyphs:]) and accent not in colours[:-glyphs], colours


# --------------------------------------------------------------------------- the facts these scenes read

def test_vector_meaning_final_guess_and_cosines(smollm2, default_trace):
    """facts.meaning.vector_meaning's new parts against the formula: at the last layer the lens
    after the layer is the model itself (its final guess ranks 1); the update's cosines with
    the watched tokens' embeddings, their ranks, and the vocabulary's 5th/95th percentiles."""
    import numpy as np

    from facts import meaning

    trace = default_trace
    last, q = trace.config.n_layers - 1, len(trace.tokens) - 1
    watch = (trace.tokens[1], trace.tokens[2])
    v = meaning.vector_meaning(trace, MODEL, last, 3, q, watch)
    assert v["final"]["id"] == int(trace["logits"][q].argmax()) and v["final"]["after_layer_rank"] == 1
    u = trace[f"blocks.{last}.attn.hook_z"][q, 3].double() @ smollm2.model.weight(f"blocks.{last}.attn.W_O")[3].detach().double()
    W_E = smollm2.model.weight("embed.W_E").detach().double()
    cos = (W_E @ u / (W_E.norm(dim=1) * u.norm())).numpy()
    c = v["embedding_cosines"]
    for row, tid in zip(c["watch"], watch):
        assert row["id"] == tid and row["cosine"] == pytest.approx(cos[tid], abs=1e-5)
        assert abs(row["rank"] - (int((cos > cos[tid]).sum()) + 1)) <= 2
    assert c["p05"] == pytest.approx(np.percentile(cos, 5), abs=1e-5)
    assert c["p95"] == pytest.approx(np.percentile(cos, 95), abs=1e-5) and c["vocab"] == trace.config.vocab_size


def test_lens_rows_answer_rank(smollm2, default_trace):
    """facts.prediction's answer_rank: 1 at the last layer, 1 exactly where the top token is the
    answer, and first_layer_within finds the first layer at or under each bound."""
    from facts.prediction import first_layer_within, lens_rows

    rows = lens_rows(default_trace, MODEL)
    answer = int(default_trace["logits"][-1].argmax())
    assert rows[-1]["answer_rank"] == 1
    for r in rows:
        assert (r["answer_rank"] == 1) == (r["top"][0]["id"] == answer), r
        assert r["answer_rank"] > 3 or r["top"][r["answer_rank"] - 1]["id"] == answer, r
    for bound in (1, 3, 10):
        first = first_layer_within(rows, bound)
        assert all(r["answer_rank"] > bound for r in rows[:first]) and rows[first]["answer_rank"] <= bound
    assert first_layer_within(rows, 0) is None
