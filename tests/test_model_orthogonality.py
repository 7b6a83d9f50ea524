"""The near-orthogonality experiment is real, bounded by theory, and reproducible."""

import math

import pytest

from facts.geometry import experiment, most_that_fit, spread_apart, welch_bound, worst_angle_error


def test_counts_are_achieved_and_within_the_welch_bound():
    for dim in (8, 32, 96):
        count = most_that_fit(dim, 2.0, seed=0)
        assert dim <= count <= welch_bound(dim, 2.0)
        assert worst_angle_error(spread_apart(dim, count, 2.0, seed=0)) <= 2.0  # really fits


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
