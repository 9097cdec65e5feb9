"""Tests of tailext.oracle: direct formula, enumeration, finite differences of V_N."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailext.evaluation import exact_best_of_n
from tailext.oracle import cosine, oracle_advantages, oracle_alignment, policy_update

tied_pools = st.lists(st.sampled_from([-3.0, -1.0, 0.0, 0.0, 0.5, 2.0, 7.0]), min_size=1,
                      max_size=12)


def direct_gain(pool, p, r, N):
    """g(r) = E[max(r, M_{N−1})] written straight from its definition (loops, no sorting)."""
    F = sum(pi for x, pi in zip(pool, p) if x <= r)
    distinct = sorted(set(pool))
    total = r * F ** (N - 1)
    for x in distinct:
        if x > r:
            Fx = sum(pi for y, pi in zip(pool, p) if y <= x)
            Fprev = sum(pi for y, pi in zip(pool, p) if y < x)
            total += x * (Fx ** (N - 1) - Fprev ** (N - 1))
    return total


@given(tied_pools, st.integers(1, 9), st.booleans())
def test_oracle_matches_direct_definition(pool, N, weighted):
    rng = np.random.default_rng(len(pool) * 31 + N)
    p = rng.dirichlet(np.ones(len(pool))) if weighted else np.full(len(pool), 1 / len(pool))
    out = oracle_advantages(pool, n_target=N, weights=p if weighted else None)
    V = exact_best_of_n(pool, p, N).mean[0]
    assert out.value == pytest.approx(V, rel=1e-12, abs=1e-12)
    expected = np.array([direct_gain(pool, p, r, N) for r in pool])
    np.testing.assert_allclose(out.gain, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.advantages, N * (expected - V), rtol=1e-11, atol=1e-11)
    # E_p[A*] = 0: the oracle advantage is centred under the pool distribution.
    assert p @ out.advantages == pytest.approx(0.0, abs=1e-10 * N * (1 + max(map(abs, pool))))


@pytest.mark.parametrize("N", [1, 2, 3])
def test_oracle_value_and_gain_against_enumeration_of_draws(N):
    pool = [0.0, 2.0, 2.0, -1.0, 5.0]
    M = len(pool)
    V = np.mean([max(pool[i] for i in t) for t in itertools.product(range(M), repeat=N)])
    out = oracle_advantages(pool, n_target=N)
    assert out.value == pytest.approx(V, rel=1e-13)
    for j, r in enumerate(pool):
        g = np.mean([max([r] + [pool[i] for i in t])
                     for t in itertools.product(range(M), repeat=N - 1)])
        assert out.gain[j] == pytest.approx(g, rel=1e-13)


@pytest.mark.parametrize("N", [2, 16, 128])
def test_oracle_advantage_is_the_softmax_gradient_of_v_n(N):
    """∇_θ V_N(softmax θ) = Σ_j p_j A*_j (e_j − p), checked by central finite differences."""
    rng = np.random.default_rng(N)
    pool = np.round(rng.normal(size=20), 1)  # rounding creates ties
    theta = rng.normal(size=20)

    def value(t):
        p = np.exp(t - t.max())
        return exact_best_of_n(pool, p / p.sum(), N).mean[0]

    p = np.exp(theta - theta.max())
    p /= p.sum()
    A = oracle_advantages(pool, n_target=N, weights=p).advantages
    analytic = p * A - p * (p @ A)  # Σ_j p_j A_j (e_j − p)
    h = 1e-5
    numeric = np.array([(value(theta + h * e) - value(theta - h * e)) / (2 * h)
                        for e in np.eye(20)])
    # Central differences: truncation O(h²·V''') ≈ 1e-9, rounding O(ε/h) ≈ 1e-11.
    np.testing.assert_allclose(analytic, numeric, atol=1e-7 * (1 + np.abs(numeric).max()))


def test_batched_oracle_equals_rows_and_all_equal_pool_gives_zero():
    pools = np.random.default_rng(0).normal(size=(4, 30))
    pools[2] = 1.5
    out = oracle_advantages(pools, n_target=8)
    for b in range(4):
        np.testing.assert_allclose(out.advantages[b],
                                   oracle_advantages(pools[b], n_target=8).advantages,
                                   rtol=1e-14, atol=1e-14)
    assert np.all(out.advantages[2] == 0.0) and out.value[2] == 1.5


def test_monte_carlo_update_aligns_with_exact_oracle_update():
    rng = np.random.default_rng(4)
    K, d, N = 200, 5, 64
    pool, S = rng.normal(size=K), rng.normal(size=(K, d))
    p = rng.dirichlet(np.ones(K))
    S = S - p @ S  # exact score of a softmax policy: φ − E_π φ
    A = oracle_advantages(pool, n_target=N, weights=p).advantages
    exact = oracle_alignment(A, S, pool, S, n_target=N, pool_weights=p)
    # An unweighted average over the support is not the policy's expectation.
    assert exact.cosine < 0.999
    idx = rng.choice(K, p=p, size=200_000)
    sampled = oracle_alignment(A[idx], S[idx], pool, S, n_target=N, pool_weights=p)
    # The sample average converges to the exact update; with 2e5 draws the relative error
    # of the update is ~ sd(A S)/(√n |u*|) ≈ 1e-2, so the cosine is above 0.99.
    assert sampled.cosine > 0.99
    assert np.allclose(exact.oracle_update, sampled.oracle_update)
    # The oracle rule on the pool itself is exactly aligned: cosine 1.
    self_weighted = policy_update(A, S, weights=p)
    assert cosine(self_weighted, exact.oracle_update) == pytest.approx(1.0, abs=1e-12)


def test_alignment_is_invariant_to_advantage_scale_and_sign_flips_it():
    rng = np.random.default_rng(9)
    r, S = rng.normal(size=(3, 40)), rng.normal(size=(3, 40, 4))
    A = r - r.mean(axis=1, keepdims=True)
    base = oracle_alignment(A, S, r, S, n_target=16).cosine
    assert oracle_alignment(5 * A, S, r, S, n_target=16).cosine == pytest.approx(base)
    assert oracle_alignment(-A, S, r, S, n_target=16).cosine == pytest.approx(-base)
    assert oracle_alignment(np.zeros_like(A), S, r, S, n_target=16).cosine == 0.0


@pytest.mark.parametrize("call, expected", [
    (lambda: oracle_advantages([1.0, np.nan]),
     "ValueError: non-finite reward nan in pool[1]; rewards must be finite (mark a reward that "
     "could not be computed invalid with `valid`)."),
    (lambda: oracle_advantages([1.0, 2.0], n_target=0),
     "ValueError: `n_target` must be an integer in [1, 9223372036854775807], got 0."),
    (lambda: oracle_advantages([1.0, 2.0], n_target=True),
     "TypeError: `n_target` must be an integer, got True."),
    (lambda: oracle_advantages([1.0, 2.0], weights=[1.0]),
     "ValueError: `weights` must have the shape of `pool` (2,), got (1,)."),
    (lambda: oracle_advantages([[1.0, 2.0]], weights=[[0.0, 0.0]]),
     "ValueError: `weights` must have a positive entry in every row, got all zeros in row 0."),
    (lambda: oracle_advantages([1.0, 2.0], weights=[1j, 1.0]),
     "TypeError: `weights` must be a real numeric array, got dtype complex128."),
    (lambda: oracle_alignment([1.0], [[1.0]], [[1.0]], [[[1.0]]]),
     "ValueError: `advantages` and `pool` must cover the same prompts, got shapes (1,) and "
     "(1, 1)."),
    (lambda: oracle_alignment([1.0], [[1.0]], [1.0], [[1.0, 2.0]]),
     "ValueError: `scores` and `pool_scores` must have the same dimension d, got 1 and 2."),
    (lambda: oracle_alignment([1.0], [[1.0]], [1.0], [[1.0]], pool_weights=[-1.0]),
     "ValueError: `pool_weights` must be finite and >= 0, got -1.0 at index (0,)."),
    (lambda: oracle_alignment([1.0], [[1.0]], [1.0], [[np.nan]]),
     "ValueError: non-finite score nan at `pool_scores` index (0, 0); scores must be finite."),
    (lambda: oracle_alignment([1.0], [[1.0]], [1.0], [[1.0]], n_target=0.5),
     "TypeError: `n_target` must be an integer, got 0.5."),
    (lambda: policy_update([1.0, 2.0], [[1.0]]),
     "ValueError: `scores` must have shape [m, d] = (2,) + (d,) to match the rewards, got "
     "(1, 1)."),
    (lambda: policy_update([1.0, 2.0], [[1.0], [1.0]], weights=["a", "b"]),
     "TypeError: `weights` must be a real numeric array, got dtype <U1."),
    (lambda: cosine([1.0], [1.0, 2.0]),
     "ValueError: `u` and `v` must have the same number of entries, got 1 and 2."),
    (lambda: cosine([1.0, np.nan], [1.0, 1.0]),
     "ValueError: `u` must be finite, got nan at index (1,)."),
    (lambda: cosine([1.0], [np.inf]), "ValueError: `v` must be finite, got inf at index (0,)."),
    (lambda: cosine(["a"], [1.0]),
     "TypeError: `u` must be a real numeric array, got dtype <U1."),
    (lambda: cosine([], []), "ValueError: `u` must not be empty, got shape (0,)."),
])
def test_errors(call, expected):
    try:
        call()
    except (TypeError, ValueError) as error:
        assert f"{type(error).__name__}: {error}" == expected
    else:
        raise AssertionError("expected an error")


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1.0, 1e200, 1e300])
def test_cosine_is_scale_invariant_near_the_float64_limits(scale):
    # Before: 1e200 entries overflowed the norms (nan), 1e-200 entries underflowed them (0.0).
    u, v = np.array([3.0, -1.0, 2.0]), np.array([1.0, 1.0, 0.5])
    expected = u @ v / np.sqrt((u @ u) * (v @ v))
    assert cosine(u * scale, v) == pytest.approx(expected, rel=1e-15)
    assert cosine(u * scale, v * scale) == pytest.approx(expected, rel=1e-15)
    assert cosine(u * scale, u * scale) == 1.0  # rounding never leaves [-1, 1]


def test_cosine_with_a_zero_vector_is_zero():
    assert cosine([0.0, 0.0], [1.0, 2.0]) == 0.0 == cosine([1.0], [0.0])
