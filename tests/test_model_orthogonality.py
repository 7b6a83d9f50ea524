"""The near-orthogonality experiment is real, bounded by theory, reproducible, and reaches the model's width."""

import math

import pytest

from facts.geometry import (CLEAR_FACTOR, MAX_DIM, ORTHOGONALITY_DIMS, experiment, most_that_fit, orthogonality,
                            orthogonality_dims, packing, welch_bound, worst_angle_error)


def test_counts_are_achieved_and_within_the_welch_bound():
    for dim in (8, 32, 96):
        vectors = packing(dim, 2.0, seed=0)
        count = len(vectors)
        assert count == most_that_fit(dim, 2.0, seed=0)  # seeded: the same search, the same packing
        assert vectors.shape == (count, dim) and dim <= count <= welch_bound(dim, 2.0)
        assert worst_angle_error(vectors) <= 2.0  # really fits, checked in float64


def test_more_room_than_dimensions_once_dimensions_grow():
    assert most_that_fit(128, 2.0, seed=0) > 128


def test_same_seed_same_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))
    first = experiment(dims=(8, 24), seed=3)
    assert experiment.uncached(dims=(8, 24), seed=3) == first  # recomputed, not read back
    assert list((tmp_path / "derived" / "orthogonality").glob("*.json"))  # and the first was cached


def test_welch_bound():
    assert welch_bound(10, 0.0) == pytest.approx(10)
    assert welch_bound(900, 2.0) == math.inf  # 900 * sin^2(2 deg) > 1: no limit from this bound
    assert welch_bound(576, 2.0) > 3 * 576


def test_dimensions_reach_the_model_width():
    assert orthogonality_dims(576) == tuple(d for d in ORTHOGONALITY_DIMS if d < 576) + (576,)  # SmolLM2: its own width
    assert orthogonality_dims(16) == (8, 16)  # a tiny model: up to its width, nothing wider
    assert orthogonality_dims(8) == (8,)
    assert orthogonality_dims(4096)[-1] == MAX_DIM  # wider models: as far as a build can afford
    assert all(a < b for a, b in zip(orthogonality_dims(576), orthogonality_dims(576)[1:]))


def test_where_the_slack_starts_to_pay():
    """SmolLM2's width, at 2 degrees: the count is N for small N, clearly more than N (1.5 N) only
    from some hundreds of dimensions on; and far from exponential: the Welch bound still caps it."""
    facts = orthogonality(576, seed=0)
    rows = facts["rows"]
    assert rows[-1]["dim"] == 576 and [r["dim"] for r in rows] == list(orthogonality_dims(576))
    first = facts["clearly_more"]
    assert first is next(r for r in rows if r["count"] >= CLEAR_FACTOR * r["dim"])
    assert all(r["count"] < CLEAR_FACTOR * r["dim"] for r in rows if r["dim"] < first["dim"])
    assert rows[0]["count"] == rows[0]["dim"] and 128 < first["dim"] <= 576
    assert all(r["count"] <= r["welch_bound"] for r in rows)
    assert rows[-1]["count"] < 4 * 576 and facts["welch_finite_until"] > 576  # no room for "exponentially many" yet
    assert orthogonality(16, seed=0)["clearly_more"] is None  # tiny widths: never clearly more
