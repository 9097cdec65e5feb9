"""Tests of tailext.evaluation: brute force, exact expectations, Gaussian theory, bootstrap."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from tailext import expected_max_normal, kappa, tail_vector
from tailext.evaluation import (best_of_n, exact_best_of_n, paired_bootstrap, qq_linearity,
                                tail_prediction, unbiased_weights, win_tie_loss)

# Small pools drawn from few distinct values so that ties are common.
tied_pools = st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.0, 1.0, 3.5, 1e6]), min_size=1,
                      max_size=8)


@given(tied_pools, st.data())
def test_unbiased_best_of_n_equals_mean_over_all_subsets(pool, data):
    n = data.draw(st.integers(1, len(pool)))
    brute = np.mean([max(s) for s in itertools.combinations(pool, n)])
    got = best_of_n(np.array(pool), n).per_prompt[0, 0]
    assert got == pytest.approx(brute, rel=1e-12, abs=1e-12 * max(map(abs, pool)))


@given(tied_pools, st.data())
def test_grouped_best_of_n_is_mean_of_consecutive_group_maxima(pool, data):
    M = len(pool)
    n = data.draw(st.sampled_from([d for d in range(1, M + 1) if M % d == 0]))
    expected = np.mean([max(pool[i:i + n]) for i in range(0, M, n)])
    assert best_of_n(pool, n, method="grouped").mean[0] == expected


@pytest.mark.parametrize("n", [1, 2, 7, 100, 2048, 4095, 4096])
def test_unbiased_weights_stable_for_4096_samples(n):
    M = 4096
    w = unbiased_weights(M, n)
    i = np.arange(n, M + 1)
    log_w = (special.gammaln(i) - special.gammaln(n) - special.gammaln(i - n + 1)
             - (special.gammaln(M + 1) - special.gammaln(n + 1) - special.gammaln(M - n + 1)))
    reference = np.exp(log_w)
    assert np.all(w[:n - 1] == 0.0) and np.all(w >= 0)
    # log-gamma differences of size ~3e4 carry ~1e-11 relative error; the product form is
    # accurate to O(M ε) ≈ 1e-12, so compare at 1e-9 where the weight is not negligible.
    big = reference > 1e-250
    np.testing.assert_allclose(w[n - 1:][big], reference[big], rtol=1e-9)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_unbiased_best_of_n_of_gaussians_matches_mu_plus_sigma_e_n():
    rng = np.random.default_rng(12)
    mu, sigma = 1.5, 2.0
    rewards = rng.normal(mu, sigma, size=(400, 256))
    ns = [1, 2, 8, 32, 128]
    out = best_of_n(rewards, ns)
    theory = mu + sigma * expected_max_normal(np.array(ns))
    # Prompts are independent, so the standard error over prompts is the estimator's SE.
    assert np.all(np.abs(out.mean - theory) < 4 * out.standard_error)
    grouped = best_of_n(rewards, ns, method="grouped")
    assert np.all(np.abs(grouped.mean - theory) < 4 * grouped.standard_error)
    # Rao–Blackwellization: the unbiased estimator never has the larger spread here.
    assert np.all(out.standard_error[1:] < grouped.standard_error[1:])


@given(st.lists(st.sampled_from([-1.0, 0.0, 0.0, 2.5, 4.0]), min_size=1, max_size=4),
       st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4), st.integers(1, 4))
def test_exact_best_of_n_equals_enumeration_of_all_draws(values, raw_weights, n):
    K = len(values)
    p = np.array(raw_weights[:K]) + 0.05
    p /= p.sum()
    brute = sum(np.prod(p[list(t)]) * max(values[i] for i in t)
                for t in itertools.product(range(K), repeat=n))
    assert exact_best_of_n(values, p, n).mean[0] == pytest.approx(brute, rel=1e-12, abs=1e-12)


def test_exact_best_of_n_agrees_with_monte_carlo_within_se():
    rng = np.random.default_rng(3)
    values, p = rng.normal(size=50), rng.dirichlet(np.ones(50))
    exact = exact_best_of_n(values, p, 16).mean[0]
    draws = values[rng.choice(50, p=p, size=(20000, 16))].max(axis=1)
    assert abs(draws.mean() - exact) < 4 * draws.std() / np.sqrt(draws.size)


def test_tail_prediction_is_tail_mean_plus_kappa_scale_and_compares_to_held_out():
    rewards = np.random.default_rng(5).normal(size=(30, 96))
    out = tail_prediction(rewards, [2, 16], fit_size=32, tail_fraction=0.25)
    tail = tail_vector(rewards[:, :32], tail_fraction=0.25)
    np.testing.assert_allclose(out.predicted[:, 1], tail.mean + kappa(0.25, 16) * tail.scale,
                               rtol=1e-14)
    np.testing.assert_allclose(out.held_out, best_of_n(rewards[:, 32:], [2, 16]).per_prompt)
    np.testing.assert_allclose(out.rmse, np.sqrt(((out.predicted - out.held_out) ** 2)
                                                 .mean(axis=0)))


def test_tail_prediction_of_gaussians_is_accurate_on_average():
    rng = np.random.default_rng(8)
    rewards = rng.normal(size=(300, 256 + 2048))
    out = tail_prediction(rewards, [64, 512], fit_size=256, tail_fraction=0.25)
    # Each prompt's error is independent; allow 4 SE plus the O(1/m) plug-in bias, which
    # for m = 256 is below 0.03 in sd units (Table 15's scale, docs/math.md#diagnostic).
    se = out.error.std(axis=0, ddof=1) / np.sqrt(300)
    assert np.all(np.abs(out.mean_error) < 4 * se + 0.03)


def test_paired_bootstrap_is_reproducible_and_columns_match_1d():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(80, 3)), rng.normal(size=(80, 3))
    first = paired_bootstrap(a, b, seed=7)
    again = paired_bootstrap(a, b, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(first.ci_low, again.ci_low)
    column = paired_bootstrap(a[:, 1], b[:, 1], seed=7)
    # Same resampling counts; only the matrix-product summation order differs.
    assert column.ci_low == pytest.approx(first.ci_low[1], rel=1e-12)
    assert column.ci_high == pytest.approx(first.ci_high[1], rel=1e-12)
    assert paired_bootstrap(a, b, seed=8).ci_low[0] != first.ci_low[0]
    assert first.mean_difference == pytest.approx((a - b).mean(axis=0))


def test_paired_bootstrap_coverage_and_standard_error():
    rng = np.random.default_rng(11)
    delta, P, reps = 0.3, 100, 200
    covered, ratio = 0, []
    for _ in range(reps):
        base = rng.normal(size=P)
        a = base + delta + rng.normal(size=P)
        out = paired_bootstrap(a, base, seed=rng)
        covered += out.ci_low <= delta <= out.ci_high
        ratio.append(out.standard_error / ((a - base).std(ddof=1) / np.sqrt(P)))
    # Binomial SE of a 95% coverage over 200 replications is 0.0154; allow 3 SE.
    assert abs(covered / reps - 0.95) < 3 * 0.0154
    # Bootstrap SE ≈ sd/√P (1000 resamples → ~2.2% relative noise per replication).
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.03)


def test_win_tie_loss_counts_with_tolerance():
    out = win_tie_loss([1.0, 2.0, 3.0, 0.0], [1.1, 2.0, 2.0, 1.0], tol=0.1 + 1e-12)
    assert (out.wins, out.ties, out.losses, out.n_prompts) == (1, 2, 1, 4)
    cols = win_tie_loss(np.zeros((5, 2)), np.zeros((5, 2)))
    assert cols.ties.tolist() == [5, 5]


def test_qq_linearity_matches_linregress_and_flags_constant_tails():
    rng = np.random.default_rng(2)
    rewards = np.vstack([rng.normal(size=(3, 200)), rng.exponential(size=(3, 200)) ** 2,
                         np.r_[np.zeros(100), np.ones(100)][None]])
    out = qq_linearity(rewards, tail_fraction=0.2)
    q = stats.norm.ppf((np.arange(160, 200) + 0.5) / 200)
    for p in range(6):
        fit = stats.linregress(q, np.sort(rewards[p])[160:])
        assert out.r_squared[p] == pytest.approx(fit.rvalue ** 2, rel=1e-12)
    assert out.degenerate.tolist() == [False] * 6 + [True]
    assert out.mean == pytest.approx(np.mean(out.r_squared[:6]))
    assert out.share_linear == pytest.approx(np.mean(out.r_squared[:6] >= 0.9))
    # A Gaussian tail is near-linear; a squared exponential's tail is strongly convex.
    assert out.r_squared[:3].min() > out.r_squared[3:6].max()


def test_inputs_are_not_modified():
    rewards = np.array([[3.0, 1.0, 2.0, 0.0]])
    copy = rewards.copy()
    best_of_n(rewards, 2)
    qq_linearity(np.tile(rewards, (1, 3)), tail_fraction=0.5)
    np.testing.assert_array_equal(rewards, copy)


_NONFINITE = ("rewards must be finite (mark a reward that could not be computed invalid with "
              "`valid`).")


@pytest.mark.parametrize("call, expected", [
    (lambda: best_of_n([[1.0, np.nan]], 1),
     f"ValueError: non-finite reward nan in row 0 of `rewards` (column 1); {_NONFINITE}"),
    (lambda: best_of_n([1.0, 2.0], 3),
     "ValueError: `n` must be <= the number of samples M = 2, got 3."),
    (lambda: best_of_n([1.0, 2.0], [1, 3.0]),
     "ValueError: `n[1]` must be <= the number of samples M = 2, got 3.0."),
    (lambda: best_of_n([1.0, 2.0], 0), "ValueError: `n` must be an integer >= 1, got 0."),
    (lambda: best_of_n([1.0, 2.0], 1.5), "TypeError: `n` must be an integer, got 1.5."),
    (lambda: best_of_n([1.0, 2.0], []),
     "ValueError: `n` must be an integer or a non-empty 1-D sequence of integers, got []."),
    (lambda: best_of_n([1.0, 2.0, 3.0], [1, 2], method="grouped"),
     "ValueError: `n` must divide the number of samples M = 3 for method='grouped', got "
     "[1, 2]; use method='unbiased' for any n <= M."),
    (lambda: best_of_n([1.0, 2.0], 1, method="mc"),
     "ValueError: `method` must be one of 'unbiased', 'grouped', got 'mc'."),
    (lambda: best_of_n([1.0, 2.0], 1, method="Unbiased"),
     "ValueError: `method` must be one of 'unbiased', 'grouped', got 'Unbiased'. Did you mean "
     "'unbiased'?"),
    (lambda: best_of_n([1.0, 2.0], 1, method="groupd"),
     "ValueError: `method` must be one of 'unbiased', 'grouped', got 'groupd'. Did you mean "
     "'grouped'?"),
    (lambda: best_of_n([1.0, 2.0], 1, method=None),
     "TypeError: `method` must be one of 'unbiased', 'grouped', got None."),
    (lambda: unbiased_weights(4, 5), "ValueError: `n` must be <= n_samples = 4, got 5."),
    (lambda: unbiased_weights(4.0, [2, 3]), "TypeError: `n` must be an integer, got [2, 3]."),
    (lambda: unbiased_weights(True, 1), "TypeError: `n_samples` must be an integer, got True."),
    (lambda: exact_best_of_n([1.0, 2.0], [1.0], 1),
     "ValueError: `weights` must have the shape of `values` (2,), got (1,)."),
    (lambda: exact_best_of_n([1.0, 2.0], [1.0, -1.0], 1),
     "ValueError: `weights` must be finite and >= 0, got -1.0 at index (1,)."),
    (lambda: exact_best_of_n([1.0, 2.0], [0.0, 0.0], 1),
     "ValueError: `weights` must have a positive entry in every row, got all zeros."),
    (lambda: exact_best_of_n([0.0, 1.0], [0.5 + 1j, 0.5], 2),
     "TypeError: `weights` must be a real numeric array, got dtype complex128."),
    (lambda: exact_best_of_n([0.0, 1.0], ["0.5", "0.5"], 2),
     "TypeError: `weights` must be a real numeric array, got dtype <U3."),
    (lambda: exact_best_of_n([0.0, 1.0], [0.5, 0.5], 10**30),
     "ValueError: `n` must be <= the int64 maximum = 9223372036854775807, got "
     "1000000000000000000000000000000."),
    (lambda: tail_prediction(np.zeros((2, 10)), 2, fit_size=10.0),
     "ValueError: `fit_size` must be < the number of samples M = 10 (the rest are held out), "
     "got 10.0."),
    (lambda: tail_prediction(np.zeros((2, 20)), 16, fit_size=8),
     "ValueError: `n` must be <= the number of held-out samples M - fit_size = 12, got 16."),
    (lambda: tail_prediction(np.zeros((2, 20)), 1, fit_size=8),
     "ValueError: `n` must be an integer >= 2, got 1."),
    (lambda: tail_prediction(np.zeros((2, 20)), 2, fit_size=4),
     "ValueError: fit size m=4 is too small for tail_fraction=0.25: the tail fit needs "
     "ceil(tail_fraction*m) >= 2 samples, got 1; use m >= 5 or a larger tail_fraction."),
    (lambda: paired_bootstrap([1.0, 2.0], [1.0]),
     "ValueError: `a` and `b` must have the same shape (paired by prompt), got (2,) and (1,)."),
    (lambda: paired_bootstrap([1.0, np.inf], [1.0, 2.0]),
     "ValueError: `a` must be finite, got inf at index (1,)."),
    (lambda: paired_bootstrap(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))),
     "ValueError: `a` must be [P] or [P, C] per-prompt scores with P >= 1, got shape "
     "(2, 2, 2)."),
    (lambda: paired_bootstrap([1.0], [1.0], confidence=1.0),
     "ValueError: `confidence` must be in the open interval (0.0, 1.0), got 1.0."),
    (lambda: paired_bootstrap([1.0], [1.0], confidence=True),
     "TypeError: `confidence` must be a real number, got True."),
    (lambda: paired_bootstrap([1.0], [1.0], n_resamples=1),
     "ValueError: `n_resamples` must be an integer >= 2, got 1."),
    (lambda: paired_bootstrap([1.0], [1.0], seed=-1),
     "ValueError: `seed` must be a non-negative integer, got -1."),
    (lambda: paired_bootstrap([1.0], [1.0], seed="x"),
     "TypeError: `seed` must be None, a non-negative integer or a numpy.random.Generator, "
     "got 'x'."),
    (lambda: paired_bootstrap(["a"], ["b"]),
     "TypeError: `a` must be a real numeric array, got dtype <U1."),
    (lambda: win_tie_loss([1.0], [1.0], tol=True),
     "TypeError: `tol` must be a real number, got True."),
    (lambda: win_tie_loss([1.0], [1.0], tol=np.float32(-0.5)),
     "ValueError: `tol` must be a finite number >= 0.0, got -0.5."),
    (lambda: qq_linearity(np.zeros((2, 8)), tail_fraction=0.25),
     "ValueError: QQ linearity needs at least 3 tail points, ceil(tail_fraction * M) >= 3, "
     "got 2 for tail_fraction=0.25 and M=8."),
    (lambda: qq_linearity(np.zeros((2, 40))),
     "ValueError: every prompt of `rewards` has a constant upper tail (e.g. 0/1 rewards); QQ "
     "linearity is undefined."),
    (lambda: qq_linearity(np.ones((1, 40)) * np.arange(40), threshold=2),
     "ValueError: `threshold` must be in the interval [0.0, 1.0], got 2."),
])
def test_errors(call, expected):
    try:
        call()
    except (TypeError, ValueError) as error:
        assert f"{type(error).__name__}: {error}" == expected
    else:
        raise AssertionError("expected an error")


def test_exact_best_of_n_normalizes_huge_and_tiny_weights():
    # Before: weights of 1e308 summed to inf and gave NaN; subnormal ones lost precision.
    expected = exact_best_of_n([0.0, 1.0], [1.0, 3.0], [1, 4]).mean
    for scale in (1e308 / 3, 1e-320, 1.0):
        got = exact_best_of_n([0.0, 1.0], np.array([1.0, 3.0]) * scale, [1, 4]).mean
        np.testing.assert_allclose(got, expected, rtol=1e-3 if scale < 1e-300 else 1e-15)


@pytest.mark.parametrize("scale", [1e-150, 1e-300, 1e150, 1e300])
def test_qq_linearity_is_scale_invariant(scale):
    # Before: rewards x 1e-150 made every tail "constant" (an absolute 1e-300 threshold).
    rewards = np.random.default_rng(3).normal(size=(5, 400))
    rewards[4] = 7.0  # one genuinely constant prompt
    base, scaled = qq_linearity(rewards), qq_linearity(rewards * scale)
    assert scaled.degenerate.tolist() == base.degenerate.tolist() == [False] * 4 + [True]
    np.testing.assert_allclose(scaled.r_squared[:4], base.r_squared[:4], rtol=1e-12)


def test_qq_linearity_degeneracy_is_relative_to_the_row():
    # A spread of 1e-14 on values near 1 is rounding; on values near 1e-14 it is the tail.
    noise = np.random.default_rng(4).normal(size=400)
    out = qq_linearity(np.stack([1.0 + 1e-14 * noise, 1e-14 * noise, noise]))
    assert out.degenerate.tolist() == [True, False, False]


def test_docstring_examples_of_evaluation_and_oracle_run():
    import doctest

    from tailext import evaluation, oracle
    for module in (evaluation, oracle):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
