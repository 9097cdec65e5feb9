"""TEA's own kernel (tailext._tea_kernel) against the framed prefix kernel, row patterns that
steer its selection onto every path: the counting search settled from either end of its
bracket, tied brackets, the quickselect fallback (one outlier, skewed rows) and the general
(framed) path.

Agreement: ≤ 1e-12 of spread/β per entry (the tolerance of tests/test_estimators.py: ψ's
bracket cancels near its zero, so rounding is relative to the linear term), tied-tail flags
equal, and the threshold exactly the k-th largest reward.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailext import _kernels
from tailext._tea_kernel import kth_largest, narrowed, tea_batch
from tailext.estimators import tail_settings_iv, top_blocks
from tailext.prefix import tail_count
from tailext.rules.tea import _first_thresholds


def _both(rewards, beta=0.25, n_target=128, scale_floor=None, raw=False):
    rewards = np.ascontiguousarray(rewards, dtype=np.float64)
    m = rewards.shape[1]
    settings = tail_settings_iv(beta, n_target, scale_floor)
    k, z = _first_thresholds(m, settings.tail_fraction)
    sizes, counts, weights = np.array([m]), np.array([k]), np.ones(1)
    framed = _kernels.prefix_tea_batch.serial(
        rewards, top_blocks(rewards, sizes, counts), sizes, counts, weights,
        settings.floor_abs, settings.floor_rel, settings.inv_beta, settings.kappa, raw)
    own = tea_batch.serial(rewards, k, z, settings.floor_abs, settings.floor_rel,
                           settings.inv_beta, settings.kappa, raw)
    return framed, own


def _assert_agree(rewards, beta=0.25, **options):
    for raw in (False, True):
        (want, want_tied, want_status), (got, tied, status) = _both(rewards, beta, raw=raw,
                                                                    **options)
        assert status.tolist() == want_status.tolist()
        assert tied.tolist() == want_tied.tolist()
        terms = np.ptp(rewards, axis=1) / beta
        assert np.all(np.abs(got - want) <= 1e-12 * terms[:, None]), np.abs(got - want).max()


rng = np.random.default_rng(7)
PATTERNS = {
    "normal": rng.normal(size=(64, 64)),
    "binary": rng.integers(0, 2, size=(64, 16)).astype(float),
    "few levels": rng.integers(0, 4, size=(64, 33)).astype(float),
    "ties at the threshold": np.repeat(rng.normal(size=(64, 8)), 4, axis=1),
    "one outlier": np.column_stack([rng.normal(size=(64, 40)), np.full(64, 1e6)]),
    "skewed": rng.exponential(size=(64, 64)) ** 6,
    "near ties": 1.0 + rng.integers(0, 3, size=(64, 64)) * 2.0 ** -50,
    "offset": 1e9 + rng.normal(size=(64, 64)),
    "tiny spread": 1e-200 * rng.normal(size=(64, 64)),
    "huge": 1e300 * rng.normal(size=(64, 64)),
    "large group": rng.normal(size=(4, 1024)),
    "small group": rng.normal(size=(64, 5)),
    "signed zeros": np.copysign(rng.integers(-1, 2, size=(64, 24)),
                                rng.choice([-1.0, 1.0], size=(64, 24))),
}


def _within_rounding_of_the_threshold(n_rows=64, m=16):
    """A value ``ĥ + ε`` just above the threshold ``ĥ`` among one or two copies of the
    maximum, shuffled: distinct from ``ĥ`` in reward units, but ``ĥ + ε − max == ĥ − max``
    in the frame (a two-level tail there) when ``ε`` is below half an ulp of ``max − ĥ``:
    ``[3e-256, 1, 0, …]`` and its like at other offsets."""
    h = rng.uniform(-2.0, 2.0, size=(n_rows, 1))
    top = h + rng.uniform(0.1, 3.0, size=(n_rows, 1))
    rows = np.repeat(h, m, axis=1)
    rows[:, 0] = np.where(h[:, 0] == 0.0, 3e-256, h[:, 0] + np.abs(h[:, 0]) * 2.0 ** -54
                          * 10.0 ** rng.uniform(-3.0, 3.0, size=n_rows))
    rows[:, 1] = top[:, 0]
    rows[::2, 2] = top[::2, 0]
    rows[0, :3] = [3e-256, 1.0, 0.0]
    rows[0, 3:] = 0.0
    return rng.permuted(rows, axis=1)


PATTERNS["within rounding of the threshold"] = _within_rounding_of_the_threshold()


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_agrees_with_the_framed_kernel(name):
    _assert_agree(PATTERNS[name])


@pytest.mark.parametrize("floor", [0.0, 0.3])
def test_absolute_floors_agree(floor):
    _assert_agree(PATTERNS["normal"], scale_floor=floor)
    _assert_agree(PATTERNS["few levels"], 0.4, scale_floor=floor)


def test_non_finite_and_constant_rows_take_the_general_path():
    rewards = rng.normal(size=(4, 32))
    rewards[1, 3] = np.nan
    rewards[2] = 5.0
    rewards[3, 0] = np.inf
    (want, _, want_status), (got, _, status) = _both(rewards)
    assert status.tolist() == want_status.tolist() == [0, _kernels.BAD_INPUT, 0,
                                                       _kernels.BAD_INPUT]
    assert np.array_equal(got[2], np.zeros(32)) and np.allclose(got[0], want[0], atol=1e-13)


@given(st.lists(st.integers(-3, 3), min_size=6, max_size=40), st.integers(1, 5),
       st.lists(st.booleans(), min_size=40, max_size=40))
def test_threshold_is_the_kth_largest(values, spread, negative_zero):
    """Any thresholds (here deliberately poor ones), any ties, zeros of either sign: exactly
    the k-th largest."""
    row = np.array(values, dtype=np.float64) * spread
    row[(row == 0) & np.array(negative_zero[:len(row)])] = -0.0
    m = len(row)
    k = tail_count(m, 0.25)
    want = np.sort(row)[m - k]
    above = np.maximum(row - want, 0.0)
    for ta, tb in [(-10.0, 10.0), (0.0, 0.0), (5.0, 6.0), (-0.5, 0.25)]:
        bracket = narrowed(-np.inf, m, np.inf, 0, k, ta, (row >= ta).sum(), tb,
                           (row >= tb).sum())
        h, d1, d2, n = kth_largest(row, m, k, *bracket, -100.0, 100.0)
        assert h == want
        if n != -1:  # the tail sums, where the selection gives them: about a threshold
            # near ĥ, at most a bit lost to cancellation (a few roundings per term)
            np.testing.assert_allclose([d1, d2], [above.sum(), (above ** 2).sum()],
                                       rtol=16 * m * 2.0 ** -53)
        if n >= 0:  # and the count where it gives it
            assert n == (row > want).sum()
