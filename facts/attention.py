"""Attention, from a Trace or the weights, so that scenes only draw. Never imports manim.

- `word_spans`, `choose_head`: which (layer, head) tells the story for `--head auto`, and why;
  `story_scores`: every head's score under that rule (`render.py heads`).
- `token_position`, `choose_cells`: the story's query and key tokens chosen by hand (`--query`, `--key`).
- `kv_head`, `sharing`: which key/value head a query head reads (grouped-query attention).
- `dot_products`: the raw q . k of one head (before / sqrt(d_head)), with RoPE applied.
- `qk_plane`: a 2-D picture of one head's queries and keys that keeps what attention uses.
- `temperature_weights`: the same scores turned into weights at several temperatures.
- `weight_corners`: elided corners of W_Q/W_K/W_V/W_O (cached).
- `head_norms`: how large each head's contribution to one token's vector is.
- `rope_pair`: one real 2-D pair of a query, before and after its rotary turn.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from model.cache import cached
from model.config import ModelConfig
from model.errors import UserError
from model.loading import shared
from model.trace import Trace
from model.transformer import rotary_angles

from .generation import softmax_with_temperature

TEMPERATURES = (0.0, 0.5, 1.0, 2.0)  # the temperatures every scene compares
CORNER = (3, 2)  # first and last entries shown of each matrix dimension
MIN_SECOND_WORD = 0.05  # a head must give each of the two words at least this much (not a previous-token head)
NEAR_BEST = 0.95  # prefer the earliest layer whose best head reaches this fraction of the overall best score


def kv_head(cfg: ModelConfig, head: int) -> int:
    """Query head `head` reads key/value head head // (n_heads // n_kv_heads)."""
    return head // cfg.heads_per_kv


def sharing(cfg: ModelConfig) -> list[list[int]]:
    """For each key/value head, the query heads that read it."""
    return [[h for h in range(cfg.n_heads) if kv_head(cfg, h) == g] for g in range(cfg.n_kv_heads)]


def qk_hook(cfg: ModelConfig, layer: int, which: str) -> str:
    """The trace name of the queries ("q") or keys ("k") that q . k uses: after RoPE on rotary models."""
    return f"blocks.{layer}.attn.hook_{'rot_' if cfg.positional == 'rotary' else ''}{which}"


@cached("norm-output")
def norm_output(trace: Trace, model: str, norm: str) -> list[list[float]]:
    """What the sub-layer after a norm reads: hook_normalized * w (+ b), [pos, d_model].

    norm: "blocks.L.ln1", "blocks.L.ln2" or "ln_final"."""
    module = shared(model).model.get_submodule(norm)  # a model.transformer.Norm
    x = trace[f"{norm}.hook_normalized"] * module.w.detach().float()
    if module.b is not None:
        x = x + module.b.detach().float()
    return x.tolist()


def dot_products(trace: Trace, layer: int, head: int) -> torch.Tensor:
    """[q_pos, k_pos] raw q . k of one head (queries and keys after RoPE), every pair, masked or not."""
    q = trace[qk_hook(trace.config, layer, "q")][:, head]  # [pos, d_head]
    k = trace[qk_hook(trace.config, layer, "k")][:, kv_head(trace.config, head)]
    return q @ k.T


def qk_plane(trace: Trace, layer: int, head: int, query: int, keys: list[int]) -> dict:
    """2-D coordinates of one head's keys, seen from one query, keeping what attention uses.

    Keys are first taken relative to their average over the prompt: a shift shared by every
    key adds the same amount to all of a query's scores, which softmax ignores. The first
    axis is then q's own direction, so a key's x is (q . k - q . mean k) / |q|: the further
    right, the more attention it earns. The second axis is what is left of the story keys'
    mean once its part along q is removed. Returns {"query": [x, y] of q itself, "keys":
    [[x, y] per position], "offset": q . mean k (the part every score shares)}.
    """
    q = trace[qk_hook(trace.config, layer, "q")][query, head].double()
    k = trace[qk_hook(trace.config, layer, "k")][:, kv_head(trace.config, head)].double()  # [pos, d_head]
    mean = k.mean(0)
    k = k - mean
    u = q / q.norm()
    target = k[list(keys)].mean(0) if keys else k[query]
    rest = target - (target @ u) * u
    if rest.norm() < 1e-6 * max(1.0, float(k.norm(dim=1).max())):  # degenerate: any direction orthogonal to q
        rest = torch.zeros_like(u)
        rest[int(u.abs().argmin())] = 1.0
        rest = rest - (rest @ u) * u
    v = rest / rest.norm()
    coords = torch.stack([k @ u, k @ v], dim=1)
    return {"query": [float(q.norm()), 0.0], "keys": coords.tolist(), "offset": float(q @ mean)}


