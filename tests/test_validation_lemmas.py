"""Lemma checks of ``tailext validate lemmas`` (quadrature, no randomness)."""

import math

import numpy as np
import pytest
from scipy import integrate

from tailext import expected_max_normal
from tailext.validate.montecarlo.model import diagnostic_model
from tailext.validate.theory.lemmas import (SplicedDensity, best_of_n_gap, lemma1_check,
                                            lemma2_check, tilted_gradient)


def test_lemma2_finite_differences_match_expected_psi_score():
    # Lemma 2 (docs/math.md#psi-derivation): ∇(μ_t + κ_N s) = E[ψ(R; τ*) S], to 1e-6
    # (quadrature and Richardson differences reach ~1e-12).
    (row,) = lemma2_check(thetas=((0.4, -0.3),), tail_fraction=0.25, n_target=64)
    assert row["max_abs_error"] <= 1e-6, row


def test_tilted_gradient_at_zero_is_the_appendix_e_gradient():
    # at θ = 0 the tilted family is N(0,1) and its score is the Appendix E score
    np.testing.assert_allclose(tilted_gradient((0.0, 0.0)), diagnostic_model().true_gradient,
                               rtol=0, atol=1e-11)


@pytest.mark.parametrize("n", [2, 5])
def test_spliced_density_gap_matches_direct_integral(n):
    # independent route: V_N = ∫ N r p F^{N−1} over the whole line (no scaling, no split of
    # the Gaussian part), minus e_N (= μ_t + κ_N s under the Gaussian tail)
    density = SplicedDensity(upper_mass=0.3, rate=1.0)
    a = density.splice
    v_n = sum(integrate.quad(lambda r: n * r * density.pdf(r)
                             * math.exp((n - 1) * density.log_cdf(r)), lo, hi,
                             epsabs=1e-14, epsrel=1e-13, limit=400)[0]
              for lo, hi in ((-80.0, a), (a, 40.0)))
    scaled, log_factor, surrogate_error = best_of_n_gap(density, n)
    assert abs(scaled * math.exp(log_factor) - (v_n - expected_max_normal(n))) < 1e-12
    assert abs(surrogate_error) < 1e-12  # μ_t + κ_N s = e_N under the Gaussian tail


def test_lemma1_gap_decays_at_rate_log_f_of_a():
    result = lemma1_check(sizes=np.array([32, 64, 128, 256, 512, 1024]))
    assert result["relative_rate_error"] < 1e-3, result
    assert max(abs(e) for e in result["surrogate_minus_gaussian_e_n"]) < 1e-10
