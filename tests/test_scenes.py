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
# Every script at once, in the light theme: Chinese/Japanese, an emoji (its bytes split across
# tokens), Hebrew (right to left), accents, digits, quotes, Pango markup and Typst syntax.
MIXED_PROMPT = '東京 🍣 שלום Café <b>&amp;</b> "naïve" 3.14159 #set $x$'


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
    if name not in PROMPT_SCENES:  # drawn without the prompt: why the layout corpus can skip it
        from manim import Text

        drawn = " ".join(m.text for m in scene.seen.values() if isinstance(m, Text) and m is not scene.provenance.text)
        assert not [w for w in ("fluffy", "creature", "roamed", "verdant", "forest") if w in drawn], drawn
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


def _and_list(items: list[str]) -> str:
    """Scenes a (overview ... orthogonality) list names for the ear: "x", "x and y", "x, y and z"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def captions_overview(scene, trace):
    from scene_helpers import expect_spoken_percent as pct, expect_spoken_token as tok

    p = trace["logits"][-1].double().softmax(-1)
    top = p.topk(2)
    first, second = pieces_of(top.indices)
    text = caption_with(scene, "Its favourite is")
    assert (f"Its favourite is {tok(first)}, at {pct(top.values[0])}. "
            f"Next comes {tok(second)}, at {pct(top.values[1])}.") in text, text
    assert f"cut into {expect_int(len(trace.tokens))} small pieces, called tokens." in caption_with(scene, "cut into")
    cfg = trace.config
    assert f"a stack of {expect_int(cfg.n_layers)} layers" in caption_with(scene, "a stack of")
    text = caption_with(scene, "each token is a list of")
    assert f"each token is a list of {expect_int(cfg.d_model)} numbers." in text, text
    assert f"The model has {_spoken_count(parameter_count('smollm2-135m'))} learned parameters" in text, text
    assert f"each of the {expect_int(cfg.vocab_size)} tokens it knows." in caption_with(scene, "Out of the top")
    drawn = scene.data.samples[0]["chosen"]["id"]  # the first draw is from the prompt's own distribution
    text = caption_with(scene, "It draws")
    assert text.startswith(f"It draws {tok(pieces_of([drawn])[0])}"), text
    assert pct(p[drawn]) in text, text


def captions_attention_pattern(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    L, H, score, q, keys, scores = story_scores(trace)
    pattern, pieces, d_head = scores.softmax(0), trace.pieces, trace.config.d_head
    assert f"Head {H} of layer {L} compares tokens in a grid." in caption_with(scene, "compares tokens")
    qk = scores * math.sqrt(d_head)
    k = int(qk.argmax())
    partner = tok(pieces[k]) + (" itself" if k == q else "")
    text = caption_with(scene, "largest product")
    assert f"In the column of {tok(pieces[q])}, the largest product is with {partner}: {num(qk[k])}." in text, text
    text = caption_with(scene, "divided by")
    assert f"divided by {num(math.sqrt(d_head))}: the square root of {d_head}," in text, text
    shares = [f"{pct(pattern[k])} to {tok(pieces[k])}" for k in keys]
    shares[0] = shares[0].replace(" to ", " of its attention to ", 1)
    text = caption_with(scene, "of its attention")
    assert f"{tok(pieces[q])} gives {_and_list(shares)}" in text, text
    if len(keys) > 1:
        assert f"{pct(score)} in all" in text and ("only" in text) == (score < 0.25), (text, score)
    assert abs(float(pattern[list(keys)].sum()) - score) < 1e-6


def captions_softmax(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    L, H, score, q, keys, scores = story_scores(trace)
    weights = scores.softmax(0)
    k = int(weights.argmax())
    best = tok(trace.pieces[k])
    text = caption_with(scene, "Softmax turns any list")
    assert f"the {q + 1} scores in the column of {tok(trace.pieces[q])}, from head {H} of layer {L}." in text, text
    text = caption_with(scene, "their total")
    assert f"their total, here {num(scores.exp().sum())}." in text, text
    text = caption_with(scene, "of the weight")
    assert f"{best} scored {num(scores[k])}, and gets {pct(weights[k])} of the weight." in text, text
    at = {T: pct((scores / T).softmax(0)[k]) for T in (0.5, 1.0, 2.0)}
    assert at[0.5] != at[1.0] != at[2.0]  # the default prompt's story: both changes audible
    text = caption_with(scene, "sharpens")
    assert f"{best} goes from {at[1.0]} to {at[0.5]}." in text, text
    text = caption_with(scene, "flattens")
    assert f"{best} drops to {at[2.0]}, and the others gain." in text, text


def captions_qkv(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_token as tok

    L, H, score, q, keys, scores = story_scores(trace)
    cfg, pieces, n = trace.config, trace.pieces, len(trace.tokens)
    per = cfg.n_heads // cfg.n_kv_heads
    text = caption_with(scene, "Take head")
    assert f"Take head {H} of layer {L}, and the token {tok(pieces[q])}." in text, text
    assert f"That takes {cfg.d_model} numbers down to {cfg.d_head}." in text, text
    first = float(trace[f"blocks.{L}.attn.hook_rot_q"][q, H, 0])  # the query after RoPE (a rotary model)
    assert f"the query of {tok(pieces[q])}: {cfg.d_head} numbers, starting with {num(first)}." in \
        caption_with(scene, "The result is"), caption_with(scene, "The result is")
    pattern = trace[f"blocks.{L}.attn.hook_pattern"][H, q]
    key = max(keys, key=lambda k: float(pattern[k]))
    assert f"Here is the key of {tok(pieces[key])}:" in caption_with(scene, "Here is the key of")
    assert f"That gives {n} queries and {n} keys, of {cfg.d_head} numbers each." in caption_with(scene, "That gives")
    text = caption_with(scene, "share one key head")
    assert f"{per} query heads share one key head. Head {H} reads key head {H // per}." in text, text
    qk = scores * math.sqrt(cfg.d_head)
    products = _and_list([f"{tok(pieces[k])} gets {num(qk[k])}" for k in keys])
    text = caption_with(scene, "The further along the query")
    assert f"Here {products}." in text, text


def captions_masking(scene, trace):
    from scene_helpers import expect_spoken_count, expect_spoken_percent as pct, expect_spoken_token as tok

    L, H, score, q, keys, scores = story_scores(trace)
    n, ctx = len(trace.tokens), trace.config.n_ctx
    probs = trace["logits"].double().softmax(-1)
    nxt = [float(probs[i, trace.tokens[i + 1]]) for i in range(n - 1)]  # the default prompt's strip shows every token
    i = max(range(n - 1), key=lambda i: nxt[i])
    chance = "almost no chance" if pct(nxt[i]) == "almost 0%" else f"a chance of {pct(nxt[i])}"
    text = caption_with(scene, "For example")
    assert f"after {tok(trace.pieces[i])} the model gave {tok(trace.pieces[i + 1])} {chance}." in text, text
    assert f"Here is the grid of head {H} in layer {L}." in caption_with(scene, "Here is the grid")
    text = caption_with(scene, "square of the length")
    assert f"{expect_int(n)} tokens make {expect_int(n * n)} cells, and {expect_int(n * (n + 1) // 2)} of them" in text, text
    text = caption_with(scene, "full context")
    assert f"full context of {expect_int(ctx)} tokens, that is {expect_spoken_count(ctx * ctx)} cells," in text, text
    assert f"Just over half of them, {expect_spoken_count(ctx * (ctx + 1) // 2)}, are left" in text, text


def captions_values(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    L, H, score, q, keys, scores = story_scores(trace)
    cfg, pieces, n = trace.config, trace.pieces, len(trace.tokens)
    weights = scores.softmax(0)
    assert f"{n} value vectors of {cfg.d_head} numbers each." in caption_with(scene, "value vectors")
    top = sorted(int(k) for k in weights.argsort(descending=True)[:3])
    shares = [f"{pct(weights[k])} of {tok(pieces[k])}" for k in top]
    shares[0] = shares[0].replace(" of ", " of the value of ", 1)
    rest = q + 1 - len(top)
    more = "" if not rest else ", plus one smaller term" if rest == 1 else f", plus {rest} smaller terms"
    text = caption_with(scene, "Here that is")
    assert f"Here that is {_and_list(shares)}{more}." in text, text
    e, d, new = (float(trace[f"blocks.{L}.{h}"][q, 0]) for h in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid"))
    sign = "minus" if d < 0 else "plus"
    text = caption_with(scene, "In the first entry")
    assert f"In the first entry, {num(e)} {sign} {num(abs(d))} makes {num(new)}." in text, text
    assert f"sums all {cfg.n_heads} heads of layer {L}, not just head {H}." in caption_with(scene, "not just head")
    assert f"All {n} tokens get their own weighted sum" in caption_with(scene, "their own weighted sum")


def captions_multi_head(scene, trace):
    from attention_truth import _weight
    from scene_helpers import expect_spoken_count, expect_spoken_number as num, expect_spoken_token as tok

    L, H, score, q, keys, scores = story_scores(trace)
    cfg, pieces = trace.config, trace.pieces
    text = caption_with(scene, "heads side by side")
    assert f"Layer {L} runs {cfg.n_heads} heads side by side." in text, text
    linked = _and_list([tok(pieces[k]) for k in keys if k != q])
    assert f"Head {H}, outlined, is the one that links {tok(pieces[q])} to {linked}." in caption_with(scene, "outlined")
    norms = [float(trace[f"blocks.{L}.attn.hook_result"][q, h].norm()) for h in range(cfg.n_heads)]
    big = max(range(cfg.n_heads), key=lambda h: norms[h])
    assert big != H  # the default prompt: another head's change is larger
    text = caption_with(scene, "proposes the largest change")
    assert f"Head {big} proposes the largest change, of length {num(norms[big])}." in text, text
    assert f"Head {H}, our story head, proposes one of length {num(norms[H])}." in text, text
    W = {w: _weight(scene, L, w).numel() for w in ("W_Q", "W_K", "W_V", "W_O")}
    text = caption_with(scene, "works with")
    assert f"Each of the {cfg.n_heads} heads works with {cfg.d_head} numbers." in text, text
    assert f"matrices hold {expect_int((W['W_Q'] + W['W_O']) // cfg.n_heads)} parameters." in text, text
    text = caption_with(scene, "To save memory")
    assert (f"{cfg.n_heads // cfg.n_kv_heads} query heads share one set of keys and values. So there are only "
            f"{cfg.n_kv_heads} key and value heads for {cfg.n_heads} query heads.") in text, text
    assert f"Each key and value head holds {expect_int((W['W_K'] + W['W_V']) // cfg.n_kv_heads)} parameters." in text
    everything = sum(sum(_weight(scene, layer, w).numel() for w in W) for layer in range(cfg.n_layers))
    text = caption_with(scene, "attention holds")
    assert f"In layer {L}, attention holds {expect_int(sum(W.values()))} parameters in all." in text, text
    assert f"Across all {cfg.n_layers} layers, that makes {expect_spoken_count(everything)}." in text, text


def _spoken_count(n) -> str:
    """Narration's big counts: tests/scene_helpers.expect_spoken_count (one rule for every scene)."""
    from scene_helpers import expect_spoken_count

    return expect_spoken_count(n)


