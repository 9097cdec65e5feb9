"""TEA / Prefix-TEA estimators: numba kernels against the numpy reference, and properties.

Agreement: float64, ≤ 1e-12 relative to the magnitude of the row being compared (an entry
that is zero up to cancellation is judged against its row, not against itself). The
reference is evaluated on each row minus its maximum (exact up to one rounding relative to
the spread; the estimators are shift-invariant, ``τ̂`` shift-equivariant) and scaled by a
power of two near its spread (:func:`tailext.reference.exact_advantages`): on the raw rows its own rounding would be
relative to their offset (7e-12 of the row at an offset of 1e4 times the spread) and its
squares would underflow for rewards near 1e-308, neither of which the kernels, computing in
each row's frame, suffer.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tailext
from tailext.reference import exact_rows, unit_frame
from tailext import reference as ref
from tailext.testing.strategies import rewards_and_scores, tail_problems

RTOL = 1e-12
EPS = 2.0 ** -52


def assert_rows_close(actual, expected, rtol=RTOL, size=None):
    """Rows agree to ``rtol`` of their largest expected entry (or of ``size``, one per row,
    where the expected values are what is left after a cancellation)."""
    actual, expected = np.atleast_2d(actual), np.atleast_2d(expected)
    assert actual.shape == expected.shape
    scale = np.abs(expected).reshape(len(expected), -1).max(axis=1)
    if size is not None:
        scale = np.maximum(scale, size)
    scale = scale.reshape((-1,) + (1,) * (expected.ndim - 1))
    assert np.all(np.abs(actual - expected) <= rtol * scale), np.abs(actual - expected).max()


floors = st.sampled_from([None, 0.0, 0.3])
problems = tail_problems(batch_size=(1, 6), group_size=(2, 96))
prefix_problems = tail_problems(batch_size=(1, 4), group_size=(40, 200), n_prefixes=3,
                                tail_fraction=(0.1, 0.5))


def _framed(rewards):
    """Each row in its frame, ``(x[B, m], e[B])``: ``x = (r − max r)·2^-e`` (see tailext.reference.unit_frame)."""
    pairs = [unit_frame(row) for row in np.asarray(rewards, dtype=np.float64)]
    return np.array([x for x, _ in pairs]), [e for _, e in pairs]


def _floor(floor, e):
    return None if floor is None else math.ldexp(floor, -int(e))


@given(problems, floors)
def test_tail_vector_matches_reference(problem, floor):
    r = np.asarray(problem.rewards, dtype=np.float64)
    got = tailext.tail_vector(problem.rewards, tail_fraction=problem.tail_fraction,
                              scale_floor=floor)
    x, e = _framed(r)
    for b in range(len(r)):
        want = ref.tail_vector(x[b:b + 1], problem.tail_fraction, _floor(floor, e[b]))
        # threshold and mean move with the shift: adding it back rounds once more
        want = [r[b].max() + math.ldexp(want[0][0], e[b]),
                r[b].max() + math.ldexp(want[1][0], e[b]), math.ldexp(want[2][0], e[b])]
        spread = np.ptp(r[b])
        for g, w in zip(got, want):
            assert abs(g[b] - w) <= RTOL * spread + 2 * EPS * abs(w)


@given(problems, floors)
def test_tea_family_matches_reference(problem, floor):
    beta, n, r = problem.tail_fraction, problem.n_target, problem.rewards
    options = dict(tail_fraction=beta, n_target=n, scale_floor=floor)
    for method, function in [("tea", ref.tea), ("tea_raw", ref.tea_raw)]:
        want = exact_rows(lambda x, scale_floor: function(x, beta, n, scale_floor), r, 1,
                          {"scale_floor": floor})
        # ψ = (r − h)/β · [1 + κ/(2s)(r + h − 2μ)]: the bracket cancels near ψ's zero, so
        # rounding is relative to the linear term (r − h)/β ≤ spread/β, not to max|A|
        # (a kernel that sums in another order differs by ~1e-15 of spread/β there).
        terms = np.ptp(np.asarray(r, dtype=np.float64), axis=-1).reshape(-1) / beta
        assert_rows_close(tailext.advantages(r, method=method, **options), want, size=terms)


@given(problems)
def test_tied_tail_flags_match_reference(problem):
    beta, r = problem.tail_fraction, problem.rewards
    result = tailext.advantages(r, method="tea", tail_fraction=beta, return_info=True)
    flags = [bool(ref.tied_tails(x[None, :], beta)[0]) for x in _framed(r)[0]]
    assert result.discrete_groups == sum(flags)
    from tailext.rules.tea import tea_advantages

    kernel_flags = tea_advantages.rule.numpy(np.asarray(r, dtype=np.float64),
                                             tail_fraction=beta, n_target=128,
                                             scale_floor=None)[1]
    assert kernel_flags.tolist() == flags


@given(prefix_problems, st.sampled_from([(1, 2), (2, 3), (2, 4)]), floors)
def test_prefix_tea_matches_reference(problem, plan_shape, floor):
    order, count = plan_shape
    beta, n, r = problem.tail_fraction, problem.n_target, problem.rewards
    try:
        plan = tailext.prefix_plan(r.shape[1], tail_fraction=beta, order=order,
                                   n_prefixes=count)
    except ValueError:
        return
    got = tailext.prefix_tea_advantages(r, tail_fraction=beta, n_target=n, order=order,
                                        n_prefixes=count, scale_floor=floor,
                                        ordering="given")
    want = exact_rows(lambda x, scale_floor: ref.prefix_tea(x, plan.sizes, plan.weights, beta,
                                                            n, scale_floor),
                      r, 1, {"scale_floor": floor})
    # The weights reach |w| ~ 5 with opposite signs, and the prefix terms can cancel to a
    # residue of rounding size: compare against the size of a term (TEA's advantages).
    terms = exact_rows(lambda x, scale_floor: ref.tea(x, beta, n, scale_floor), r, 1,
                       {"scale_floor": floor})
    assert_rows_close(got, want, RTOL * np.abs(plan.weights).sum(),
                      size=np.abs(terms).max(axis=1))


def _gradient_rows(function, rewards, scores, floor):
    """``function(x[1, m], scores[1, m, d], floor) -> (value[1, d], bound[1, d])`` per row in
    the row's frame, both scaled back (ψ is scale-equivariant)."""
    x, e = _framed(rewards)
    values, bounds = [], []
    for b in range(len(x)):
        value, bound = function(x[b:b + 1], scores[b:b + 1], _floor(floor, e[b]))
        values.append(np.ldexp(value[0], e[b]))
        bounds.append(np.ldexp(bound[0], e[b]))
    return np.array(values), np.array(bounds)


