"""Gaussian-tail constants: e_n, tail moments and κ (docs/math.md#constants)."""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import tailext
from tailext import expected_max_normal, kappa, tail_moments
from error_text import error_text


def _expected_max_density_form(n):
    """Independent check: the first form ∫ z n φ(z) Φ(z)^{n−1} dz by adaptive quadrature."""
    def integrand(z):
        return z * n * math.exp(-0.5 * z * z + (n - 1) * special.log_ndtr(z)) / math.sqrt(
            2 * math.pi)

    mode = math.sqrt(2 * math.log(n))
    edges = [-12.0, mode - 3.0, mode - 1.0, mode, mode + 1.0, mode + 3.0, 14.0]
    return sum(integrate.quad(integrand, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
               for a, b in zip(edges[:-1], edges[1:]))


def test_closed_forms():
    assert expected_max_normal(1) == 0.0
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-15)
    assert expected_max_normal(3) == pytest.approx(1.5 / math.sqrt(math.pi), abs=1e-15)


@pytest.mark.parametrize("n", [2, 5, 17, 128, 1000, 4096, 10_000])
def test_against_independent_quadrature(n):
    assert abs(expected_max_normal(n) - _expected_max_density_form(n)) < 1e-10


def test_large_n_is_finite_and_increasing():
    values = expected_max_normal(np.array([10**4, 10**5, 10**6, 10**7]))
    assert np.all(np.diff(values) > 0)
    # Gumbel limit: e_n ≈ b_n + γ/a_n with a_n = sqrt(2 log n) and
    # b_n = a_n − (log log n + log 4π)/(2 a_n); the error is O(1/log n) (≈ 0.013 at n = 1e6).
    n = 10**6
    a = math.sqrt(2 * math.log(n))
    b = a - (math.log(math.log(n)) + math.log(4 * math.pi)) / (2 * a)
    assert abs(values[2] - (b + np.euler_gamma / a)) < 0.03


def test_against_monte_carlo():
    rng = np.random.default_rng(20261129)
    n, reps = 16, 200_000
    maxima = rng.standard_normal((reps, n)).max(axis=1)
    se = maxima.std(ddof=1) / math.sqrt(reps)  # ≈ 0.0012
    assert abs(maxima.mean() - expected_max_normal(n)) < 4 * se


def test_array_input_keeps_shape():
    out = expected_max_normal(np.array([[1, 2], [3, 4]]))
    assert out.shape == (2, 2) and out[0, 0] == 0.0


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.25, 0.5, 0.9])
def test_tail_moments_match_truncnorm(beta):
    m = tail_moments(beta)
    assert m.z == pytest.approx(stats.norm.isf(beta), rel=1e-14)
    truncated = stats.truncnorm(a=m.z, b=np.inf)
    assert m.lam == pytest.approx(truncated.mean(), rel=1e-12)
    assert m.v == pytest.approx(truncated.var(), rel=1e-10)


@pytest.mark.parametrize("beta,n", [(0.25, 128), (0.1, 128), (0.5, 2), (0.05, 4096)])
def test_kappa_definition_and_gaussian_identity(beta, n):
    m = tail_moments(beta)
    k = kappa(beta, n)
    assert k == pytest.approx((expected_max_normal(n) - m.lam) / math.sqrt(m.v), rel=1e-15)
    # Exactly Gaussian rewards N(μ, σ²): μ_t + κ_N s = μ + σ e_N.
    mu, sigma = 3.0, 2.5
    assert mu + sigma * m.lam + k * sigma * math.sqrt(m.v) == pytest.approx(
        mu + sigma * expected_max_normal(n), rel=1e-14)


@pytest.mark.parametrize("bad, expected", [
    (0, "ValueError: `n` must be an integer in [1, 10000000], got 0."),
    (2.5, "TypeError: `n` must be an integer, got 2.5."),
    ("3", "TypeError: `n` must be an integer, got '3'."),
    (True, "TypeError: `n` must be an integer, got True."),
    (None, "TypeError: `n` must be an integer, got None."),
    (float("nan"), "TypeError: `n` must be an integer, got nan."),
    (10**8, "ValueError: `n` must be an integer in [1, 10000000], got 100000000."),
    (np.int64(-1), "ValueError: `n` must be an integer in [1, 10000000], got -1."),
    ([4, 0], "ValueError: `n` must be an integer in [1, 10000000], got 0."),
])
def test_expected_max_errors(bad, expected):
    assert error_text(lambda: expected_max_normal(bad)) == expected


@pytest.mark.parametrize("beta, n, expected", [
    (0.0, 128, "ValueError: `tail_fraction` must be in the open interval (0.0, 1.0), got 0.0."),
    (1.0, 128, "ValueError: `tail_fraction` must be in the open interval (0.0, 1.0), got 1.0."),
    (float("nan"), 128,
     "ValueError: `tail_fraction` must be in the open interval (0.0, 1.0), got nan."),
    (1e-9, 128, "ValueError: `tail_fraction` must be between 1/1000 and 999/1000 (it is read "
                "as the nearest fraction with denominator <= 1000), got 1e-09."),
    ("x", 128, "TypeError: `tail_fraction` must be a real number, got 'x'."),
    (True, 128, "TypeError: `tail_fraction` must be a real number, got True."),
    (0.25, 1, "ValueError: `n_target` must be an integer in [2, 10000000], got 1."),
    (0.25, 10**9, "ValueError: `n_target` must be an integer in [2, 10000000], got 1000000000."),
    (0.25, 3.5, "TypeError: `n_target` must be an integer, got 3.5."),
    (0.25, np.bool_(True), "TypeError: `n_target` must be an integer, got True."),
])
def test_kappa_errors(beta, n, expected):
    assert error_text(lambda: kappa(beta, n)) == expected


def test_tail_moments_errors():
    assert error_text(lambda: tail_moments(None)) == (
        "TypeError: `tail_fraction` must be a real number, got None.")


def test_public_alias():
    assert tailext.kappa is kappa
