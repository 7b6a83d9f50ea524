"""Build scenes without rendering video, and check what they show against the trace."""

from __future__ import annotations

import atexit
import importlib
import math
import os
import re
import shutil
import tempfile
from decimal import ROUND_HALF_EVEN, Decimal
from contextlib import contextmanager
from functools import lru_cache

import torch

NUMBER = re.compile(r"^[+\-\u2212<]?[\d,]*\.?\d+%?$")

# --------------------------------------------------------------------------- expected on-screen text
# Written here, independently of scenes/parts/theme.py (fmt, fmt_percent, fmt_int, visible_piece):
# a test must not build its expected strings with the code it is testing.

MINUS = "\u2212"  # a real minus sign
VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5", "\r": "\u240d"}


def _fixed(x: float, decimals: int) -> str:
    """|x| with exactly `decimals` decimals, rounded half-to-even on x's exact binary value."""
    exact = Decimal(abs(float(x)))
    return format(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN), "f")


def expect_number(x: float, decimals: int = 2) -> str:
    """Sign column: "+0.12", "−1.50"; a value that shows as zero gets a space, no sign: " 0.00"."""
    x = float(x)
    if math.isinf(x):
        return ("+" if x > 0 else MINUS) + "inf"
    digits = _fixed(x, decimals)
    if digits.strip("0.") == "":
        return " " + digits
    return ("+" if x > 0 else MINUS) + digits


def expect_percent(p: float) -> str:
    """One decimal and a percent sign; 0 < p < 0.0005 (under 0.05%) shows as "<0.1%"."""
    p = float(p)
    if 0 < p < 0.0005:
        return "<0.1%"
    return _fixed(100 * p, 1) + "%"


def expect_int(n) -> str:
    """Thousands separated by commas: 1536 -> "1,536"."""
    assert float(n) == int(n), n
    n = int(n)
    digits, groups = str(abs(n)), []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ("-" if n < 0 else "") + ",".join(groups)


def expect_decimals(x: float, decimals: int = 2) -> str:
    """Unsigned fixed decimals (a cost): 5.8812 -> "5.88"."""
    digits = _fixed(x, decimals)
    return ("-" if float(x) < 0 and digits.strip("0.") else "") + digits


def expect_piece(piece: str) -> str:
    """A token's text with its invisible characters made visible."""
    return "".join(VISIBLE.get(ch, ch) for ch in piece)


def expect_running_text(text: str) -> str:
    """A sampled continuation as drawn: newlines, tabs and carriage returns made visible, spaces
    kept inside and dropped at both ends; spaces only: one ␣ each."""
    shown = "".join(VISIBLE.get(ch, ch) if ch != " " else " " for ch in text).strip(" ")
    return shown or VISIBLE[" "] * len(text)


def expect_spoken_percent(p: float) -> str:
    """Narration's percentages: whole percent from 10% up, one decimal (no ".0") from 1% to 10%,
    "under 1%" below, "almost 0%" under 0.05%, "almost 100%" from 99.5%, "100%" from 99.95%."""
    pct = 100 * float(p)
    if pct >= 99.95:
        return "100%"
    if pct >= 99.5:
        return "almost 100%"
    if pct >= 9.5:
        return _fixed(pct, 0) + "%"
    if pct >= 0.95:
        text = _fixed(pct, 1)
        return (text[:-2] if text.endswith(".0") else text) + "%"
    return "under 1%" if pct >= 0.05 else "almost 0%"


def expect_spoken_number(x: float, digits: int = 2) -> str:
    """Narration's measured values: `digits` significant figures but whole numbers never cut,
    trailing zeros dropped, "minus " for negatives: 0.8347 -> "0.83", -1.502 -> "minus 1.5",
    143.2 -> "143"."""
    x = float(x)
    exponent = Decimal(repr(abs(x))).adjusted() if x else 0  # the power of ten of the first digit
    text = _fixed(x, max(0, digits - 1 - exponent))
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.strip("0") == "":
        return "0"
    return ("minus " if x < 0 else "") + text


SAID_PUNCTUATION = {",": "a comma", ".": "a full stop", ":": "a colon", ";": "a semicolon", "?": "a question mark",
                    "!": "an exclamation mark", "-": "a dash", "(": "an opening bracket", ")": "a closing bracket"}


