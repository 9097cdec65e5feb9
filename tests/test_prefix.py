"""Tail counts, compatible prefix sizes and cancellation weights (docs/math.md#prefix-tea)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import linalg

from tailext import cancellation_weights, prefix_sizes, tail_count
from tailext.prefix import tail_fraction_ratio
from error_text import error_text


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
        with pytest.raises(ValueError, match=rf"^`order` must be an integer in \[0, "
                                             rf"{len(sizes) - 1}\], got {order}\.$"):
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


@pytest.mark.parametrize("call, expected", [
    (lambda: prefix_sizes(8, tail_fraction=0.25, n_prefixes=3),
     "ValueError: `n` is too small for n_prefixes=3 prefixes with tail_fraction=0.25 (step "
     "q=4), got 8: prefix sizes [4, 8, 8] are not distinct and positive."),
    (lambda: prefix_sizes(12, tail_fraction=np.float32(0.1), n_prefixes=np.int64(2)),
     "ValueError: `n` is too small for n_prefixes=2 prefixes with tail_fraction=0.1 (step "
     "q=10), got 12: prefix sizes [12, 12] are not distinct and positive."),
    (lambda: prefix_sizes(12.0),
     "ValueError: `n` is too small for tail_fraction=0.25, got 12.0: the smallest prefix "
     "(n_1=4) keeps ceil(beta*n_1)=1 < 2 samples in its tail fit."),
    (lambda: prefix_sizes(128, n_prefixes=1),
     "ValueError: `n_prefixes` must be an integer >= 2, got 1."),
    (lambda: prefix_sizes(128, tail_fraction=1.5),
     "ValueError: `tail_fraction` must be in the open interval (0.0, 1.0), got 1.5."),
    (lambda: prefix_sizes(0), "ValueError: `n` must be an integer >= 1, got 0."),
    (lambda: prefix_sizes(True), "TypeError: `n` must be an integer, got True."),
    (lambda: cancellation_weights([]),
     "ValueError: `sizes` must be a non-empty 1-D array of prefix sizes, got shape (0,)."),
    (lambda: cancellation_weights([[4, 8]]),
     "ValueError: `sizes` must be a non-empty 1-D array of prefix sizes, got shape (1, 2)."),
    (lambda: cancellation_weights([4, 4, 8], order=1),
     "ValueError: `sizes` must be distinct positive integers, got [4, 4, 8]."),
    (lambda: cancellation_weights([0, 4, 8], order=1),
     "ValueError: `sizes` must be distinct positive integers, got [0, 4, 8]."),
    (lambda: cancellation_weights([4.5, 8], order=1),
     "TypeError: `sizes` must hold integers, got [4.5, 8]."),
    (lambda: cancellation_weights([4, np.nan], order=1),
     "TypeError: `sizes` must hold integers, got [4, nan]."),
    (lambda: cancellation_weights(["4", "8"], order=1),
     "TypeError: `sizes` must be a real numeric array, got dtype <U1."),
    (lambda: cancellation_weights([4, 8], order=2),
     "ValueError: `order` must be an integer in [0, 1], got 2."),
    (lambda: cancellation_weights([4, 8], order=-1),
     "ValueError: `order` must be an integer in [0, 1], got -1."),
    (lambda: cancellation_weights([4, 8], order=True),
     "TypeError: `order` must be an integer, got True."),
    (lambda: tail_count(0, 0.25), "ValueError: `group_size` must be an integer >= 1, got 0."),
    (lambda: tail_count(8, "0.25"), "TypeError: `tail_fraction` must be a real number, got '0.25'."),
])
def test_errors(call, expected):
    assert error_text(call) == expected


def test_float_sizes_with_integral_values_are_accepted():
    np.testing.assert_array_equal(cancellation_weights([44.0, 88.0, 128.0]),
                                  cancellation_weights([44, 88, 128]))