def temperature_weights(scores: torch.Tensor, temperatures=TEMPERATURES) -> dict[float, list[float]]:
    """Softmax of the same scores at each temperature (T = 0: all weight on the largest)."""
    return {float(T): softmax_with_temperature(scores.double(), float(T)).tolist() for T in temperatures}


def head_norms(trace: Trace, layer: int, pos: int) -> list[float]:
    """Length of each head's contribution (hook_result) to token `pos`'s vector."""
    return trace[f"blocks.{layer}.attn.hook_result"][pos].norm(dim=-1).tolist()


@cached("attention-corners")
def weight_corners(model: str, layer: int, head: int) -> dict:
    """Elided views of one head's matrices, drawn as (output x input) maps: for W_Q, W_K and
    W_V that is the transpose of the stored [d_model, d_head] slice. Returns, per name,
    {"shape": [rows, cols], "rows": [...], "cols": [...], "values": [[...]]}; and where the model
    adds biases to queries, keys and values (GPT-2, Qwen2), "b_Q", "b_K", "b_V": the whole
    [d_head] bias of this query head and of the key/value head it reads."""
    net = shared(model).model
    g = kv_head(net.cfg, head)
    W = {n: net.weight(f"blocks.{layer}.attn.{n}").detach().float() for n in ("W_Q", "W_K", "W_V", "W_O")}
    out = {}
    if net.cfg.qkv_biases:
        for name, h in (("b_Q", head), ("b_K", g), ("b_V", g)):
            out[name] = net.weight(f"blocks.{layer}.attn.{name}")[h].detach().float().tolist()
    for name, mat in (("W_Q", W["W_Q"][head].T), ("W_K", W["W_K"][g].T), ("W_V", W["W_V"][g].T),
                      ("W_O", W["W_O"][head].T)):
        r, c = mat.shape
        rows = list(range(CORNER[0])) + [r - 1]
        cols = list(range(CORNER[0])) + [c - 1]
        out[name] = {"shape": [r, c], "rows": rows, "cols": cols, "values": mat[rows][:, cols].tolist()}
    return out


def scale(cfg: ModelConfig) -> float:
    """What q . k is divided by: sqrt(d_head), or sqrt(query_pre_attn_scalar) where the config sets it (Gemma)."""
    return math.sqrt(cfg.query_pre_attn_scalar or cfg.d_head)


# --------------------------------------------------------------------------- words and heads

def word_spans(pieces: list[str]) -> list[tuple[int, int]]:
    """Token index ranges [start, end) of the prompt's words.

    A token continues the previous word when it starts with a letter or digit and the
    previous token ends with one (e.g. ' ver' 'd' 'ant' is one word, ' verdant').
    """
    spans: list[list[int]] = []
    for i, piece in enumerate(pieces):
        joins = (i > 0 and piece[:1].isalnum() and pieces[i - 1][-1:].isalnum())
        if joins:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    return [(a, b) for a, b in spans]


@dataclass(frozen=True)
class HeadChoice:
    layer: int
    head: int
    score: float  # attention the query token gives to its key tokens in this head
    reason: str  # one sentence, for captions and the sidecar
    query: int  # token position whose attention tells the story
    keys: tuple[int, ...]  # token positions it attends to
    auto: bool  # picked by the rule (True) or given by the user (False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["keys"] = list(self.keys)
        return d