def captions_prediction(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    logits = trace["logits"][-1].double()
    top = logits.topk(2)
    first, second = pieces_of(top.indices)
    text = caption_with(scene, "The highest is")
    assert f"The highest is {tok(first)}, at {num(top.values[0])}." in text, text
    assert f"is {tok(second)}, at {num(top.values[1])}." in text, text
    quotes(scene, "That makes", expect_int(trace.config.vocab_size))
    i = int(top.indices[0])
    text = caption_with(scene, "at T = 0.5")
    assert text.startswith(tok(first)), text
    for t in (0.5, 1, 2):
        assert f"{pct((logits / t).softmax(-1)[i])} at T = {t:g}" in text, (text, t)
    from story_truth import _temperature_run

    runs = {t: _temperature_run("smollm2-135m", tuple(trace.tokens), float(t), 8, 0) for t in (0, 0.5, 1, 2)}
    for t, (drawn, top_picks, _) in runs.items():
        (text,) = [c for c in scene.captions if c.startswith(f"At T = {t:g}, ") and "top pick" in c]
        m = sum(top_picks)
        picks = "every token is" if m == 8 else "none of the tokens is" if m == 0 else f"{m} of 8 tokens are"
        said = " ".join("".join(pieces_of(drawn)).split())
        assert text == f"At T = {t:g}, {picks} the top pick: “{said}”.", (text, t)
    assert [sum(r[1]) for r in runs.values()] == [8, 6, 4, 0]  # the default prompt: fewer top picks the hotter
    long_shots = sum(p < 0.01 for p in runs[2][2])
    assert long_shots == 8
    assert "At T = 2, all 8 draws had under 1% chance each." in caption_with(scene, "High temperature is chaotic")


def captions_mlp(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    L, _, _, q, _ = story_head(trace)
    assert (scene.layer, scene.pos) == (L, q)
    post = trace[f"blocks.{L}.mlp.hook_post"][q].double()
    n = int(post.abs().argmax())
    text = caption_with(scene, "strongest is neuron")
    assert f"for {tok(trace.pieces[q])}?" in text and f"neuron {n}, at {num(post[n])}." in text, text
    gate, up = (trace[f"blocks.{L}.mlp.{h}"][q, n].double() for h in ("hook_pre", "hook_pre_linear"))
    assert abs(float(torch.nn.functional.silu(gate) * up - post[n])) < 1e-4  # the worked example is the real neuron
    text = caption_with(scene, "strongest neuron for this token")
    assert f"number {n}: its gate value {num(gate)} and up value {num(up)} give {num(post[n])}." in text, text
    quiet = int((post.abs() < 0.05 * post.abs().max()).sum())
    d_mlp = trace.config.d_mlp
    assert quiet > d_mlp / 2  # "Most stay quiet"
    quotes(scene, "to a row", expect_int(d_mlp))
    text = caption_with(scene, "Most stay quiet")
    assert f"{_spoken_count(quiet)} of them, or {pct(quiet / d_mlp)}, are below 5% of the strongest" in text, text
    from story_truth import _param_counts

    counts = _param_counts("smollm2-135m")
    text = caption_with(scene, "Where are the model's parameters")
    assert f"attention has {_spoken_count(counts['attention'])}, and the MLP has {_spoken_count(counts['mlp'])}." in text, text
    text = caption_with(scene, "sit in the MLP")
    assert text.startswith(f"So {pct(counts['mlp'] / (counts['mlp'] + counts['attention']))} of"), text
    cfg = trace.config
    from scene_helpers import expect_spoken_count

    assert f"Over all {cfg.n_layers} layers, the MLPs hold {expect_spoken_count(cfg.n_layers * counts['mlp'])} " in text, text
    total = expect_spoken_count(parameter_count("smollm2-135m")).removeprefix("about ")
    assert f"of the model's {total}." in text, text
    from story_truth import _pushes, _row_scores

    top5 = _row_scores("smollm2-135m", L, n).topk(5).indices  # what neuron n's row writes toward
    text = caption_with(scene, "gain the most")
    blank = lambda x: "a space" if x.startswith(" ") else "a newline" if x.startswith("\n") else "a blank piece"  # noqa: E731
    said = [tok(x) if x.strip() else blank(x) for x in pieces_of(top5)]
    assert f"These tokens gain the most: {_and_list(said)}." in text, text
    assert post[n] < 0  # the default prompt's strongest neuron is negative here: said so
    text = caption_with(scene, "the neuron's value is negative")
    assert f"is negative, {num(post[n])}. So for {tok(trace.pieces[q])}, it pushes these tokens down" in text, text
    assert "All are punctuation or spaces." in caption_with(scene, "punctuation")  # - . , ( and a space
    pushes = _pushes("smollm2-135m", trace)
    answer = int(trace["logits"][-1].argmax())
    logit = float(trace["logits"][-1, answer])
    text = caption_with(scene, "top guess is")
    assert f"the model's top guess is {tok(pieces_of([answer])[0])}, with a logit of {num(logit)}." in text, text
    parts = sorted(((v, k) for k, v in pushes.items() if k != "embed"), reverse=True)
    name = lambda k: f"the MLP of layer {k[1]}" if k[0] == "mlp" else f"attention in layer {k[1]}"  # noqa: E731
    (v, k), second, third = parts[:3]
    assert 0.3 <= v / logit < 0.5  # the default prompt: the biggest push, not most of it
    text = caption_with(scene, "The biggest push")
    assert f"The biggest push comes from {name(k)}: {num(v)} of the {num(logit)}." in text, text
    assert f"Next come {name(second[1])}, with {num(second[0])}, and {name(third[1])}, with {num(third[0])}." in text, text
    v, k = parts[-1]
    text = caption_with(scene, "pushes the other way")
    assert text == f"The MLP of layer {k[1]} pushes the other way, by {num(-v)}." and k[0] == "mlp", text
    mlp, attn = (sum(v for k, v in pushes.items() if k != "embed" and k[0] == kind) for kind in ("mlp", "attention"))
    text = caption_with(scene, "In all, the MLPs add")
    assert f"In all, the MLPs add {num(mlp)} and attention {num(attn)}: here the MLPs add more" in text, text


def captions_cost(scene, trace):
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    lp = trace["logits"][:-1].double().log_softmax(-1)
    nxt = trace.tokens[1:]
    cost = torch.stack([-lp[i, t] for i, t in enumerate(nxt)])
    lo, hi = int(cost.argmin()), int(cost.argmax())
    for anchor, i in (("The least surprising", lo), ("The most surprising", hi)):
        text = caption_with(scene, anchor)
        said = (f"{tok(trace.pieces[i + 1])} after {tok(trace.pieces[i])}, "
                f"with {pct(math.exp(-cost[i]))}, a cost of {num(cost[i])}.")
        assert said in text, (text, said)
    text = caption_with(scene, "the mean cost is")
    mean = float(cost.mean())
    typical = pct(math.exp(-mean))
    typical = typical if typical.startswith(("under", "almost")) else f"about {typical}"
    assert f"the mean cost is {num(mean)}." in text and f"right token {typical} each time." in text, text
    quotes(scene, "This text has", str(len(nxt)))
    quotes(scene, "curve over the", str(len(nxt)))


def captions_layers(scene, trace):
    from scene_helpers import expect_spoken_percent as pct, expect_spoken_token as tok

    net = loaded("smollm2-135m").model
    W_U = net.weight("unembed.W_U").detach().double()
    final = int(trace["logits"][-1].argmax())
    n = trace.config.n_layers
    with torch.no_grad():
        lens = [(net.ln_final(trace[f"blocks.{layer}.hook_resid_post"][-1:])[0].double() @ W_U).softmax(-1)
                for layer in range(n)]
    tops = [int(p.argmax()) for p in lens]
    settled = next(layer for layer in range(n) if all(t == final for t in tops[layer:]))
    quotes(scene, "each of its", str(n))
    text = caption_with(scene, "After layer 0")
    assert f"it would say {tok(pieces_of([tops[0]])[0])}, with {pct(lens[0][tops[0]])}." in text, text
    answer = tok(pieces_of([final])[0])
    p_final = float(trace["logits"][-1].double().softmax(-1)[final])
    text = caption_with(scene, "real answer")
    assert 0 < settled < n - 1  # the default prompt's answer settles mid-stack
    assert f"From layer {settled} on, the top token stays {answer}." in text, text
    assert f"with {pct(p_final)} at the end" in text and ("far from sure" in text) == (p_final < 0.2), text
    assert f"the probability of {answer} after each layer" in caption_with(scene, "same story as a curve")
    text = caption_with(scene, "after layer 0,")
    m = n // 2
    assert (f"It is {pct(lens[0][final])} after layer 0, {pct(lens[m][final])} after layer {m}, "
            f"and {pct(lens[-1][final])} after layer {n - 1}.") == text, text


def captions_kv_cache(scene, trace):
    cfg = trace.config
    c = scene.data.kv_counts  # the counts themselves are checked on screen (check_shown); here, how they are said
    assert c["tokens"] == len(trace.tokens) and c["full"] > c["cached"] > 0
    text = caption_with(scene, "The price is memory")
    assert f"keeps {_spoken_count(2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head)} numbers for every token" in text, text
    assert f"each of its {cfg.n_layers} layers and {cfg.n_kv_heads} key-value heads." in text, text
    assert f"all {len(trace.tokens) - 1} earlier tokens" in caption_with(scene, "That is the cache")
    assert f"these {len(trace.tokens)} tokens" in caption_with(scene, "How much work")
    assert f"costs {_spoken_count(c['full'])} multiply-adds." in caption_with(scene, "Recomputing everything")
    from scene_helpers import expect_spoken_number as num

    ratio = c["full"] / c["cached"]
    said = ("" if abs(ratio - round(ratio)) < 0.01 else "about ") + f"{num(ratio)} times less."
    assert f"it costs {_spoken_count(c['cached'])}: {said}" in caption_with(scene, "With the cache"), said


def captions_word_vectors(scene, trace):
    from scene_helpers import _top_cosines, embeddings
    from scene_helpers import expect_spoken_number as num, expect_spoken_percent as pct, expect_spoken_token as tok

    p = projection("smollm2-135m", tuple(map(tuple, scene.data.analogies)))
    assert f"keeps {pct(sum(p['explained']))} of their spread." in caption_with(scene, "called PCA")
    text = caption_with(scene, "their cosines with")
    assert f"their cosines with that arrow are {_and_list([num(c) for c in p['cosines']])}." in text, (text, p["cosines"])
    W_E, enc = embeddings("smollm2-135m"), loaded("smollm2-135m").encoding
    a, b, c = (enc.encode(" " + w)[0] for w in ("king", "man", "woman"))
    v = W_E[a].double() - W_E[b].double() + W_E[c].double()
    term = lambda x: f"{'minus' if x < 0 else 'plus'} {num(abs(x))}"  # noqa: E731
    assert (f"The first entry: {num(W_E[a, 0])} {term(-W_E[b, 0])} {term(W_E[c, 0])} makes {num(v[0])}."
            in caption_with(scene, "Subtract")), caption_with(scene, "Subtract")
    values, _ = _top_cosines(W_E, W_E[a] - W_E[b] + W_E[c], [a, b, c])
    answer = p["pieces"][3]  # b, c, a, then the first analogy's answer
    assert (f"it is {tok(answer)}, with cosine {num(values[0])}."
            in caption_with(scene, "points most nearly the same way")), caption_with(scene, "points most nearly")
    from scene_helpers import random_pairs

    r = random_pairs("smollm2-135m")  # the chance baseline, from W_E
    text = caption_with(scene, "For scale")
    assert (f"two random words already have cosine {num(r['mean_abs'])} on average, "
            f"and one pair in twenty goes above {num(r['p95_abs'])}." in text), text
    top = float(values[0])
    verdict = ("no better than two random words" if top <= r["mean_abs"] else "within what random words reach"
               if top <= r["p95_abs"] else "only a little above chance: a weak match"
               if top < 2 * r["p95_abs"] - r["mean_abs"] else "far above chance: a strong match")
    assert f"So {num(top)} is {verdict}" in text, (text, top, r)


def captions_tokens(scene, trace):
    from scene_helpers import expect_spoken_percent as pct, expect_spoken_token as tok

    n, chars, vocab = len(trace.tokens), len(trace.prompt), trace.config.vocab_size
    assert f"Our prompt is {expect_int(chars)} characters of plain text." in caption_with(scene, "Our prompt is")
    assert f"The tokenizer cuts it into {expect_int(n)} tokens." in caption_with(scene, "cuts it into")
    words = []  # a word starts at the first token and at every token that starts with a space
    for piece in trace.pieces:
        if not words or piece.startswith(" "):
            words.append([])
        words[-1].append(piece)
    (split,) = [w for w in words if len(w) > 1]  # the default prompt splits one word: " verdant"
    assert (f"“{''.join(split).strip()}” becomes {len(split)} tokens, {_and_list([tok(x) for x in split])}."
            in caption_with(scene, "splits into pieces")), caption_with(scene, "splits into pieces")
    L, H, score, q, keys = story_head(trace)
    assert f"Here, {tok(trace.pieces[q])} is token {trace.tokens[q]}." in caption_with(scene, "is token")
    assert f"knows {expect_int(vocab)} tokens. So every token number is a whole number below {expect_int(vocab)}." in \
        caption_with(scene, "The tokenizer knows")
    assert f"that is {chars} times {chars}: {expect_int(chars * chars)} cells." in caption_with(scene, "in characters")
    assert f"it is {n} times {n}: {expect_int(n * n)} cells." in caption_with(scene, "in tokens")
    text = caption_with(scene, "real attention weights")
    assert f"from layer {L}, head {H}. {tok(trace.pieces[q])} gives {pct(score)} of its attention to " \
           f"{_and_list([tok(trace.pieces[k]) for k in keys])}." in text, text


def captions_embeddings(scene, trace):
    from scene_helpers import _top_cosines, embeddings
    from scene_helpers import expect_spoken_number as num, expect_spoken_token as tok

    cfg, n = trace.config, len(trace.tokens)
    W_E = embeddings("smollm2-135m")
    _, _, _, q, _ = story_head(trace)
    tid = trace.tokens[q]
    assert f"embedding matrix: {expect_int(cfg.vocab_size)} rows of {cfg.d_model} numbers." in \
        caption_with(scene, "embedding matrix")
    assert f"Our token, {tok(trace.pieces[q])}, is token number {tid}. So it takes row {tid}." in \
        caption_with(scene, "Our token")
    assert f"It starts with {num(W_E[tid, 0])}, then {num(W_E[tid, 1])}." in caption_with(scene, "It starts with")
    assert f"{n} tokens become {n} columns of {cfg.d_model} numbers each." in caption_with(scene, "columns of")
    angles = [m.shown for m in scene.seen.values() if getattr(getattr(m, "shown", None), "source", None) == "rope.angle"]
    (pos, i), = {s.index for s in angles}
    assert pos == q
    angle = q * cfg.rope_base ** (-2 * i / cfg.d_head)
    text = caption_with(scene, "the pair turns by")
    assert f"At position {q}, the pair turns by {num(angle)} radians." in text, text
    assert (angle < 2 * math.pi) == (f"That is {num(math.degrees(angle) % 360)} degrees around the circle." in text), text
    values, ids = _top_cosines(W_E, W_E[tid], [tid])
    near = [tok(x) for x in pieces_of(ids)]
    text = caption_with(scene, "the closest to")
    assert f"the closest to {tok(trace.pieces[q])} is {near[0]}, with cosine {num(values[0])}." in text, text
    assert f"Then come {_and_list(near[1:])}, down to {num(values[-1])}." in text, text


def captions_orthogonality(scene, trace):
    from facts.geometry import TOLERANCE_DEG, experiment
    from scene_helpers import expect_spoken_number as num

    d = trace.config.d_model
    dims = sorted({x for x in (8, 16, 32, 64, 128, 256, 384, 448) if x < d} | {d})  # up to the model's width
    rows = experiment(tuple(dims), TOLERANCE_DEG, scene.params.seed)  # the measurement itself
    e2 = math.sin(math.radians(TOLERANCE_DEG)) ** 2
    welch = lambda d: int(d * (1 - e2) / (1 - d * e2))  # noqa: E731  (finite for d < 1 / e2)
    d, last = trace.config.d_model, rows[-1]
    assert f"every pair between {90 - TOLERANCE_DEG:g} and {90 + TOLERANCE_DEG:g} degrees." in \
        caption_with(scene, "slack: every pair")
    match = re.search(r"Up to (\d+) dimensions, the slack buys (nothing|little): (\d+) directions in (\d+) dimensions\.",
                      caption_with(scene, "the slack buys"))
    dim, gain, count = int(match[1]), match[2], int(match[3])
    k = [r["dim"] for r in rows].index(dim)
    assert rows[k]["count"] == count and count <= dim * 1.05 and (gain == "nothing") == (count <= dim)
    assert rows[k + 1]["count"] > rows[k + 1]["dim"] * 1.05  # the next measurement gains
    first = next(r for r in rows if r["count"] >= 1.5 * r["dim"])  # where the slack starts to pay
    text = caption_with(scene, "The gain builds slowly")
    assert (f"The count first passes one and a half times N at {first['dim']} dimensions, "
            f"with {expect_int(first['count'])} directions." in text), text
    assert (f"At {d} dimensions, {expect_int(last['count'])} fit: {num(last['count'] / d)} times as many directions "
            "as dimensions." in text), text
    assert all(r["count"] <= r["welch_bound"] for r in rows) and "stay below it" in caption_with(scene, "Welch bound")
    assert f"dimensions, the last width measured. There, the bound allows up to {expect_int(welch(d))}." in \
        caption_with(scene, "the last width measured")
    assert (f"There, {expect_int(last['count'])} nearly perpendicular directions fit: {num(last['count'] / d)} times "
            "as many as dimensions." in caption_with(scene, "The experiment went up to this width"))
    text = caption_with(scene, "theory allows at most")
    assert f"theory allows at most {expect_int(welch(d))} directions within {TOLERANCE_DEG:g} degrees" in text, text
    assert f"That is only {num((1 - e2) / (1 - d * e2))} times N." in text, text  # the bound over N
    assert f"this cap only disappears past {expect_int(math.floor(1 / e2))} dimensions." in text, text


CAPTIONS = {"overview": captions_overview, "attention-pattern": captions_attention_pattern, "softmax": captions_softmax,
            "prediction": captions_prediction, "mlp": captions_mlp, "cost": captions_cost, "layers": captions_layers,
            "word-vectors": captions_word_vectors, "kv-cache": captions_kv_cache}
CAPTIONS.update({"tokens": captions_tokens, "embeddings": captions_embeddings, "orthogonality": captions_orthogonality})
CAPTIONS.update({"qkv": captions_qkv, "masking": captions_masking, "values": captions_values,
                 "multi-head": captions_multi_head})


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


# The scenes that draw anything of the prompt (orthogonality and word-vectors show the model's
# geometry only: their layout is checked on the default prompt by test_default_prompt_scene)
PROMPT_SCENES = [n for n in ALL if n not in ("orthogonality", "word-vectors")]


@pytest.mark.parametrize("prompt", ["a", MIXED_PROMPT, LONG_PROMPT], ids=["shortest", "scripts", "longest"])  # "a": one narrow token (a grid at the frame edge)
@pytest.mark.parametrize("name", PROMPT_SCENES)
def test_layout_fits_the_frame(name, prompt):
    """Nothing collides or leaves the frame on any beat (scene.layout_problems), for the shortest
    prompt, one mixing scripts (built in the light theme), and one at the 256-token limit."""
    trace = get_trace(prompt)
    assert len(trace.tokens) <= 256
    scene = build(name, MT_PROMPT=prompt, **({"MT_THEME": "light"} if prompt == MIXED_PROMPT else {}))
    assert scene.layout_problems == []
    check_shown(scene)
    assert_cues_readable(scene)


def assert_cues_readable(scene) -> None:
    """Every caption cue of a (silent) build: two lines of at most 42 characters, at reading pace,
    in order, inside its beat."""
    from narration_checks import SILENT_CPS, cue_problems
    from pipeline.captions import Cue

    cues = [Cue(c["start"], c["end"], c["text"]) for c in scene.cues]
    assert cues and cue_problems(cues, cps_limit=SILENT_CPS) == []
    starts = scene.beat_starts + [float("inf")]
    for c in scene.cues:
        beat = scene.beats.index(c["beat"])
        assert starts[beat] - 1e-6 <= c["start"] and c["end"] <= starts[beat + 1] + 1e-6, c


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
