"""Geometry of the model's vector spaces: embedding neighbours and analogies on the model's own
W_E, and how many nearly perpendicular directions fit in N dimensions.

How many directions fit in N dimensions when "perpendicular" may be off by a few degrees?

Exactly perpendicular: at most N. Nearly perpendicular (every pair within +-tolerance of 90
degrees): more, and the surplus grows with N. This module measures it with a real
experiment: for each N, gradient descent pushes K random unit vectors apart until every
pair's angle is within tolerance; K grows until that fails. It also gives the Welch bound,
the most that can possibly fit, which explains where the growth goes next.
"""

from __future__ import annotations

import math

import torch

from model.cache import cached
from model.errors import UserError
from model.loading import DEFAULT_MODEL, shared
from model.tokenizer import token_pieces
from model.trace import one_thread

ORTHOGONALITY_DIMS = (8, 16, 32, 64, 128, 256, 384, 448)  # measured below the model's width, then the width itself
MAX_DIM = 576  # the widest measured at build time (SmolLM2's d_model: about 15 s on one idle core, most of the experiment)
TOLERANCE_DEG = 2.0
CLEAR_FACTOR = 1.5  # "clearly more directions than dimensions": the count at least this many times N
STEPS = 100  # gradient steps a packing gets to settle (the successful ones need 25 to 65)


def orthogonality_dims(d_model: int) -> tuple[int, ...]:
    """The dimensions measured for a model: the grid below its width, then the width itself
    (MAX_DIM for wider models: beyond it the experiment is too slow for a build)."""
    top = min(d_model, MAX_DIM)
    return tuple(d for d in ORTHOGONALITY_DIMS if d < top) + (top,)


def worst_angle_error(vectors: torch.Tensor) -> float:
    """Largest |angle - 90 degrees| over all pairs of rows, in degrees (computed in float64)."""
    unit = torch.nn.functional.normalize(vectors.double(), dim=1)
    cos = unit @ unit.T
    cos.fill_diagonal_(0)
    return math.degrees(math.asin(min(1.0, float(cos.abs().max()))))


def settle(vectors: torch.Tensor, tolerance_deg: float, steps: int = STEPS) -> torch.Tensor | None:
    """Adam pushes the rows apart until every pair's angle is within tolerance of 90 degrees:
    the unit rows, or None when `steps` were not enough.

    The loss is the sum over pairs of (|cos| - 0.9 sin(tolerance))^2 where positive (aiming a
    little inside the band); its gradient is written out (two matrix products a step instead of
    autograd's three): d/d unit = 4 G unit with G = sign(cos) (|cos| - m)+, then through the
    normalisation."""
    limit = math.sin(math.radians(tolerance_deg))  # |cos| allowed: cos(90 +- t) = -+sin(t)
    v = vectors.clone()
    optimiser = torch.optim.Adam([v], lr=0.01)
    for _ in range(steps + 1):
        norm = v.norm(dim=1, keepdim=True)
        unit = v / norm
        cos = (unit @ unit.T).fill_diagonal_(0)  # [count, count]
        size = cos.abs()
        if float(size.max()) <= limit:
            return unit if worst_angle_error(unit) <= tolerance_deg else None  # checked again in float64
        g = size.sub_(0.9 * limit).clamp_(min=0).mul_(cos.sign_()).mul_(4)
        g_unit = g @ unit
        v.grad = (g_unit - unit * (g_unit * unit).sum(1, keepdim=True)) / norm
        optimiser.step()
    return None


def packing(dim: int, tolerance_deg: float, seed: int, growth: float = 1.1) -> torch.Tensor:
    """The most unit vectors this search packs in `dim` dimensions, every pair within tolerance of
    90 degrees: [count, dim].

    It starts from `dim` exactly perpendicular vectors (a random orthonormal basis), then grows:
    10% more random unit vectors join the packing found so far, and `settle` gets STEPS steps to
    make room; the first growth that does not settle ends the search. A lower bound on what fits."""
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))[0].float()
    while True:
        count = max(len(vectors) + 1, int(len(vectors) * growth))
        new = torch.nn.functional.normalize(torch.randn(count - len(vectors), dim, generator=generator), dim=1)
        settled = settle(torch.cat([vectors, new]), tolerance_deg)
        if settled is None:
            return vectors
        vectors = settled


def most_that_fit(dim: int, tolerance_deg: float, seed: int) -> int:
    return len(packing(dim, tolerance_deg, seed))


def welch_bound(dim: int, tolerance_deg: float) -> float:
    """The most unit vectors in `dim` dimensions whose pairwise |cos| can all be <= sin(tolerance).

    From Welch: max |cos| >= sqrt((K - N) / (N (K - 1))). Infinite once N sin^2(t) >= 1.
    """
    e2 = math.sin(math.radians(tolerance_deg)) ** 2
    return math.inf if dim * e2 >= 1 else dim * (1 - e2) / (1 - dim * e2)


@cached("orthogonality", packages=("facts",))  # a pure experiment: no model code involved
def experiment(dims: tuple[int, ...] = ORTHOGONALITY_DIMS, tolerance_deg: float = TOLERANCE_DEG, seed: int = 0,
               torch_version: str = torch.__version__) -> list[dict]:
    """Counts for each dimension (same arguments, same numbers). One thread: small matrices run
    fastest that way, and stay fast on a busy machine. Up to 576 dimensions: about 15 s on an
    idle core, 30 s on a busy one."""
    with one_thread():
        return [{"dim": d, "count": most_that_fit(d, tolerance_deg, seed), "welch_bound": welch_bound(d, tolerance_deg),
                 "tolerance_deg": tolerance_deg, "seed": seed} for d in dims]


