"""Tail counts, compatible prefix sizes and cancellation weights (MATH §3, §5)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import linalg

from tailext import cancellation_weights, prefix_sizes, tail_count
from tailext.prefix import tail_fraction_ratio


def test_tail_count_is_exact_ceiling():
    assert tail_count(30, 0.1) == 3  # math.ceil(0.1 * 30) == 4 in floating point
    assert tail_count(64, 0.25) == 16
    assert tail_count(65, 0.25) == 17
    assert tail_count(7, 1 / 3) == 3


def test_worked_example():
    sizes = prefix_sizes(128, tail_fraction=0.25, n_prefixes=3)
    assert sizes.tolist() == [44, 88, 128]
    weights = cancellation_weights(sizes, order=2)
    np.testing.assert_allclose(weights, [0.524, -4.400, 4.876], atol=5e-4)


@given(n=st.integers(64, 5000), beta=st.sampled_from([0.05, 0.1, 0.2, 0.25, 1 / 3, 0.5]),
       count=st.integers(2, 5))
def test_prefix_sizes_properties(n, beta, count):
    q = tail_fraction_ratio(beta).denominator
    try:
        sizes = prefix_sizes(n, tail_fraction=beta, n_prefixes=count)
    except ValueError:
        return  # too small for this (β, J): the error itself is tested below
    assert sizes[-1] == n
    assert np.all(np.diff(sizes) > 0)
    assert np.all((sizes - n) % q == 0)  # same residue ⇒ same rounding offset δ
    deltas = {tail_count(int(s), beta) - beta * s for s in sizes}
    assert max(deltas) - min(deltas) < 1e-9
    # n_j / n → j / J with error at most q / n
    assert np.all(np.abs(sizes / n - np.arange(1, count + 1) / count) <= q / n + 1e-12)


@given(sizes=st.lists(st.integers(2, 10_000), min_size=2, max_size=6, unique=True),
       order=st.integers(0, 4))
def test_weights_moment_conditions_and_minimum_norm(sizes, order):
    sizes = np.sort(np.array(sizes))
    if len(sizes) < order + 1:
        with pytest.raises(ValueError, match="needs at least"):
            cancellation_weights(sizes, order=order)
        return
    w = cancellation_weights(sizes, order=order)
    ratios = sizes.max() / sizes
    system = np.vstack([ratios ** l for l in range(order + 1)])
    # Rows scaled to max 1: same solution set (their right-hand sides are 0), and the
    # scale at which rounding is judged.
    scaled = system / np.abs(system).max(axis=1, keepdims=True)
    if np.linalg.cond(scaled) > 1e8:
        return  # nearly coincident sizes: the moment system itself is ill-posed
    residual = scaled @ w - np.eye(order + 1)[0]
    assert np.all(np.abs(residual) <= 1e-10 * max(1.0, np.abs(w).sum()))
    # Minimum norm ⇔ w has no component in the null space of the system.
    null = linalg.null_space(scaled)
    if null.size:
        assert np.all(np.abs(null.T @ w) <= 1e-9 * np.linalg.norm(w))


def test_order_zero_is_uniform():
    np.testing.assert_allclose(cancellation_weights([10, 20, 40], order=0), [1 / 3] * 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=8, tail_fraction=0.25, n_prefixes=3), "not distinct"),
    (dict(n=12, tail_fraction=0.1, n_prefixes=2), "too small"),
    (dict(n=128, tail_fraction=0.25, n_prefixes=1), "`n_prefixes` must be an integer >= 2"),
    (dict(n=128, tail_fraction=1.5, n_prefixes=3), r"open interval \(0.0, 1.0\), got 1.5"),
])
def test_prefix_size_errors(kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        prefix_sizes(n, **kwargs)


@pytest.mark.parametrize("sizes,order,match,exc", [
    ([], 2, "non-empty 1-D", ValueError),
    ([4, 4, 8], 1, "distinct", ValueError),
    ([0, 4, 8], 1, "positive", ValueError),
    ([4.5, 8], 1, "integers", TypeError),
    ([4, 8], 2, "needs at least 3", ValueError),
    ([4, 8], -1, "`order` must be an integer >= 0, got -1", ValueError),
])
def test_weight_errors(sizes, order, match, exc):
    with pytest.raises(exc, match=match):
        cancellation_weights(sizes, order=order)