@given(rewards_and_scores(batch_size=(1, 5), group_size=(10, 96), tail_fraction=0.25),
       floors)
# Cross-fits whose fitted half spans a few ulps of the row's maximum, the frame both halves
# share (found by hypothesis): the half's mean lies between two doubles there (the
# reference's sd was √(5/4) too large), or the half is constant there (ψ ≡ 0).
@example((np.array([[-2.0 ** -52, 0, 0, 0, 0, 1, 0, 0, 0, 0]]),
          np.linspace(-1.0, 1.0, 20).reshape(1, 10, 2)), None)
@example((np.array([[3.36301151e-105, 0, 0, 0, 0, 1, 0, 0, 0, 0]]),
          np.linspace(-1.0, 1.0, 10).reshape(1, 10, 1)), None)
def test_gradients_match_reference(pair, floor):
    r, scores = pair
    beta, n = 0.25, 64
    half = r.shape[1] // 2

    def direct(x, s, f):
        # Scale of the sums: Σ_i |ψ_i| |S_i| / m, which bounds the rounding of any ordering.
        magnitude = np.einsum("bm,bmd->bd", np.abs(ref.tea_raw(x, beta, n, f)),
                              np.abs(s)) / x.shape[1]
        return ref.direct_gradient(x, s, beta, n, f), magnitude

    def crossfit(x, s, f):
        value = ref.crossfit_gradient(x[:, :half], x[:, half:2 * half], s[:, half:2 * half],
                                      beta, n, f)
        magnitude = direct(x, s, f)[1]
        return value, np.abs(value).max(axis=1, keepdims=True) + magnitude.max(
            axis=1, keepdims=True)

    got = tailext.direct_gradient(r, scores, tail_fraction=beta, n_target=n,
                                  scale_floor=floor)
    want, magnitude = _gradient_rows(direct, r, scores, floor)
    assert np.all(np.abs(got - want) <= RTOL * magnitude.max(axis=1, keepdims=True) + 1e-300)
    got = tailext.crossfit_gradient(r[:, :half], r[:, half:2 * half],
                                    scores[:, half:2 * half], tail_fraction=beta,
                                    n_target=n, scale_floor=floor)
    want, bound = _gradient_rows(crossfit, r, scores, floor)
    assert np.all(np.abs(got - want) <= 2 * RTOL * bound + 1e-300)


