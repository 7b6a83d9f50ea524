"""Scenes built without video: what they show equals the trace; layout; escaping; head choice; CLI basics."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from scene_helpers import (_fixed, build, check_shown, expect_decimals, expect_int, expect_number,  # noqa: E402
                           expect_percent, loaded, parameter_count, projection, story_head)

from facts.attention import choose_head, word_spans  # noqa: E402
from model.trace import get_trace  # noqa: E402
from scenes.parts.params import DEFAULT_PROMPT, Params, parse_analogy, parse_choice
from scenes.registry import SCENES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ALL = list(SCENES)
LONG_PROMPT = " ".join(["The fluffy blue creature roamed the verdant forest, and"] * 21) + " the end"


@pytest.mark.parametrize("name", ALL)
def test_default_prompt_scene(name):
    """Every shown value equals its source; every beat is a section with a caption; nothing off-frame;
    the numbers the captions quote equal the trace (for the scenes in CAPTIONS)."""
    scene = build(name)
    assert check_shown(scene) >= 10
    assert scene.sections_run == list(scene.beats)
    assert all(scene.beat_captions[b] >= 1 for b in scene.beats), scene.beat_captions
    assert scene.layout_problems == []
    trace = get_trace(DEFAULT_PROMPT)
    tag = scene.provenance.text.text
    L, H, _, _, _ = story_head(trace)
    assert f"layer{L}head{H}" in tag and trace.hash[:8] in tag
    if name in CAPTIONS:
        CAPTIONS[name](scene, trace)


# --------------------------------------------------------------------------- caption numbers, against the trace

CAPTION_NUMBER = re.compile(r"<?[+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?")


def caption_with(scene, anchor: str) -> str:
    found = [c for c in scene.captions if anchor in c]
    assert found, f"no caption with {anchor!r}: {scene.captions}"
    return found[0]


def numbers_in(scene, anchor: str) -> list[str]:
    """The numbers, as written, in the first caption containing `anchor`."""
    return CAPTION_NUMBER.findall(caption_with(scene, anchor))


def quotes(scene, anchor: str, *expected: str) -> None:
    numbers = numbers_in(scene, anchor)
    for text in expected:
        assert text in numbers, f"caption {caption_with(scene, anchor)!r} should quote {text} (it has {numbers})"


def pieces_of(ids) -> list[str]:
    from model.tokenizer import token_pieces

    return token_pieces(loaded("smollm2-135m").encoding, [int(i) for i in ids])


def story_scores(trace):
    from attention_truth import _scores

    L, H, score, q, keys = story_head(trace)
    return L, H, score, q, keys, _scores(trace, L, H, q).double()


def captions_overview(scene, trace):
    p = trace["logits"][-1].double().softmax(-1)
    top = p.topk(2)
    first, second = pieces_of(top.indices)
    quotes(scene, "favourite", expect_percent(top.values[0]), expect_percent(top.values[1]))
    assert repr(first) in caption_with(scene, "favourite") and repr(second) in caption_with(scene, "favourite")
    quotes(scene, "cut into", str(len(trace.tokens)))
    cfg = trace.config
    quotes(scene, "layers", expect_int(cfg.n_layers), expect_int(cfg.d_model), expect_int(parameter_count("smollm2-135m")))
    quotes(scene, "every one of the", expect_int(cfg.vocab_size))


def captions_attention_pattern(scene, trace):
    L, H, score, q, keys, scores = story_scores(trace)
    pattern = scores.softmax(0)
    numbers = numbers_in(scene, "of its attention")
    assert numbers[-1] == expect_decimals(score), (numbers, score)  # the story head's score
    shares = [float(n) for n in numbers[:-1]]  # each key word's share, adding up to the score
    assert shares and abs(sum(shares) - score) <= 0.005 * len(shares) + 1e-9, (shares, score)
    assert abs(float(pattern[list(keys)].sum()) - score) < 1e-6
    qk = scores * math.sqrt(trace.config.d_head)
    k = int(qk.argmax())
    quotes(scene, "largest product", expect_number(qk[k], 1))
    assert repr(trace.pieces[k]) in caption_with(scene, "largest product")
    quotes(scene, "divided by", str(trace.config.d_head), expect_decimals(math.sqrt(trace.config.d_head)))


def captions_softmax(scene, trace):
    L, H, score, q, keys, scores = story_scores(trace)
    weights = scores.softmax(0)
    k = int(weights.argmax())
    quotes(scene, "their total", expect_decimals(scores.exp().sum()))
    quotes(scene, "of the weight", expect_number(scores[k]), expect_decimals(weights[k]))
    assert repr(trace.pieces[k]) in caption_with(scene, "of the weight")
    quotes(scene, "sharpens", expect_decimals(weights[k]), expect_decimals((scores / 0.5).softmax(0)[k]))
    quotes(scene, "flattens", expect_decimals((scores / 2).softmax(0)[k]))


def captions_prediction(scene, trace):
    logits = trace["logits"][-1].double()
    top = logits.topk(2)
    quotes(scene, "The highest", expect_number(top.values[0]), expect_number(top.values[1]))
    assert all(repr(p) in caption_with(scene, "The highest") for p in pieces_of(top.indices))
    i = int(top.indices[0])
    quotes(scene, "at T = 0.5", *(expect_percent((logits / t).softmax(-1)[i]) for t in (0.5, 1, 2)))


def captions_mlp(scene, trace):
    L, _, _, q, _ = story_head(trace)
    assert (scene.layer, scene.pos) == (L, q)
    post = trace[f"blocks.{L}.mlp.hook_post"][q].double()
    n = int(post.abs().argmax())
    quotes(scene, "strongest is neuron", str(n), expect_number(post[n]))
    quiet = int((post.abs() < 0.05 * post.abs().max()).sum())
    d_mlp = trace.config.d_mlp
    numbers = [x.replace(",", "") for x in numbers_in(scene, "stay quiet")]
    assert str(quiet) in numbers and str(d_mlp) in numbers and _fixed(100 * quiet / d_mlp, 0) + "%" in numbers, numbers
    from story_truth import _param_counts

    counts = _param_counts("smollm2-135m")
    quotes(scene, "Where the parameters are", expect_int(counts["attention"]), expect_int(counts["mlp"]))
    quotes(scene, "sit in the MLP", _fixed(100 * counts["mlp"] / (counts["mlp"] + counts["attention"]), 0) + "%")


def captions_cost(scene, trace):
    lp = trace["logits"][:-1].double().log_softmax(-1)
    nxt = trace.tokens[1:]
    cost = torch.stack([-lp[i, t] for i, t in enumerate(nxt)])
    lo, hi = int(cost.argmin()), int(cost.argmax())
    text = caption_with(scene, "Least surprising")
    for i in (lo, hi):
        quotes(scene, "Least surprising", expect_percent(math.exp(-cost[i])), expect_decimals(cost[i]))
        assert f"{trace.pieces[i + 1]!r} after {trace.pieces[i]!r}" in text, (text, i)
    quotes(scene, "the mean is", expect_decimals(cost.mean()), expect_percent(math.exp(-cost.mean())))
    quotes(scene, "guesses here", str(len(nxt)))


def captions_layers(scene, trace):
    net = loaded("smollm2-135m").model
    W_U = net.weight("unembed.W_U").detach().double()
    final = int(trace["logits"][-1].argmax())
    n = trace.config.n_layers
    with torch.no_grad():
        lens = [(net.ln_final(trace[f"blocks.{layer}.hook_resid_post"][-1:])[0].double() @ W_U).softmax(-1)
                for layer in range(n)]
    tops = [int(p.argmax()) for p in lens]
    settled = next(layer for layer in range(n) if all(t == final for t in tops[layer:]))
    quotes(scene, "After layer 0", expect_percent(lens[0][tops[0]]))
    assert repr(pieces_of([tops[0]])[0]) in caption_with(scene, "After layer 0")
    p_final = float(trace["logits"][-1].double().softmax(-1)[final])
    quotes(scene, "stays", str(settled), expect_percent(p_final))
    assert repr(pieces_of([final])[0]) in caption_with(scene, "stays")
    quotes(scene, "It goes from", expect_percent(lens[0][final]), expect_percent(lens[-1][final]), str(n - 1))


def captions_word_vectors(scene, trace):
    p = projection("smollm2-135m", tuple(map(tuple, scene.data.analogies)))
    quotes(scene, "PCA", expect_percent(sum(p["explained"])))
    text = caption_with(scene, "their cosines with it are")
    listed = ", ".join(expect_decimals(c) for c in p["cosines"])  # written "0.47, 0.28"
    assert f"are {listed} " in text, (text, p["cosines"])
    answer = p["pieces"][3]  # b, c, a, then the first analogy's answer
    assert repr(answer) in caption_with(scene, "points most nearly the same way")


CAPTIONS = {"overview": captions_overview, "attention-pattern": captions_attention_pattern, "softmax": captions_softmax,
            "prediction": captions_prediction, "mlp": captions_mlp, "cost": captions_cost, "layers": captions_layers,
            "word-vectors": captions_word_vectors}


def test_default_story_head():
    """The chosen head, its query and keys and its score, against the rule recomputed from the trace's patterns."""
    trace = get_trace(DEFAULT_PROMPT)
    choice = choose_head(trace)
    L, H, score, q, keys = story_head(trace)
    assert (choice.layer, choice.head, choice.query, tuple(choice.keys)) == (L, H, q, keys)
    pattern = trace[f"blocks.{L}.attn.hook_pattern"][H, q]
    assert choice.score == pytest.approx(sum(float(pattern[k]) for k in keys), abs=1e-6) == pytest.approx(score, abs=1e-6)
    assert choice.auto and len(keys) >= 2 and 0 not in keys and max(keys) < q


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
