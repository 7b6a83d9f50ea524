"""Small derived facts the scenes show, computed here so scenes never do maths themselves.

- `choose_head`: the `--head auto` rule, a pure function of a Trace.
- `word_spans`: which tokens belong to one word.
- `model_facts`, `neighbours`, `analogy`, `generate`: computed from weights or traces and
  cached as JSON under the model fingerprint, so a render's worker processes (and a second
  render) never redo them.

Never imports manim.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch

from .errors import UserError
from .files import atomic_write_text, cache_dir, sha256_text
from .loading import DEFAULT_MODEL, LoadedModel, load, resolve
from .trace import Trace, get_trace

ANALYSIS_VERSION = "1"
MIN_SECOND_WORD = 0.05  # a head must give each of the two words at least this much (not a previous-token head)
NEAR_BEST = 0.95  # prefer the earliest layer whose best head reaches this fraction of the overall best score


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
    best = (-1.0, -1, ())
    for w in range(2, len(spans)):
        q = spans[w][1] - 1
        word_weights = []
        keys: list[int] = []
        for s in (spans[w - 2], spans[w - 1]):
            ks = [k for k in range(s[0], s[1]) if k != 0]
            keys += ks
            word_weights.append(float(pattern[q, ks].sum()) if ks else 0.0)
        if min(word_weights) < MIN_SECOND_WORD:
            continue
        score = sum(word_weights)
        if score > best[0]:
            best = (score, q, tuple(keys))
    return best


def _fallback(pattern: torch.Tensor) -> tuple[float, int, tuple[int, ...]]:
    """Short prompts: the last token's strongest earlier key, ignoring the first token."""
    q = pattern.shape[0] - 1
    first = 1 if q >= 2 else 0
    last = q if q >= 2 else q + 1  # exclude the token itself when there is anything else to look at
    weights = pattern[q, first:last]
    k = int(weights.argmax()) + first
    return float(weights.max()), q, (k,)


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
    cfg = trace.config
    for name, value, limit in (("layer", layer, cfg.n_layers), ("head", head, cfg.n_heads)):
        if value is not None and not 0 <= value < limit:
            raise UserError(f"--{name} {value} is out of range: this model has {limit} {name}s (0..{limit - 1})")
    layers = [layer] if layer is not None else range(cfg.n_layers)
    heads = [head] if head is not None else range(cfg.n_heads)
    spans = word_spans(trace.pieces)
    story = len(spans) >= 3
    candidates = []
    for L in layers:
        pattern = trace[f"blocks.{L}.attn.hook_pattern"]
        for H in heads:
            score, q, keys = _story(pattern[H], spans) if story else (-1.0, -1, ())
            rule = "story"
            if q < 0:
                (score, q, keys), rule = _fallback(pattern[H]), "fallback"
            candidates.append((score, L, H, q, keys, rule))
    top = max(c[0] for c in candidates)
    near = [c for c in candidates if c[0] >= NEAR_BEST * top]
    score, L, H, q, keys, rule = min(near, key=lambda c: (c[1], -c[0]))
    pieces = trace.pieces
    target = " + ".join(repr(pieces[k]) for k in keys)
    auto = layer is None or head is None
    how = "picked automatically" if auto else "chosen by the user"
    if rule == "story":
        why = f"{repr(pieces[q])} gives {score:.2f} of its attention to {target}, the two words before it"
    else:
        why = f"{repr(pieces[q])} gives {score:.2f} of its attention to {target}, its strongest key (too few words for the two-word rule)"
    return HeadChoice(L, H, score, f"layer {L} head {H}, {how}: {why}", q, tuple(keys), auto)


# --------------------------------------------------------------------------- cached facts from weights

def _cache_file(kind: str, *parts: str):
    return cache_dir() / "analysis" / f"{kind}-{sha256_text(ANALYSIS_VERSION, kind, *parts)[:32]}.json"


def _cached(kind: str, parts: tuple[str, ...], compute):
    path = _cache_file(kind, *parts)
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # damaged: recomputed below
    value = compute()
    atomic_write_text(path, json.dumps(value, ensure_ascii=False))
    return value


_LOADED: dict[str, LoadedModel] = {}