@given(rewards_and_scores(batch_size=(1, 3), group_size=(80, 300), tail_fraction=0.25),
       st.booleans())
def test_prefix_gradient_matches_reference(pair, symmetric):
    r, scores = pair
    n = r.shape[1] // 2
    plan = tailext.prefix_plan(n, tail_fraction=0.25)

    def prefix(x, s, f):
        value = ref.prefix_tea_gradient(x, s, plan.sizes, plan.weights, 0.25, 128, symmetric)
        # Rounding bound: Σ_j |w_j| (1/n_j) Σ_i |ψ(r²_i; τ̂(B¹_{1:n_j}))| |S²_i|, both ways.
        halves = [(x[:, :n], x[:, n:2 * n], s[:, n:2 * n]),
                  (x[:, n:2 * n], x[:, :n], s[:, :n])]
        magnitude = 0.0
        for fit, evaluation, evaluation_scores in halves:
            for n_j, w_j in zip(plan.sizes, plan.weights):
                psi = ref.shaped_reward(evaluation[:, :n_j],
                                        *ref.tail_vector(fit[:, :n_j], 0.25), 0.25, 128)
                magnitude = magnitude + abs(w_j) / n_j * np.einsum(
                    "bm,bmd->bd", np.abs(psi), np.abs(evaluation_scores[:, :n_j]))
        return value, magnitude + 0.0 * value

    got = tailext.prefix_tea_gradient(r, scores, symmetric=symmetric)
    want, magnitude = _gradient_rows(prefix, r, scores, None)
    assert np.all(np.abs(got - want) <= RTOL * magnitude.max(axis=1, keepdims=True) + 1e-300)


def test_large_group_matches_reference():
    rng = np.random.default_rng(7)
    r = rng.normal(size=(3, 4096)) * 1e8 + 5e8
    options = {"scale_floor": None}
    assert_rows_close(tailext.tea_advantages(r), exact_rows(
        lambda x, scale_floor: ref.tea(x, 0.25, 128, scale_floor), r, 1, options))
    plan = tailext.prefix_plan(4096)
    assert_rows_close(tailext.prefix_tea_advantages(r, ordering="given"), exact_rows(
        lambda x, scale_floor: ref.prefix_tea(x, plan.sizes, plan.weights, 0.25, 128,
                                              scale_floor), r, 1, options),
        RTOL * np.abs(plan.weights).sum())


# ---- ψ (docs/math.md#psi) ----------------------------------------------------------------

def _psi(r, tau, beta=0.25, n=128):
    return tailext.shaped_reward(np.asarray(r, dtype=float), tau, tail_fraction=beta,
                                 n_target=n)


