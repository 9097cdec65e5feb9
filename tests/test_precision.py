"""Precision of every numpy rule over the whole float64 range, against the exact answer.

Rewards ``r = (u + c)·2^k`` with ``u`` unit-scale rows on a ``2^-28`` grid and ``c`` an
integer offset are exactly representable, and ``r`` minus its row maximum is exact (Sterbenz),
so the exact advantages are those of the reference in each row's frame (:func:`tailext.reference.exact_advantages`):
``2^(p·k')·A_ref(u')`` with ``u'`` at unit scale. A rule must match them to float64
rounding relative to the row — here at most ``ULPS`` units of ``2^-52 · max |A|`` (the
worst measured is 13.5 for Prefix-TEA, whose weights of both signs sum to ``Σ|w| ≈ 8``, and
under 3 for the others; see ``benchmarks/bench_precision.py``) — from reward scales of
``2^-1040`` (subnormal) to ``1.7e308`` and offsets of about 10^6 times the spread, and raise
a clear error exactly where the answer overflows float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import tailext
from tailext.reference import exact_advantages
from tailext.rules import get_rule

ULPS = 64
EPS = 2.0 ** -52
GRID = 2.0 ** -28
EXPONENTS = [-1040, -997, -565, -100, 0, 100, 512, 997, 1023]
OFFSET = 3 * 2 ** 20
CASES = [("tea", {}), ("tea", {"scale_floor": 0.3}), ("tea_raw", {}),
         ("prefix_tea", {"ordering": "given"}), ("grpo", {}), ("grpo", {"eps": 0.0, "ddof": 0}),
         ("mean_centred", {}), ("rloo", {}),
         ("bon_max_mean", {}), ("bon_max_second", {}),
         ("bon_max_second", {"normalize": True}), ("bon_mean", {}), ("maxk_loo1", {}),
         ("chow_bon_rl", {"seed": 0}), ("cat_bon", {})]


def unit_rows(seed=0, m=64):
    """Normal rows scaled to |u| < 1.9, four-level ties and a constant row, on the grid."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(3, m))
    normal *= 1.9 / np.abs(normal).max(axis=1, keepdims=True)
    ties = rng.integers(0, 4, size=(2, m)) * 0.6 - 0.9
    u = np.concatenate([normal, ties, np.full((1, m), 0.75)])
    return np.round(u / GRID) * GRID


def complete(method, options):
    return {**get_rule(method).options, **options}


def assert_exact(got, want, method, options):
    """``got`` within ``ULPS`` of each row's largest exact advantage (× Σ|w| for Prefix-TEA);
    exact zeros where the exact row is zero."""
    bound = ULPS * EPS
    if method == "prefix_tea":
        bound *= np.abs(tailext.prefix_plan(got.shape[1]).weights).sum()
    for g, w in zip(got, want):
        size = np.abs(w).max()
        assert np.all(np.abs(g - w) <= bound * size), (np.abs(g - w).max() / (EPS * size))


@pytest.mark.parametrize("offset", [0, OFFSET])
@pytest.mark.parametrize("exponent", EXPONENTS)
@pytest.mark.parametrize("method,options", CASES)
def test_exact_at_every_magnitude(method, options, exponent, offset):
    with np.errstate(over="ignore"):
        rewards = np.ldexp(unit_rows() + offset, exponent)
    if not np.all(np.isfinite(rewards)):
        pytest.skip("the offset rewards are beyond the float64 range")
    with np.errstate(over="ignore"):
        want = exact_advantages(rewards, method, complete(method, options))
    if not np.all(np.isfinite(want)):
        with pytest.raises(ValueError, match=r"non-finite advantage in group \d+, whose "
                                             r"rewards span .*outside the float64 range"):
            tailext.advantages(rewards, method=method, **options)
        return
    got = tailext.advantages(rewards, method=method, **options)
    assert_exact(got, want, method, options)