def _load(model: str) -> LoadedModel:
    if model not in _LOADED:
        _LOADED[model] = load(model, "cpu")
    return _LOADED[model]


def _embeddings(model: str) -> torch.Tensor:
    return _load(model).model.weight("embed.W_E").detach().float()  # [vocab, d_model]


def model_facts(model: str = DEFAULT_MODEL) -> dict:
    """Parameter count (each tensor once, tied embeddings once) and the embedding matrix's corners."""
    def compute():
        loaded = _load(model)
        params = sum(p.numel() for p in loaded.model.parameters())
        W_E = _embeddings(model)
        rows = [0, 1, 2, W_E.shape[0] - 1]
        cols = [0, 1, 2, W_E.shape[1] - 1]
        return {
            "parameters": int(params),
            "W_E_shape": list(W_E.shape),
            "W_E_corner": {"rows": rows, "cols": cols, "values": W_E[rows][:, cols].tolist()},
        }
    return _cached("facts", (resolve(model).fingerprint,), compute)


def _nearest(W_E: torch.Tensor, vector: torch.Tensor, k: int, exclude: list[int], model: str) -> list[dict]:
    cos = torch.nn.functional.cosine_similarity(W_E, vector[None, :], dim=1)
    cos[exclude] = -2.0
    values, ids = cos.topk(k)
    pieces = _pieces(model, ids.tolist())
    return [{"id": int(i), "piece": p, "cosine": float(v)} for i, p, v in zip(ids, pieces, values)]


def _pieces(model: str, ids: list[int]) -> list[str]:
    from .tokenizer import token_pieces

    return token_pieces(_load(model).encoding, ids)


def neighbours(token_id: int, model: str = DEFAULT_MODEL, k: int = 5) -> list[dict]:
    """The k tokens whose input embeddings (rows of W_E) have the highest cosine with token_id's."""
    def compute():
        W_E = _embeddings(model)
        if not 0 <= token_id < W_E.shape[0]:
            raise UserError(f"token id {token_id} is outside this model's vocabulary")
        return _nearest(W_E, W_E[token_id], k, [token_id], model)
    return _cached("neighbours", (resolve(model).fingerprint, str(token_id), str(k)), compute)


def word_token(model: str, word: str) -> int:
    """The single token for ' word' (with its leading space); a UserError if it is several tokens."""
    encoding = _load(model).encoding
    text = " " + word.strip()
    ids = encoding.encode(text, allowed_special=set(), disallowed_special=())
    if len(ids) != 1:
        raise UserError(f"{text!r} is {len(ids)} tokens for this model's tokenizer; "
                        f"an analogy needs words that are one token each")
    return ids[0]


def analogy(words: tuple[str, str, str], model: str = DEFAULT_MODEL, k: int = 5) -> dict:
    """a - b + c on the model's input embeddings, and the k nearest tokens to the result (inputs excluded).

    Returns {"words", "ids", "pieces", "vectors" (the three rows, full length), "result"
    (the full sum), "nearest": [{"id", "piece", "cosine"}]}.
    """
    a, b, c = (w.strip() for w in words)

    def compute():
        W_E = _embeddings(model)
        ids = [word_token(model, w) for w in (a, b, c)]
        rows = W_E[ids]
        result = rows[0] - rows[1] + rows[2]
        return {
            "words": [a, b, c],
            "ids": ids,
            "pieces": _pieces(model, ids),
            "vectors": rows.tolist(),
            "result": result.tolist(),
            "nearest": _nearest(W_E, result, k, ids, model),
        }
    return _cached("analogy", (resolve(model).fingerprint, a, b, c, str(k)), compute)