def test_psi_unfactored_form_and_zero_at_threshold():
    tau = tailext.TailVector(0.7, 1.3, 0.4)
    r = np.linspace(-1, 4, 101)
    kappa = tailext.kappa(0.25, 128)
    expected = np.where(r >= 0.7, ((r - 0.7) + kappa / 0.8 * ((r - 1.3) ** 2 - (0.7 - 1.3) ** 2))
                        / 0.25, 0.0)
    np.testing.assert_allclose(_psi(r, tau), expected, rtol=1e-12, atol=1e-12)
    assert _psi([0.7], tau)[0] == 0.0


def test_psi_sign_pattern_and_monotone_positive_part():
    h, mu, s = 0.7, 1.3, 0.4
    kappa = tailext.kappa(0.25, 128)
    root = 2 * mu - h - 2 * s / kappa  # ψ ≤ 0 on [h, root], > 0 and increasing above
    r = np.linspace(h, root + 3, 2001)
    psi = _psi(r, tailext.TailVector(h, mu, s))
    assert np.all(psi[r <= root] <= 1e-12)
    assert np.all(psi[r > root + 1e-9] > 0)
    assert np.all(np.diff(np.maximum(psi, 0.0)) >= 0)


@given(st.floats(-1e6, 1e6), st.floats(1e-3, 1e3))
def test_psi_shift_and_scale(shift, a):
    r = np.array([0.1, 0.5, 0.9, 1.4, 2.0, 3.5])
    tau = tailext.TailVector(0.9, 1.6, 0.5)
    base = _psi(r, tau)
    shifted = _psi(r + shift, tailext.TailVector(0.9 + shift, 1.6 + shift, 0.5))
    np.testing.assert_allclose(shifted, base, rtol=0, atol=1e-9 * max(1.0, abs(shift)))
    scaled = _psi(a * r, tailext.TailVector(0.9 * a, 1.6 * a, 0.5 * a))
    np.testing.assert_allclose(scaled, a * base, rtol=1e-12, atol=1e-300)


def test_psi_zero_scale_gives_zeros():
    assert np.all(_psi([1.0, 2.0, 3.0], tailext.TailVector(1.0, 2.0, 0.0)) == 0.0)


# ---- TEA advantage properties (docs/math.md#tea-clipping) ---------------------------------

def _normal_rows(seed, shape=(5, 64)):
    return np.random.default_rng(seed).normal(size=shape)


def test_tea_zero_sum_and_monotone():
    r = _normal_rows(1)
    A = tailext.tea_advantages(r)
    np.testing.assert_allclose(A.sum(axis=1), 0.0, atol=1e-12 * np.abs(A).max())
    order = np.argsort(r, axis=1)
    assert np.all(np.diff(np.take_along_axis(A, order, axis=1), axis=1) >= 0)


@given(st.floats(-1e4, 1e4), st.floats(1e-4, 1e4))
def test_tea_shift_invariant_scale_equivariant(shift, a):
    r = _normal_rows(2, (3, 32))
    A = tailext.tea_advantages(r)
    # Shift: rewards of size |shift| carry absolute rounding |shift|·ε into every step.
    np.testing.assert_allclose(tailext.tea_advantages(r + shift), A, rtol=0,
                               atol=1e-12 * max(1.0, abs(shift)) * np.abs(A).max() * 64)
    np.testing.assert_allclose(tailext.tea_advantages(a * r), a * A, rtol=1e-11,
                               atol=1e-12 * a * np.abs(A).max())