@pytest.mark.parametrize("method,options", CASES)
def test_rewards_spanning_the_whole_float64_range(method, options):
    """``±1.7e308`` in one row: the spread itself overflows (it is halved, exactly)."""
    rewards = np.ldexp(unit_rows(1), 1023)
    assert np.isinf(np.ptp(rewards[0]))
    with np.errstate(over="ignore"):
        want = exact_advantages(rewards, method, complete(method, options))
    if np.all(np.isfinite(want)):
        assert_exact(tailext.advantages(rewards, method=method, **options), want, method,
                     options)
    else:
        with pytest.raises(ValueError, match="outside the float64 range"):
            tailext.advantages(rewards, method=method, **options)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
@pytest.mark.parametrize("method,options", CASES)
def test_integers_beyond_2_53_are_exact(method, options, dtype):
    """``2^60 + small``: float64 cannot hold these integers, but their differences are
    exact, and the rules depend only on the differences."""
    small = np.random.default_rng(2).integers(0, 100, size=(3, 32))
    rewards = small.astype(dtype) + dtype(2 ** 60)
    want = exact_advantages(small.astype(np.float64), method, complete(method, options))
    assert_exact(tailext.advantages(rewards, method=method, **options), want, method,
                 options)
    valid = np.ones(rewards.shape, dtype=bool)
    valid[1, :5] = False
    masked = tailext.advantages(rewards, method=method, valid=valid, **options)
    assert np.all(masked[1, :5] == 0.0)
    if method != "chow_bon_rl":  # its random split depends on how the groups are packed
        assert_exact(masked[[0, 2]], want[[0, 2]], method, options)


def test_integers_beyond_2_53_keep_their_rounding_for_other_rules(monkeypatch):
    """A rule that does not claim shift invariance gets the rewards converted as they are."""
    from tailext.rules import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # kept local
    seen = {}

    @tailext.register_rule("record_demo", replace=True)
    def record(rewards):
        seen["rewards"] = rewards.copy()
        return np.zeros_like(rewards)

    tailext.advantages(np.array([2 ** 60, 2 ** 60 + 1]), method="record_demo")
    np.testing.assert_array_equal(seen["rewards"], [[2.0 ** 60, 2.0 ** 60]])


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("method,options", CASES)
def test_low_precision_inputs_are_converted_exactly(method, options, dtype):
    rewards = (np.random.default_rng(3).normal(size=(3, 32)) * 100).astype(dtype)
    want = exact_advantages(rewards.astype(np.float64), method, complete(method, options))
    assert_exact(tailext.advantages(rewards, method=method, **options), want, method,
                 options)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", sorted(set(m for m, _ in CASES)))
def test_non_finite_rewards_are_named(method, bad):
    options = {"seed": 0} if method == "chow_bon_rl" else {}
    rewards = np.random.default_rng(4).normal(size=(3, 64))
    rewards[2, 5] = bad
    with pytest.raises(ValueError, match=rf"non-finite reward {bad} in row 2 of `rewards` "
                                         r"\(column 5\)"):
        tailext.advantages(rewards, method=method, **options)
    with pytest.raises(ValueError, match=rf"non-finite reward {bad} in rewards\[5\]"):
        tailext.advantages(rewards[2], method=method, **options)
    valid = np.ones(rewards.shape, dtype=bool)
    valid[2, 5] = False  # an invalid entry may hold anything
    assert np.all(np.isfinite(tailext.advantages(rewards, method=method, valid=valid,
                                                 **options)))


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e300])
def test_tail_vector_is_exact_at_every_magnitude(scale):
    from tailext import reference

    u = unit_rows()[:3]
    rewards = u * scale
    got = tailext.tail_vector(rewards)
    want = reference.tail_vector(u, 0.25)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w * scale, rtol=16 * EPS, atol=0)
    rewards = np.ldexp(unit_rows(1)[:3], 1023)  # spread beyond the float64 maximum
    h, mu, s = tailext.tail_vector(rewards)
    assert np.all(np.isfinite(s)) and np.all(s > 0)
    np.testing.assert_allclose(s, np.ldexp(reference.tail_vector(unit_rows(1)[:3], 0.25)[2],
                                           1023), rtol=16 * EPS)