def _story(pattern: torch.Tensor, spans: list[tuple[int, int]]) -> tuple[float, int, tuple[int, ...]]:
    """Best (score, query, keys) of one head's pattern [q_pos, k_pos] under the auto rule.

    For each word w with two earlier words before it (not counting a word made of only the
    first token): the query is w's last token, the score is the attention it gives to the
    tokens of the two words just before w, provided each of those two words gets at least
    MIN_SECOND_WORD. The first token (an attention sink in most models) never counts.
    """
    # numpy, not torch: a few small array operations, where torch's thread start-up costs more
    P = pattern.detach().float().numpy().astype(np.float64)  # [q_pos, k_pos]
    P[:, 0] = 0.0  # the first token never counts
    running = np.pad(P.cumsum(1), ((0, 0), (1, 0)))  # [q_pos, k_pos + 1]: attention to the keys before k
    starts = np.array([s[0] for s in spans])  # [words]
    ends = np.array([s[1] for s in spans])  # [words]
    q = ends[2:] - 1  # [words - 2]: each word's last token asks
    two_back = running[q, ends[:-2]] - running[q, starts[:-2]]  # [words - 2]: attention to word w - 2
    one_back = running[q, ends[1:-1]] - running[q, starts[1:-1]]  # [words - 2]: attention to word w - 1
    score = np.where(np.minimum(two_back, one_back) >= MIN_SECOND_WORD, two_back + one_back, -1.0)
    w = int(score.argmax())  # the first of equal bests
    if score[w] < 0:
        return (-1.0, -1, ())
    keys = tuple(k for s in (spans[w], spans[w + 1]) for k in range(s[0], s[1]) if k != 0)
    return float(score[w]), int(q[w]), keys


def _fallback(pattern: torch.Tensor) -> tuple[float, int, tuple[int, ...]]:
    """Short prompts: the last token's strongest earlier key, ignoring the first token."""
    q = pattern.shape[0] - 1
    first = 1 if q >= 2 else 0
    last = q if q >= 2 else q + 1  # exclude the token itself when there is anything else to look at
    weights = pattern[q, first:last]
    k = int(weights.argmax()) + first
    return float(weights.max()), q, (k,)


def story_scores(trace: Trace, layer: int | None = None, head: int | None = None) -> list[dict]:
    """Every head's score under the auto rule of `choose_head` (each of `layer`/`head` None = all):
    [{"layer", "head", "score", "query", "keys", "rule": "story" | "fallback"}], layer by layer."""
    cfg = trace.config
    for name, value, limit in (("layer", layer, cfg.n_layers), ("head", head, cfg.n_heads)):
        if value is not None and not 0 <= value < limit:
            raise UserError(f"--{name} {value} is out of range: this model has {limit} {name}s (0..{limit - 1})")
    layers = [layer] if layer is not None else range(cfg.n_layers)
    heads = [head] if head is not None else range(cfg.n_heads)
    spans = word_spans(trace.pieces)
    story = len(spans) >= 3
    out = []
    for L in layers:
        pattern = trace[f"blocks.{L}.attn.hook_pattern"]
        for H in heads:
            score, q, keys = _story(pattern[H], spans) if story else (-1.0, -1, ())
            rule = "story"
            if q < 0:
                (score, q, keys), rule = _fallback(pattern[H]), "fallback"
            out.append({"layer": L, "head": H, "score": score, "query": q, "keys": tuple(keys), "rule": rule})
    return out


def _pick(candidates: list[dict]) -> dict:
    """Among heads scoring at least NEAR_BEST of the best, the earliest layer, then the higher score."""
    top = max(c["score"] for c in candidates)
    return min((c for c in candidates if c["score"] >= NEAR_BEST * top), key=lambda c: (c["layer"], -c["score"]))


def choose_head(trace: Trace, layer: int | None = None, head: int | None = None) -> HeadChoice:
    """`--layer/--head`, either of which may be None (= auto), to one (layer, head) and its story.

    The auto rule ("a noun looking at its adjectives", stated without a part-of-speech tagger):
    over every head, find the word whose last token gives the most attention to the two
    words just before it, each of them getting at least 5%, ignoring the prompt's first
    token. This skips heads that only look at the first token or only at the previous token.
    Among heads scoring at least 95% of the best, the earliest layer wins (then the higher
    score): early layers still hold mostly the words themselves, so their patterns read as
    word-to-word links. For the default prompt it picks layer 1 head 2: ' creature' -> ' fluffy' + ' blue', 0.92.
    Prompts with fewer than three words fall back to the last token's strongest earlier key.
    """
    c = _pick(story_scores(trace, layer, head))
    score, L, H, q, keys, rule = c["score"], c["layer"], c["head"], c["query"], c["keys"], c["rule"]
    pieces = trace.pieces
    target = " + ".join(repr(pieces[k]) for k in keys)
    auto = layer is None or head is None
    how = "picked automatically" if auto else "chosen by the user"
    if rule == "story":
        why = f"{repr(pieces[q])} gives {score:.2f} of its attention to {target}, the two words before it"
    else:
        why = f"{repr(pieces[q])} gives {score:.2f} of its attention to {target}, its strongest key (too few words for the two-word rule)"
    return HeadChoice(L, H, score, f"layer {L} head {H}, {how}: {why}", q, tuple(keys), auto)