def test_tea_permutation_equivariant():
    r = _normal_rows(3)
    perm = np.random.default_rng(4).permutation(r.shape[1])
    np.testing.assert_allclose(tailext.tea_advantages(r[:, perm]),
                               tailext.tea_advantages(r)[:, perm], rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", ["tea", "tea_raw", "prefix_tea"])
def test_all_equal_group_gives_zeros(method):
    r = np.full((2, 64), 3.7)
    A = tailext.advantages(r, method=method)
    assert np.all(A == 0.0)


def test_float32_input_is_computed_in_float64():
    r = _normal_rows(5).astype(np.float32)
    out = tailext.tea_advantages(r)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, tailext.tea_advantages(r.astype(np.float64)))


@pytest.mark.parametrize("method", ["tea", "tea_raw", "prefix_tea"])
def test_inputs_not_modified(method):
    r = _normal_rows(6)
    before = r.copy()
    tailext.advantages(r, method=method)
    np.testing.assert_array_equal(r, before)
    scores = np.random.default_rng(0).normal(size=(5, 64, 2))
    kept = scores.copy()
    tailext.direct_gradient(r, scores)
    tailext.prefix_tea_gradient(r, scores)
    np.testing.assert_array_equal(r, before)
    np.testing.assert_array_equal(scores, kept)


def test_one_dimensional_input_is_one_group():
    r = _normal_rows(7)
    np.testing.assert_array_equal(tailext.tea_advantages(r[2]), tailext.tea_advantages(r)[2])
    tv = tailext.tail_vector(r[2])
    assert isinstance(tv.threshold, float)
    scores = np.ones((64, 3))
    assert tailext.direct_gradient(r[2], scores).shape == (3,)


def test_tail_vector_known_answer():
    r = np.arange(8.0)
    assert tailext.tail_vector(r, tail_fraction=0.25, scale_floor=0.0) == (6.0, 6.5, 0.5)
    # Here the default floor ½ √v_β · sd(group) ≈ 0.56 is above the raw tail sd 0.5.
    floor = 0.5 * np.sqrt(tailext.tail_moments(0.25).v) * r.std()
    assert tailext.tail_vector(r, tail_fraction=0.25).scale == pytest.approx(floor, rel=1e-14)
    # The default floor binds when the top-k are tight: ½ √v_β · sd(group).
    r = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    tv = tailext.tail_vector(r, tail_fraction=0.25)
    assert tv.scale == pytest.approx(0.5 * np.sqrt(tailext.tail_moments(0.25).v) * r.std())
    assert tailext.tail_vector(r, tail_fraction=0.25, scale_floor=0.0).scale == 0.0


def test_direct_gradient_is_raw_advantage_average():
    r = _normal_rows(8)
    scores = np.random.default_rng(9).normal(size=(5, 64, 4))
    expected = np.einsum("bm,bmd->bd", tailext.tea_raw_advantages(r), scores) / 64
    np.testing.assert_allclose(tailext.direct_gradient(r, scores), expected, rtol=1e-12,
                               atol=1e-14)


def test_prefix_tea_with_one_prefix_is_tea():
    r = _normal_rows(10)
    np.testing.assert_allclose(
        tailext.prefix_tea_advantages(r, order=0, n_prefixes=2).shape, r.shape)
    # order 0 with uniform weights over (m/2, m) prefixes: c = ½·2·ψ₊(half) + ½·ψ₊(all)
    plan = tailext.prefix_plan(64, order=0, n_prefixes=2)
    assert plan.sizes.tolist() == [32, 64]


def test_prefix_tea_symmetric_is_average_of_directions():
    rng = np.random.default_rng(11)
    r, s = rng.normal(size=(4, 200)), rng.normal(size=(4, 200, 2))
    forward = tailext.prefix_tea_gradient(r, s, symmetric=False)
    swapped = np.concatenate([r[:, 100:], r[:, :100]], axis=1)
    swapped_s = np.concatenate([s[:, 100:], s[:, :100]], axis=1)
    backward = tailext.prefix_tea_gradient(swapped, swapped_s, symmetric=False)
    np.testing.assert_allclose(tailext.prefix_tea_gradient(r, s), 0.5 * (forward + backward),
                               rtol=1e-12, atol=1e-15)