def expect_spoken_token(piece: str) -> str:
    """How narration names a token: its text without surrounding spaces, in curly quotes; common
    punctuation by its name (a voice would swallow it); byte pieces as "a byte piece"."""
    text = piece.strip()
    if text and set(text.replace("<0x", "").replace(">", "")) <= set("0123456789ABCDEFabcdef") and text.startswith("<0x"):
        return "a byte piece"
    if text in SAID_PUNCTUATION:
        return SAID_PUNCTUATION[text]
    return "\u201c" + text + "\u201d"


def expect_spoken_count(n: int) -> str:
    """Narration's big counts: exact with commas under a million; above, "about" (unless exact)
    and millions or billions, one decimal under ten, whole from ten."""
    n = int(n)
    for size, word in ((10**9, "billion"), (10**6, "million")):
        if n >= size:
            value = Decimal(n) / size
            text = _fixed(float(value), 0 if value >= 10 else 1)
            text = text[:-2] if text.endswith(".0") else text
            exact = Decimal(text) * size == n
            return f"{'' if exact else 'about '}{text} {word}"
    return expect_int(n)


_BUILT: dict[tuple, object] = {}  # scenes already built in this process (tests only read them)


def build(scene: str, fresh: bool = False, **env):
    """Run a scene's construct with animations skipped (no frames, no video); return the scene.

    Silent (MT_VOICE=none) unless asked otherwise: what is drawn and said does not depend on the
    voice, only the pacing does, and the voiced renders check that. A scene built earlier in
    this process with the same variables (and cache folder) is returned again, unless `fresh`
    (e.g. to compare two independent builds)."""
    env = {"MT_VOICE": "none", **env}
    key = (scene, tuple(sorted((k, str(v)) for k, v in env.items())), os.environ.get("MANIM_TRANSFORMER_CACHE"),
           tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MT_"))))
    if not fresh and key in _BUILT:
        return _BUILT[key]
    _BUILT[key] = built = _build(scene, **env)
    return built


@lru_cache(maxsize=1)
def media_dir() -> str:
    """This process's own manim media folder (Text's SVG files), removed at exit. Not shared
    between runs: an SVG left empty by a killed process would be read again by every later build."""
    folder = tempfile.mkdtemp(prefix="mt-test-media-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _build(scene: str, **env):
    from manim import tempconfig

    from scenes.registry import scene_entry

    entry = scene_entry(scene)
    module, cls = entry.module, entry.cls
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        with tempconfig({"dry_run": True, "quality": "low_quality", "disable_caching": True,
                         "media_dir": media_dir()}), \
                no_pictures():
            Scene = getattr(importlib.import_module(f"scenes.{module}"), cls)
            s = Scene(skip_animations=True)
            s.render()
            return s
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def no_pictures():
    """Manim draws a picture at every play even when it skips animations; a build checks shapes,
    positions and numbers, never pixels (the render tests look at real frames), so it draws none."""
    from manim.renderer.cairo_renderer import CairoRenderer

    saved = CairoRenderer.update_frame, CairoRenderer.save_static_frame_data
    CairoRenderer.update_frame = CairoRenderer.save_static_frame_data = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        CairoRenderer.update_frame, CairoRenderer.save_static_frame_data = saved


@lru_cache(maxsize=2)
def loaded(model: str):
    from model.loading import load

    return load(model, "cpu")


@lru_cache(maxsize=2)
def embeddings(model: str) -> torch.Tensor:
    return loaded(model).model.weight("embed.W_E").detach().float()


@lru_cache(maxsize=2)
def parameter_count(model: str) -> int:
    return sum(p.numel() for p in loaded(model).model.parameters())


_UNIT_ROWS: dict = {}


def _top_cosines(W_E, vector, exclude, k=5):
    """The k rows of W_E with the largest cosine to `vector`, `exclude` left out: every row scaled
    to length 1 once (per matrix), then one matrix-vector product (262,144 rows: a big vocabulary)."""
    key = (W_E.data_ptr(), tuple(W_E.shape))
    if key not in _UNIT_ROWS:
        _UNIT_ROWS[key] = W_E / W_E.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = _UNIT_ROWS[key] @ (vector / vector.norm().clamp_min(1e-12))
    cos[list(exclude)] = -2
    return cos.topk(k)


def truth(shown, scene):
    """Recompute what `shown` claims to show, independently of the scene's own code path."""
    from model.trace import get_trace
    from model.tokenizer import token_pieces

    trace, params = scene.trace, scene.params
    src, idx = shown.source, shown.index
    cfg = trace.config
    if src in trace.tensors:
        return float(trace[src][idx])
    if src == "probs":
        t = trace if shown.prompt is None else get_trace(shown.prompt, params.model)
        pos, tid = idx
        return float(t["logits"][pos].softmax(-1)[tid])
    if src == "tokens":
        return trace.tokens[idx[0]]
    if src == "pieces":
        return trace.pieces[idx[0]]
    if src.startswith("config."):
        return getattr(cfg, src.split(".", 1)[1])
    counts = {"count.chars": len(trace.prompt), "count.tokens": len(trace.tokens),
              "count.heads": cfg.n_layers * cfg.n_heads}
    if src == "count.start_heads":  # heads whose last query gives the first token (Gemma's <bos>) half or more
        return sum(1 for L in range(cfg.n_layers) for h in range(cfg.n_heads)
                   if float(trace[f"blocks.{L}.attn.hook_pattern"][h, -1, 0]) >= 0.5)
    if src in counts:
        return counts[src]
    if src.endswith("^2") and src[:-2] in counts:
        return counts[src[:-2]] ** 2
    if src.startswith("len("):  # a vector's length: the last axis of its trace tensor
        name = src[4:-1]
        return trace[name].shape[-1] if name in trace.tensors else cfg.d_model
    if src == "shape(W_E)":
        return (cfg.vocab_size, cfg.d_model)[idx[0]]
    if src.startswith("norm_output:"):  # (pos, i): the norm's output after its weight (and bias)
        norm = src.split(":", 1)[1]
        weights = dict(loaded(params.model).model.named_parameters())
        out = trace[f"{norm}.hook_normalized"][idx[0]] * weights[f"{norm}.w"].detach()
        if f"{norm}.b" in weights:
            out = out + weights[f"{norm}.b"].detach()
        return float(out[idx[1:]]) if len(idx) > 1 else out
    if src == "params.total":
        return parameter_count(params.model)
    if src == "rope.angle":
        pos, i = idx
        return pos * cfg.rope_base ** (-2 * i / cfg.d_head)
    if src == "rope.angle.local":  # a sliding-window layer's own rotary base (Gemma 3: 10,000 against 1,000,000)
        pos, i = idx
        L = _story_cells(scene)[0]
        assert cfg.sliding_window > 0 and L in cfg.local_layers and cfg.rope_base_local, (L, cfg)
        return pos * cfg.rope_base_local ** (-2 * i / cfg.d_head)
    W_E = embeddings(params.model)
    enc = loaded(params.model).encoding
    if src == "vocab":
        return token_pieces(enc, [idx[0]])[0]
    if src == "embed.W_E":
        return float(W_E[idx])
    if src.startswith("neighbours."):
        tid, rank = idx
        values, ids = _top_cosines(W_E, W_E[tid], [tid])
        return float(values[rank]) if src.endswith("cosine") else token_pieces(enc, [int(ids[rank])])[0]
    if src.startswith("analogy."):
        words = idx[:3]
        ids = [enc.encode(" " + w)[0] for w in words]
        v = W_E[ids[0]] - W_E[ids[1]] + W_E[ids[2]]
        if src == "analogy.result":
            return float(v[idx[3]])
        if src == "analogy.piece":
            return shown.value if shown.value.strip() in words else f"not one of {words}"
        values, top = _top_cosines(W_E, v, ids)
        return float(values[idx[3]]) if src == "analogy.cosine" else token_pieces(enc, [int(top[idx[3]])])[0]
    if src.startswith("random_pairs."):
        return random_pairs(params.model)[src.split(".", 1)[1]]
    if src.startswith("story_lens."):
        return story_lens_truth(shown, scene)
    if src == "lens.answer_rank":  # (layer,)
        return banded_rank(shown, *lens_answer_logits(scene, idx[0]))
    if src.startswith(("attn.", "shape(W_")):
        from attention_truth import truth as attention_truth  # the attention scenes' sources

        return attention_truth(shown, scene)
    from story_truth import story_truth  # the story scenes' sources (mlp ... kv-cache)

    return story_truth(shown, scene)


# --------------------------------------------------------------------------- the story head, again

def story_head(trace, layer: int | None = None, head: int | None = None) -> tuple:
    """The head-choice rule as documented in facts/attention.choose_head, written again here from
    the trace's attention patterns: (layer, head, score, query, keys).

    Words: a token continues the word before it when it starts with a letter or digit and the
    token before ends with one. For every word with two words before it, the query is its last
    token and the score the attention it gives to the tokens of those two words (never the first
    token), each word getting at least 5%. Prompts with fewer than three words (or no word passing
    the 5% test): the last token's strongest earlier key, the first token left out. Of the heads
    scoring at least 95% of the best, the earliest layer wins, then the higher score.
    """
    pieces, cfg = trace.pieces, trace.config
    starts = [i for i, p in enumerate(pieces) if i == 0 or not (p[:1].isalnum() and pieces[i - 1][-1:].isalnum())]
    words = [list(range(a, b)) for a, b in zip(starts, starts[1:] + [len(pieces)])]
    found = []
    for L in [layer] if layer is not None else range(cfg.n_layers):
        P = trace[f"blocks.{L}.attn.hook_pattern"]
        for H in [head] if head is not None else range(cfg.n_heads):
            best = None
            for w in range(2, len(words)):
                q = words[w][-1]
                two = [[k for k in words[w - 2] if k != 0], [k for k in words[w - 1] if k != 0]]
                got = [sum(float(P[H, q, k]) for k in ks) for ks in two]
                if min(got) >= 0.05 and (best is None or sum(got) > best[0]):
                    best = (sum(got), q, tuple(two[0] + two[1]))
            if best is None:
                q = len(pieces) - 1
                k = max(range(1, q) if q >= 2 else range(q + 1), key=lambda k: float(P[H, q, k]))
                best = (float(P[H, q, k]), q, (k,))
            found.append((best[0], L, H, best[1], best[2]))
    top = max(f[0] for f in found)
    score, L, H, q, keys = min((f for f in found if f[0] >= 0.95 * top), key=lambda f: (f[1], -f[0]))
    return L, H, score, q, keys


def typed_position(pieces: list[str], text: str, at_most: int | None = None) -> int:
    """A token as a person types it (--query/--key), found again: "N" a position (when no piece
    reads N), "word@N" position N, else the last piece (at or before `at_most`) that reads `word`
    once leading spaces/▁ are dropped, the same case first, then any case."""
    text = text.strip()
    name, _, at = text.rpartition("@")
    if name and at.isdigit():
        return int(at)
    if text.isdigit() and not any(p.lstrip(" ▁") == text for p in pieces):
        return int(text)
    bare = text.lstrip(" ▁")
    for same in (lambda a, b: a == b, lambda a, b: a.lower() == b.lower()):
        hits = [i for i, p in enumerate(pieces) if same(p.lstrip(" ▁"), bare) and (at_most is None or i <= at_most)]
        if hits:
            return hits[-1]
    raise AssertionError(f"{text!r} is not a token of {pieces}")


def story_cells(trace, layer=None, head=None, query=None, key=None) -> tuple:
    """The head choice with the story's query/key tokens typed by hand, from the patterns:
    query (default: the last token), key (default: the query's strongest key in each head, the
    first token and the query itself left out when anything else is left); each head scored by
    its weight on that key; of the heads at 95% of the best, the earliest layer, then the higher
    score. (layer, head, score, query, keys)."""
    pieces, cfg = trace.pieces, trace.config
    q = typed_position(pieces, query) if query is not None else len(pieces) - 1
    k = typed_position(pieces, key, q) if key is not None else None
    found = []
    for L in [layer] if layer is not None else range(cfg.n_layers):
        P = trace[f"blocks.{L}.attn.hook_pattern"]
        for H in [head] if head is not None else range(cfg.n_heads):
            kk = k if k is not None else max(range(1, q) if q >= 2 else [q], key=lambda j: float(P[H, q, j]))
            found.append((float(P[H, q, kk]), L, H, q, (kk,)))
    top = max(f[0] for f in found)
    score, L, H, q, keys = min((f for f in found if f[0] >= 0.95 * top), key=lambda f: (f[1], -f[0]))
    return L, H, score, q, keys


# --------------------------------------------------------------------------- the word-vectors projection

@lru_cache(maxsize=2)
def random_pairs(model: str, n: int = 2000, seed: int = 0) -> dict:
    """The word-vectors scene's chance baseline, recomputed from W_E: `n` pairs of whole-word
    tokens (a space, then more than two lowercase letters) drawn with torch's generator at `seed`
    (first words, then second words), a word never paired with itself; mean |cosine| and its
    95th percentile, in float64."""
    from model.tokenizer import token_pieces

    W_E, enc = embeddings(model), loaded(model).encoding
    pieces = token_pieces(enc, list(range(W_E.shape[0])))
    words = torch.tensor([i for i, p in enumerate(pieces)
                          if len(p) > 3 and p[0] == " " and p[1:].isalpha() and p[1:].islower()])
    generator = torch.Generator().manual_seed(seed)
    first = words[torch.randint(len(words), (n,), generator=generator)]
    second = words[torch.randint(len(words), (n,), generator=generator)]
    keep = first != second
    u, v = W_E[first[keep]].double(), W_E[second[keep]].double()
    cos = ((u * v).sum(1) / (u.norm(dim=1) * v.norm(dim=1))).abs()
    return {"mean_abs": float(cos.mean()), "p95_abs": float(cos.quantile(0.95))}


@lru_cache(maxsize=4)
def projection(model: str, analogies: tuple) -> dict:
    """For the word-vectors scene's 2-D view: the tokens involved (b, c, a and the top answer of
    each analogy), their PCA coordinates (eigenvectors of the covariance, not an SVD) and each
    analogy's cosine between answer - a and c - b, in all d_model dimensions."""
    from model.tokenizer import token_pieces

    W_E, enc = embeddings(model), loaded(model).encoding
    ids, cosines = [], []
    for words in analogies:
        a, b, c = (enc.encode(" " + w.strip())[0] for w in words)
        answer = int(_top_cosines(W_E, W_E[a] - W_E[b] + W_E[c], [a, b, c])[1][0])
        u, v = (W_E[answer] - W_E[a]).double(), (W_E[c] - W_E[b]).double()
        cosines.append(float(u @ v / (u.norm() * v.norm())))
        ids += [i for i in (b, c, a, answer) if i not in ids]
    X = W_E[ids].double()
    X = X - X.mean(0)
    values, vectors = torch.linalg.eigh(X.T @ X)  # ascending
    order = values.argsort(descending=True)[:2]
    coords = X @ vectors[:, order]
    return {"pieces": token_pieces(enc, ids), "coords": coords, "explained": (values[order] / values.sum()).tolist(),
            "cosines": cosines}


def check_projection(scene) -> None:
    """The scene's projected points equal the PCA here, up to the sign of each axis."""
    truth_ = projection(scene.params.model, tuple(map(tuple, scene.data.analogies)))
    points = scene.data.projection["points"]
    assert list(points) == truth_["pieces"], (list(points), truth_["pieces"])
    got = torch.tensor(list(points.values()), dtype=torch.float64)
    for axis in range(2):
        want = truth_["coords"][:, axis]
        sign = 1.0 if float(want @ got[:, axis]) >= 0 else -1.0
        assert torch.allclose(got[:, axis], sign * want, atol=1e-3 * float(want.abs().max())), (axis, got, want)


# --------------------------------------------------------------------------- text that is not a number

def check_prompt(shown, scene) -> None:
    """A line of the prompt as drawn: a window of the prompt (lines break at spaces; "…" marks a cut)."""
    assert shown.value == shown.text, shown
    if shown.text != "…":
        assert shown.text and shown.text in scene.params.prompt.replace("\r", "").replace("\t", " "), shown


def check_provenance(shown, scene) -> None:
    """model · layer L head H (auto SCORE | chosen) · trace HASH, each part recomputed."""
    from model.trace import get_trace

    m = re.fullmatch(r"(.+) · layer (\d+) head (\d+) \((?:auto (\d+\.\d\d)|(chosen))\) · trace ([0-9a-f]{8})", shown.text)
    assert m, shown.text
    p = scene.params
    assert m[1] == loaded(p.model).source.display_name, (m[1], shown)
    trace = get_trace(p.prompt, p.model)
    assert m[6] == trace.hash[:8] == scene.trace.hash[:8], (m[6], trace.hash)
    if getattr(p, "query", None) is not None or getattr(p, "key", None) is not None:
        L, H, score, _, _ = story_cells(trace, p.layer, p.head, p.query, p.key)
    else:
        L, H, score, _, _ = story_head(trace, p.layer, p.head)
    assert (int(m[2]), int(m[3])) == (L, H), (shown.text, L, H)
    if p.layer is None or p.head is None:
        assert m[4] == _fixed(score, 2), (shown.text, score)
    else:
        assert m[5] == "chosen", shown.text


def check_index(mob, shown, scene, parent) -> None:
    """A row label: the row of a drawn weight matrix (a token id for W_E), or the layer of a logit-lens row."""
    from manim import Text

    assert isinstance(shown.value, int) and shown.text.strip() == str(shown.value), shown
    for owner in scene.seen.values():
        rows = getattr(owner, "row_label_of", None)
        if rows and any(lab is mob for lab in rows.values()):
            r = next(r for r, lab in rows.items() if lab is mob)
            cells = [c.shown for c in owner.rows[r] if getattr(c, "shown", None)]
            assert cells, r
            for c in cells:  # W_E rows are token ids; a head's W_Q/W_K/W_V/W_O entry (L, H, r, c) is on row r
                rows_of = {"embed.W_E": lambda i: i[0], "hook_embed": lambda i: scene.trace.tokens[i[0]]}
                row = rows_of[c.source](c.index) if c.source in rows_of else c.index[2]
                assert (c.source in rows_of or c.source.startswith("attn.W_")) and row == shown.value, (shown, c)
            return
    siblings = [s.shown for group in parent.get(id(mob), []) for s in group.submobjects
                if s is not mob and isinstance(getattr(s, "shown", None), type(shown)) and isinstance(s, Text)]
    lens = [s for s in siblings if s.source in ("lens.piece", "lens.p")]
    assert lens, f"row label {shown.text!r} with no row to check it against"
    assert all(s.index[0] == shown.value for s in lens) and 0 <= shown.value < scene.trace.config.n_layers, (shown, lens)


def check_axis(shown) -> None:
    """A tick label: a scale mark, not data; its text must say its value (a probability axis says
    it in percent: "25%" for 0.25)."""
    text = shown.text.strip()
    percent = text.endswith("%")
    digits = text.rstrip("%")
    value = float(digits.replace(MINUS, "-").replace(",", "")) / (100 if percent else 1)
    decimals = (len(digits.split(".")[1]) if "." in digits else 0) + (2 if percent else 0)
    assert abs(value - float(shown.value)) <= 0.5 * 10 ** -decimals, shown


def check_shown(scene) -> int:
    """Every value a scene drew equals its source; every number drawn has a source. Returns how many were checked.

    Expected text is formatted here (expect_*), never by the scene's own formatters."""
    from manim import Text

    parent: dict[int, list] = {}
    for owner in scene.seen.values():
        for sub in owner.submobjects:
            parent.setdefault(id(sub), []).append(owner)
    checked = 0
    projected = False
    for m in scene.seen.values():
        shown = getattr(m, "shown", None)
        if isinstance(m, Text) and shown is None:
            assert not NUMBER.match(m.text), f"number {m.text!r} on screen without a source"
        if shown is None:
            continue
        if isinstance(m, Text):  # (U+FE0E, an emoji's outline form, and U+200E, left to right, are not drawn)
            assert m.text.replace("\ufe0e", "").replace("\u200e", "") == shown.text.replace(" ", "").replace("\n", ""), (m.text, shown)
        checked += 1
        src = shown.source
        if src == "prompt":
            check_prompt(shown, scene)
            continue
        if src == "provenance":
            check_provenance(shown, scene)
            continue
        if src == "index":
            check_index(m, shown, scene, parent)
            continue
        if src == "axis" and shown.kind == "text":
            check_axis(shown)
            continue
        if src.startswith("projection."):
            if not projected:
                check_projection(scene)
                projected = True
            p = projection(scene.params.model, tuple(map(tuple, scene.data.analogies)))
            true = p["cosines"][shown.index[0]] if src == "projection.cosine" else shown.value
            if src == "projection.piece":
                assert shown.value in p["pieces"], (shown, p["pieces"])
        else:
            true = truth(shown, scene)
        if shown.kind == "number":
            assert shown.text == expect_number(true, shown.decimals), (shown, true)
        elif shown.kind == "percent":
            assert shown.text == expect_percent(true), (shown, true)
        elif shown.kind == "int":
            assert shown.text == expect_int(true), (shown, true)
        elif shown.kind == "decimals":  # unsigned, fixed decimals (e.g. a cost)
            assert shown.text == expect_decimals(true, shown.decimals), (shown, true)
        elif shown.kind == "token":
            assert shown.value == true and shown.text == expect_piece(true), (shown, true)
        elif shown.kind == "text":  # running text (a sampled continuation): line breaks visible, spaces kept
            assert shown.value == true and shown.text == expect_running_text(true), (shown, true)
        else:
            raise AssertionError(f"unknown kind {shown.kind!r} for source {src!r}")
    return checked


# --------------------------------------------------------------------------- the story token through the logit lens

def _story_cells(scene) -> tuple:
    """(layer, head, query) of the story: recomputed from the patterns unless a query or key was chosen by hand."""
    p = scene.params
    if getattr(p, "query", None) or getattr(p, "key", None):
        c = scene.data.choice
        return c.layer, c.head, c.query
    L, H, _, q, _ = story_head(scene.trace, p.layer, p.head)
    return L, H, q


RANK_EPS = 1e-3  # logits closer than this may swap places between the model's float32 and these float64 sums


def rank_band(logits: torch.Tensor, tid: int) -> tuple[int, int]:
    """The ranks token `tid` may honestly get (1 = top): every token whose logit is within
    RANK_EPS of its own may land on either side of it in float32."""
    here = float(logits[tid])
    return int((logits > here + RANK_EPS).sum()) + 1, int((logits > here - RANK_EPS).sum())


def banded_rank(shown, logits: torch.Tensor, tid: int) -> int:
    """The shown rank when it lies in the honest band, else the exact rank here (and the check fails)."""
    low, high = rank_band(logits, tid)
    return shown.value if low <= shown.value <= high else int((logits > logits[tid]).sum()) + 1


def _rms_lens(model: str, vector: torch.Tensor, cfg) -> torch.Tensor:
    """Probabilities of the logit lens, written out: the final norm by its formula (RMSNorm, or
    LayerNorm with its bias), its weight, then the unembedding; float64."""
    return _rms_lens_logits(model, vector, cfg).softmax(-1)


@lru_cache(maxsize=2)
def _unembedding64(model: str) -> torch.Tensor:
    """W_U in float64, converted once per model (Gemma's is 640 x 262,144: converting it is slow)."""
    return loaded(model).model.weight("unembed.W_U").detach().double()


def _rms_lens_logits(model: str, vector: torch.Tensor, cfg) -> torch.Tensor:
    weights = dict(loaded(model).model.named_parameters())
    x = vector.double()
    if cfg.norm == "layernorm":
        x = x - x.mean()
    x = x / (x.pow(2).mean() + cfg.norm_eps).sqrt() * weights["ln_final.w"].detach().double()
    if "ln_final.b" in weights:
        x = x + weights["ln_final.b"].detach().double()
    logits = x @ _unembedding64(model)
    if "unembed.b_U" in weights:
        logits = logits + weights["unembed.b_U"].detach().double()
    if cfg.final_softcap:  # Gemma 2 soft-caps its logits: c * tanh(logit / c)
        logits = cfg.final_softcap * torch.tanh(logits / cfg.final_softcap)
    return logits


_STORY_LENS: dict = {}


def story_lens(scene) -> dict:
    """The story token's vector at the three stages the values scene reads (before the layer, plus
    the head's own output rebuilt from hook_z and W_O, after the layer), through `_rms_lens`;
    the head's output and the vector it is added to."""
    trace, model = scene.trace, scene.params.model
    key = (model, trace.hash, getattr(scene.params, "query", None), getattr(scene.params, "key", None),
           scene.params.layer, scene.params.head)
    if key not in _STORY_LENS:
        L, H, q = _story_cells(scene)
        before = trace[f"blocks.{L}.hook_resid_pre"][q].double()
        W_O = loaded(model).model.weight(f"blocks.{L}.attn.W_O")[H].detach().double()  # [d_head, d_model]
        update = trace[f"blocks.{L}.attn.hook_z"][q, H].double() @ W_O
        if trace.config.post_norms:  # sandwich norms: the head's share of ln1_post(sum of heads), by RMSNorm's formula
            heads = torch.einsum("hd,hdm->hm", trace[f"blocks.{L}.attn.hook_z"][q].double(),
                                 loaded(model).model.weight(f"blocks.{L}.attn.W_O").detach().double())  # [n_heads, d_model]
            rms = (heads.sum(0).pow(2).mean() + trace.config.norm_eps).sqrt()
            w = dict(loaded(model).model.named_parameters())[f"blocks.{L}.ln1_post.w"].detach().double()
            update = update / rms * w
        vectors = [before, before + update, trace[f"blocks.{L}.hook_resid_post"][q].double()]
        logits = [_rms_lens_logits(model, v, trace.config) for v in vectors]
        _STORY_LENS[key] = {"logits": logits, "probs": [x.softmax(-1) for x in logits], "update": update,
                            "before": before}
    return _STORY_LENS[key]


def story_lens_truth(shown, scene):
    """Sources "story_lens.*" (values scene): stage 0 before the layer, 1 plus the head's change, 2 after the layer."""
    import numpy as np

    from model.tokenizer import token_pieces

    src, idx = shown.source, shown.index
    lens = story_lens(scene)
    if src == "story_lens.p":  # (stage, token id[, rank])
        return float(lens["probs"][idx[0]][idx[1]])
    if src == "story_lens.piece":  # (stage, token id, rank): that token is the rank-th guess at that stage
        low, high = rank_band(lens["logits"][idx[0]], idx[1])
        assert low <= idx[2] + 1 <= high, (shown, lens["logits"][idx[0]].topk(idx[2] + 1))
        return token_pieces(loaded(scene.params.model).encoding, [idx[1]])[0]
    if src == "story_lens.rank":  # (stage, token id): 1 = the top guess
        return banded_rank(shown, lens["logits"][idx[0]], idx[1])
    if src == "story_lens.share":
        return float(lens["update"].norm() / lens["before"].norm())
    u = lens["update"]
    cosines = _update_cosines(scene.params.model, u)
    if src == "story_lens.cos":  # (token id,)
        return float(cosines[idx[0]])
    if src in ("story_lens.cos_p05", "story_lens.cos_p95"):
        return float(np.percentile(cosines, 5 if src.endswith("05") else 95))
    raise KeyError(f"test does not know source {src!r}")


@lru_cache(maxsize=2)
def _embeddings64(model: str) -> tuple[torch.Tensor, torch.Tensor]:
    """W_E in float64 and its row lengths, once per model."""
    W_E = embeddings(model).double()
    return W_E, W_E.norm(dim=1)


_COSINES: dict = {}


def _update_cosines(model: str, u: torch.Tensor):
    """The cosine of `u` with every row of W_E (float64), kept for the last few vectors asked."""
    key = (model, u.numpy().tobytes())
    if key not in _COSINES:
        W_E, lengths = _embeddings64(model)
        _COSINES.clear() if len(_COSINES) > 4 else None
        _COSINES[key] = (W_E @ u / (lengths * u.norm())).numpy()
    return _COSINES[key]


_ANSWER_LOGITS: dict = {}


def lens_answer_logits(scene, layer: int) -> tuple[torch.Tensor, int]:
    """The logit lens after `layer` at the last position (logits, float64) and the final answer's id."""
    key = (scene.params.model, scene.trace.hash, layer)
    if key not in _ANSWER_LOGITS:
        logits = _rms_lens_logits(scene.params.model, scene.trace[f"blocks.{layer}.hook_resid_post"][-1],
                                  scene.trace.config)
        _ANSWER_LOGITS[key] = (logits, int(scene.trace["logits"][-1].argmax()))
    return _ANSWER_LOGITS[key]


def lens_answer_rank(scene, layer: int) -> tuple[int, int]:
    """The band of ranks (see rank_band) the final answer may honestly get in the logit lens after `layer`."""
    return rank_band(*lens_answer_logits(scene, layer))


def shown_sources(scene) -> dict[str, list]:
    """Every Shown value a scene drew, grouped by its source."""
    out: dict[str, list] = {}
    for m in scene.seen.values():
        s = getattr(m, "shown", None)
        if s is not None:
            out.setdefault(s.source, []).append(s)
    return out


def said(scene) -> str:
    """Everything a scene's narration says, as one line."""
    return " ".join(" ".join(c.split()) for c in scene.captions)