def analogy_projection(analogies: list[tuple[str, str, str]], model: str = DEFAULT_MODEL) -> dict:
    """A 2-D PCA of the embeddings involved in the analogies (a, b, c and the top answer of each).

    Returns {"points": {piece: [x, y]}, "ids": {piece: id}, "explained": [var1, var2] (fractions),
    "direction_cosines": [cos(answer - a, c - b) per analogy]}: the cosine between each
    analogy's own difference and the b -> c difference, measured in all d_model dimensions.
    """
    def compute():
        W_E = _embeddings(model)
        ids: list[int] = []
        cosines = []
        for words in analogies:
            result = analogy(words, model)
            a, b, c = result["ids"]
            answer = result["nearest"][0]["id"]
            cosines.append(float(torch.nn.functional.cosine_similarity(W_E[answer] - W_E[a], W_E[c] - W_E[b], dim=0)))
            for i in (b, c, a, answer):
                if i not in ids:
                    ids.append(i)
        X = W_E[ids]
        X = X - X.mean(0, keepdim=True)
        U, S, V = torch.linalg.svd(X, full_matrices=False)
        coords = X @ V[:2].T  # [n, 2]
        var = (S**2) / (S**2).sum()
        pieces = _pieces(model, ids)
        return {
            "points": {p: coords[j].tolist() for j, p in enumerate(pieces)},
            "ids": {p: i for p, i in zip(pieces, ids)},
            "explained": var[:2].tolist(),
            "direction_cosines": cosines,
        }
    key = ";".join(",".join(w.strip() for w in words) for words in analogies)
    return _cached("projection", (resolve(model).fingerprint, key), compute)


# --------------------------------------------------------------------------- sampling

def generate(prompt: str, model: str = DEFAULT_MODEL, steps: int = 4, seed: int = 0, top_k: int = 5) -> list[dict]:
    """Extend the prompt token by token, each step a real forward pass (a cached trace).

    At each step the next token is sampled (torch.Generator seeded with `seed`) from the
    model's top_k tokens, renormalised; the text grows by that token's text. The first step
    is always there (the prompt's own prediction); later ones stop early when the text can
    no longer be traced (the tool's prompt-length limit) or at a token that is only part of
    a character. Returns one dict per step: {"prompt", "top": [{"id", "piece",
    "probability"}], "chosen"}, where "probability" is softmax(logits[-1])[id].
    """
    source = resolve(model)

    def compute():
        steps_out = []
        text = prompt
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            try:
                trace = get_trace(text, loaded=_load(model))
            except UserError:
                if not steps_out:
                    raise
                break
            probs = trace["logits"][-1].softmax(-1)
            values, ids = probs.topk(top_k)
            pick = int(torch.multinomial(values / values.sum(), 1, generator=generator))
            top = [{"id": int(i), "piece": p, "probability": float(v)}
                   for i, p, v in zip(ids, _pieces(model, ids.tolist()), values)]
            steps_out.append({"prompt": text, "top": top, "chosen": pick})
            piece = top[pick]["piece"]
            if piece.startswith("<0x"):
                break
            text = text + piece
        return steps_out
    return _cached("generate", (source.fingerprint, prompt, str(steps), str(seed), str(top_k)), compute)


# --------------------------------------------------------------------------- rotary position

def rope_pair(trace: Trace, layer: int, head: int, pos: int) -> dict:
    """One real 2-D pair of a query, before and after its rotary turn, for drawing.

    Picks, for token `pos`, the pair (2i, 2i+1) of query head `head` whose turn is easy to
    see (between 20 and 160 degrees) and whose length is largest. Returns {"pair": i,
    "angle": radians, "before": [x, y], "after": [x, y]} read from hook_q_pre_rope / hook_q.
    """
    from .transformer import rotary_angles

    cfg = trace.config
    if cfg.positional != "rotary":
        raise ValueError("rope_pair needs a rotary model")
    before = trace[f"blocks.{layer}.attn.hook_q_pre_rope"][pos, head]  # [d_head]
    after = trace[f"blocks.{layer}.attn.hook_q"][pos, head]
    angles = rotary_angles(cfg, pos + 1)[pos]  # [d_head/2]
    pairs = before.reshape(-1, 2)
    turn = torch.remainder(angles, 2 * torch.pi)
    visible = (turn > 0.35) & (turn < 2.8)
    norms = pairs.norm(dim=1) * visible
    i = int(norms.argmax()) if bool(visible.any()) else int(pairs.norm(dim=1).argmax())
    return {"pair": i, "angle": float(angles[i]), "before": pairs[i].tolist(),
            "after": after.reshape(-1, 2)[i].tolist()}