def orthogonality(d_model: int, seed: int, dims: tuple[int, ...] | None = None,
                  tolerance_deg: float = TOLERANCE_DEG) -> dict:
    """The near-perpendicular experiment (cached, seeded) up to the model's width, plus what it
    says about d_model.

    Returns {"rows" (dim, count, welch_bound per measured dim), "d_model", "welch_at_d_model"
    (math.inf when the bound says nothing), "welch_finite_until" (the last dimension with a
    finite bound: past it, theory no longer caps the count near N), "ratio_at_largest" (count /
    dim at the largest measured dim), "clear_factor" and "clearly_more" (the first measured row
    whose count is at least clear_factor times its dimension, or None)}.
    """
    rows = experiment(tuple(dims or orthogonality_dims(d_model)), tolerance_deg, seed)
    last = rows[-1]
    e2 = math.sin(math.radians(tolerance_deg)) ** 2
    return {
        "rows": rows,
        "tolerance_deg": tolerance_deg,
        "seed": seed,
        "d_model": d_model,
        "welch_at_d_model": welch_bound(d_model, tolerance_deg),
        "welch_finite_until": math.ceil(1 / e2) - 1,
        "ratio_at_largest": last["count"] / last["dim"],
        "clear_factor": CLEAR_FACTOR,
        "clearly_more": next((r for r in rows if r["count"] >= CLEAR_FACTOR * r["dim"]), None),
    }


# --------------------------------------------------------------------------- the model's embeddings

def _embeddings(model: str) -> torch.Tensor:
    return shared(model).model.weight("embed.W_E").detach().float()  # [vocab, d_model]


@cached("embedding-corner")
def embedding_corner(model: str) -> dict:
    """The embedding matrix's shape and corners: {"shape", "rows", "cols", "values"}."""
    W_E = _embeddings(model)
    rows = [0, 1, 2, W_E.shape[0] - 1]
    cols = [0, 1, 2, W_E.shape[1] - 1]
    return {"shape": list(W_E.shape), "rows": rows, "cols": cols, "values": W_E[rows][:, cols].tolist()}


@cached("embedding-row")
def embedding_row(model: str, token_id: int) -> list[float]:
    """One whole row of the embedding matrix, as stored (before any embedding scale)."""
    return _embeddings(model)[int(token_id)].tolist()


def _nearest(W_E: torch.Tensor, vector: torch.Tensor, k: int, exclude: list[int], model: str) -> list[dict]:
    cos = torch.nn.functional.cosine_similarity(W_E, vector[None, :], dim=1)
    cos[exclude] = -2.0
    values, ids = cos.topk(k)
    pieces = _pieces(model, ids.tolist())
    return [{"id": int(i), "piece": p, "cosine": float(v)} for i, p, v in zip(ids, pieces, values)]


def _pieces(model: str, ids: list[int]) -> list[str]:
    return token_pieces(shared(model).encoding, ids)


@cached("neighbours")
def neighbours(token_id: int, model: str = DEFAULT_MODEL, k: int = 5) -> list[dict]:
    """The k tokens whose input embeddings (rows of W_E) have the highest cosine with token_id's."""
    W_E = _embeddings(model)
    if not 0 <= token_id < W_E.shape[0]:
        raise UserError(f"token id {token_id} is outside this model's vocabulary")
    return _nearest(W_E, W_E[token_id], k, [token_id], model)


def word_token(model: str, word: str) -> int:
    """The single token for ' word' (with its leading space); a UserError if it is several tokens."""
    encoding = shared(model).encoding
    text = " " + word.strip()
    ids = encoding.encode(text, allowed_special=set(), disallowed_special=())
    if len(ids) != 1:
        raise UserError(f"{text!r} is {len(ids)} tokens for this model's tokenizer; "
                        f"an analogy needs words that are one token each")
    return ids[0]


@cached("analogy")
def analogy(words: tuple[str, str, str], model: str = DEFAULT_MODEL, k: int = 5) -> dict:
    """a - b + c on the model's input embeddings, and the k nearest tokens to the result (inputs excluded).

    Returns {"words", "ids", "pieces", "vectors" (the three rows, full length), "result"
    (the full sum), "nearest": [{"id", "piece", "cosine"}]}.
    """
    a, b, c = (w.strip() for w in words)
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


@cached("projection")
def analogy_projection(analogies: list[tuple[str, str, str]], model: str = DEFAULT_MODEL) -> dict:
    """A 2-D PCA of the embeddings involved in the analogies (a, b, c and the top answer of each).

    Returns {"points": {piece: [x, y]}, "ids": {piece: id}, "explained": [var1, var2] (fractions),
    "direction_cosines": [cos(answer - a, c - b) per analogy]}: the cosine between each
    analogy's own difference and the b -> c difference, measured in all d_model dimensions.
    """
    W_E = _embeddings(model)
    ids: list[int] = []
    cosines = []
    for words in analogies:
        result = analogy(tuple(words), model)
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
