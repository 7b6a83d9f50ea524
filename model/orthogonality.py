"""How many directions fit in N dimensions when "perpendicular" may be off by a few degrees?

Exactly perpendicular: at most N. Nearly perpendicular (every pair within +-tolerance of 90
degrees): more, and the surplus grows with N. This module measures it with a real
experiment: for each N, gradient descent pushes K random unit vectors apart until every
pair's angle is within tolerance; K grows until that fails. It also gives the Welch bound,
the most that can possibly fit, which explains where the growth goes next.
"""

from __future__ import annotations

import json
import math

import torch

from .files import atomic_write_text, cache_dir, sha256_text

EXPERIMENT_FORMAT = "1"


def worst_angle_error(vectors: torch.Tensor) -> float:
    """Largest |angle - 90 degrees| over all pairs of rows, in degrees."""
    unit = torch.nn.functional.normalize(vectors, dim=1)
    cos = unit @ unit.T
    cos.fill_diagonal_(0)
    return math.degrees(math.asin(min(1.0, float(cos.abs().max()))))


def spread_apart(dim: int, count: int, tolerance_deg: float, seed: int, steps: int = 400) -> torch.Tensor:
    """Try to place `count` unit vectors in `dim` dimensions, every pair within tolerance of 90 degrees."""
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(count, dim, generator=generator).requires_grad_()
    limit = math.sin(math.radians(tolerance_deg))  # |cos| allowed: cos(90 +- t) = -+sin(t)
    optimiser = torch.optim.Adam([vectors], lr=0.02)
    for _ in range(steps):
        unit = torch.nn.functional.normalize(vectors, dim=1)
        cos = (unit @ unit.T).fill_diagonal_(0)  # [count, count]
        excess = (cos.abs() - 0.9 * limit).clamp(min=0)  # aim a little inside the band
        if float(cos.detach().abs().max()) <= limit:
            break
        optimiser.zero_grad()
        excess.pow(2).sum().backward()
        optimiser.step()
    return vectors.detach()


def most_that_fit(dim: int, tolerance_deg: float, seed: int, growth: float = 1.1) -> int:
    """The largest count (on a grid growing by `growth`) that the optimiser packs within tolerance."""
    best, count = dim, dim  # dim exactly perpendicular vectors always fit
    while True:
        count = max(count + 1, int(count * growth))
        if worst_angle_error(spread_apart(dim, count, tolerance_deg, seed)) > tolerance_deg:
            return best
        best = count


def welch_bound(dim: int, tolerance_deg: float) -> float:
    """The most unit vectors in `dim` dimensions whose pairwise |cos| can all be <= sin(tolerance).

    From Welch: max |cos| >= sqrt((K - N) / (N (K - 1))). Infinite once N sin^2(t) >= 1.
    """
    e2 = math.sin(math.radians(tolerance_deg)) ** 2
    return math.inf if dim * e2 >= 1 else dim * (1 - e2) / (1 - dim * e2)


def experiment(dims: tuple[int, ...] = (8, 16, 32, 64, 128, 192, 256, 320, 384), tolerance_deg: float = 2.0, seed: int = 0) -> list[dict]:
    """Counts for each dimension, cached on disk (same arguments, same numbers)."""
    key = sha256_text(EXPERIMENT_FORMAT, repr(dims), repr(tolerance_deg), str(seed), torch.__version__)
    path = cache_dir() / "experiments" / f"orthogonality-{key[:16]}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            pass
    rows = [{"dim": d, "count": most_that_fit(d, tolerance_deg, seed), "welch_bound": welch_bound(d, tolerance_deg),
             "tolerance_deg": tolerance_deg, "seed": seed} for d in dims]
    atomic_write_text(path, json.dumps(rows))
    return rows