# --------------------------------------------------------------------------- story cells chosen by hand

def _bare(piece: str) -> str:
    """A piece as a person types it: without its leading spaces or sentencepiece's ▁."""
    return piece.lstrip(" ▁")


def _choices(pieces: list[str], positions: range, text: str) -> str:
    """Valid choices to list in an error: all of them when few, else the closest few."""
    names = [f"{_bare(pieces[i]) or repr(pieces[i])}@{i}" for i in positions]
    if len(names) <= 12:
        return ", ".join(names)
    import difflib

    close = difflib.get_close_matches(text, [_bare(pieces[i]) for i in positions], n=4, cutoff=0.5)
    near = [n for n in names if n.rsplit("@", 1)[0] in close][:6]
    return (", ".join(near) + ", ... " if near else "") + f"or a position {positions.start}..{positions.stop - 1}"


def token_position(pieces: list[str], text: str, what: str = "--query", at_most: int | None = None) -> int:
    """The prompt position a person means by `text`: a token as typed ("traveled" matches the piece
    " traveled": leading spaces/▁ ignored, exact case first, then any case; else a whole word, read
    at its last token), its last occurrence (at or before `at_most`, for a key) unless a position is
    given ("traveled@14", or just "14"). UserError (one line, with valid choices) otherwise."""
    n = len(pieces)
    allowed = range(0, n if at_most is None else at_most + 1)
    raw = "" if text is None else str(text)
    if not _bare(raw.strip()):
        raise UserError(f"{what} is empty: name a token of the prompt ({_choices(pieces, allowed, '')})")
    word, _, at = raw.strip().rpartition("@")
    if word and at.isdigit():
        typed, pos = _bare(word), int(at)
    elif raw.strip().isdigit():
        typed, pos = None, int(raw.strip())
    else:
        typed, pos = _bare(raw.strip()), None

    def matches(t: str) -> list[int]:
        exact = [i for i in range(n) if _bare(pieces[i]) == t]
        if exact:
            return exact
        folded = [i for i in range(n) if _bare(pieces[i]).casefold() == t.casefold()]
        if folded:
            return folded
        return [b - 1 for a, b in word_spans(pieces)
                if _bare("".join(pieces[a:b])).casefold() == t.casefold()]

    if typed is None:  # digits alone: a position, unless the prompt also holds that number as a token
        as_token = matches(raw.strip())
        if as_token and pos < n:
            raise UserError(f"{what} {raw.strip()} is ambiguous: position {pos} is {pieces[pos]!r}, and {raw.strip()!r} "
                            f"is also a token of the prompt; write {raw.strip()}@{as_token[-1]} for the token or "
                            f"{_bare(pieces[pos]) or pieces[pos]!r}@{pos} for the position")
        if as_token:
            typed, pos = raw.strip(), None
        elif pos >= n:
            raise UserError(f"{what} {pos} is past the prompt's end: it has {n} tokens (positions 0..{n - 1})")
    if typed is not None:
        found = matches(typed)
        if not found:
            raise UserError(f"{what} {raw.strip()!r} is not a token of the prompt; choose one of: "
                            f"{_choices(pieces, range(n), typed)}")
        if pos is not None:
            if pos not in found:
                where = f"at {', '.join(map(str, found))}" if len(found) <= 6 else f"at {len(found)} places"
                raise UserError(f"{what} {raw.strip()!r}: position {pos} is {pieces[pos] if pos < n else 'past the end'!r}, "
                                f"not {typed!r} (which is {where})")
        else:
            before = [i for i in found if i in allowed]
            pos = before[-1] if before else found[-1]
    if pos not in allowed:
        raise UserError(f"{what} {raw.strip()!r} is at position {pos}, after the query at {at_most}: a token only "
                        f"attends to itself and earlier tokens; choose a key at or before it: "
                        f"{_choices(pieces, allowed, typed or '')}")
    return pos


def _strongest_key(pattern_row: torch.Tensor, q: int) -> int:
    """The key query q attends to most, leaving out the first token (and q itself when another
    token is left to choose)."""
    options = list(range(1, q)) if q >= 2 else [q]
    return max(options, key=lambda k: float(pattern_row[k]))


def choose_cells(trace: Trace, layer: int | None = None, head: int | None = None, query: str | None = None,
                 key: str | None = None) -> HeadChoice:
    """`choose_head`, with the story's query token and key token chosen by hand (`--query`,
    `--key`, as a person types them: see token_position). Without either, exactly choose_head.

    Only --key: the query is the last token. Only --query: the key is its strongest key in the
    chosen head (the first token left out, and the query itself unless nothing else is left).
    --layer/--head auto still apply, each head scored for the chosen query: by the weight it
    gives the chosen key, or else by the weight of its own strongest key."""
    if query is None and key is None:
        return choose_head(trace, layer, head)
    story_scores(trace, layer, head)  # range checks first
    pieces, cfg = trace.pieces, trace.config
    q = token_position(pieces, query, "--query") if query is not None else len(pieces) - 1
    k = token_position(pieces, key, "--key", at_most=q) if key is not None else None
    candidates = []
    for L in [layer] if layer is not None else range(cfg.n_layers):
        pattern = trace[f"blocks.{L}.attn.hook_pattern"]
        for H in [head] if head is not None else range(cfg.n_heads):
            kk = k if k is not None else _strongest_key(pattern[H, q], q)
            candidates.append({"layer": L, "head": H, "score": float(pattern[H, q, kk]), "query": q, "keys": (kk,)})
    c = _pick(candidates)
    auto = layer is None or head is None
    how = "picked automatically for the chosen cells" if auto else "chosen by the user"
    whose = "the chosen key" if k is not None else "its strongest key"
    why = f"{pieces[q]!r} gives {c['score']:.2f} of its attention to {pieces[c['keys'][0]]!r}, {whose}"
    return HeadChoice(c["layer"], c["head"], c["score"], f"layer {c['layer']} head {c['head']}, {how}: {why}",
                      q, c["keys"], auto)


# --------------------------------------------------------------------------- rotary position

def rope_pair(trace: Trace, layer: int, head: int, pos: int) -> dict:
    """One real 2-D pair of a query, before and after its rotary turn, for drawing.

    Picks, for token `pos`, the pair (2i, 2i+1) of query head `head` whose turn is easy to
    see (between 20 and 160 degrees) and whose length is largest. Returns {"pair": i,
    "angle": radians, "before": [x, y], "after": [x, y], "before_hook": name, "base": the layer's
    rotary base} read from what RoPE turns (hook_q, or hook_q_normed on QK-norm models) and
    hook_rot_q, turned with the layer's own base (a sliding-window layer may have its own).
    """
    cfg = trace.config
    if cfg.positional != "rotary":
        raise ValueError("rope_pair needs a rotary model")
    before_hook = f"blocks.{layer}.attn.hook_q_normed" if cfg.qk_norm else f"blocks.{layer}.attn.hook_q"
    before = trace[before_hook][pos, head]  # [d_head]: what RoPE turns
    after = trace[f"blocks.{layer}.attn.hook_rot_q"][pos, head]
    base = cfg.rope_base_for(layer)
    angles = rotary_angles(cfg, pos + 1, base=base)[pos]  # [d_head/2]
    pairs = before.reshape(-1, 2)
    turn = torch.remainder(angles, 2 * torch.pi)
    visible = (turn > 0.35) & (turn < 2.8)
    norms = pairs.norm(dim=1) * visible
    i = int(norms.argmax()) if bool(visible.any()) else int(pairs.norm(dim=1).argmax())
    return {"pair": i, "angle": float(angles[i]), "before": pairs[i].tolist(),
            "after": after.reshape(-1, 2)[i].tolist(), "before_hook": before_hook, "base": float(base)}
