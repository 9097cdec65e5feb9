"""Unit tests of the validation building blocks: quadrature, replication kernels, slopes."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import integrate

import tailext
from tailext.validate.montecarlo.engine import (SimulationConfig, block_rewards, estimates,
                                                simulate_cell, summarize_cell)
from tailext.validate.montecarlo.model import SCORE_OFFSET, diagnostic_model, score
from tailext.validate.montecarlo.slopes import fit_loglog_slope

MODEL = diagnostic_model(0.1, 128)


def _quad_gradient(h, mu, s):
    """G(τ) = ∫_h^∞ ψ(r; τ) S(r) φ(r) dr by adaptive quadrature (independent of the GL rule)."""
    k = MODEL.kappa

    def integrand(r, component):
        # ψ in its expanded form (docs/math.md#psi), independent of the factored kernel form
        psi = ((r - h) + k / (2 * s) * ((r - mu) ** 2 - (h - mu) ** 2)) / 0.1
        s_r = math.tanh(r) if component == 0 else 1 / (1 + r * r) - SCORE_OFFSET
        return psi * s_r * math.exp(-0.5 * r * r) / math.sqrt(2 * math.pi)
    return np.array([integrate.quad(integrand, h, np.inf, args=(c,), epsabs=1e-15,
                                    epsrel=1e-13, limit=200)[0] for c in range(2)])


@pytest.mark.parametrize("tau", [None, (1.1, 1.6, 0.3), (1.5, 1.9, 0.45), (0.2, 0.9, 0.7)])
def test_gauss_legendre_gradient_matches_adaptive_quadrature(tau):
    tau = tuple(MODEL.tail_vector) if tau is None else tau
    np.testing.assert_allclose(MODEL.gradient_at(*tau), _quad_gradient(*tau), rtol=0,
                               atol=1e-12)


def test_score_has_mean_zero():
    value = integrate.quad(lambda r: (1 / (1 + r * r) - SCORE_OFFSET) * math.exp(-r * r / 2)
                           / math.sqrt(2 * math.pi), -40, 40, epsabs=1e-14)[0]
    assert abs(value) < 1e-13


def test_true_gradient_matches_monte_carlo():
    # g* = E[ψ(R; τ*) S(R)] (Lemma 2's right-hand side); the Monte Carlo mean of 400k draws
    # must agree within 4 standard errors of the same draws, per component.
    r = np.random.default_rng(7).standard_normal(400_000)
    psi = tailext.shaped_reward(r, tailext.TailVector(*MODEL.tail_vector), tail_fraction=0.1,
                                n_target=128)
    values = psi[:, None] * score(r)
    se = values.std(axis=0, ddof=1) / math.sqrt(len(r))
    assert np.all(np.abs(values.mean(axis=0) - MODEL.true_gradient) < 4 * se)


def test_jacobian_matches_finite_differences_of_quadrature():
    # central differences with two step sizes agree, so the control-variate coefficients
    # are the derivative (any coefficient would keep the bias estimate unbiased)
    for axis in range(3):
        e = np.eye(3)[axis] * 1e-4
        slope = (MODEL.gradient_at(*(MODEL.tail_vector + e))
                 - MODEL.gradient_at(*(MODEL.tail_vector - e))) / 2e-4
        np.testing.assert_allclose(MODEL.jacobian[:, axis], slope, rtol=1e-6, atol=1e-9)


def _config(m=256, **changes):
    return dataclasses.replace(SimulationConfig(MODEL, (m,), (1024,), 256, 3), **changes)


@pytest.mark.parametrize("m", [256, 300])
def test_kernel_estimates_equal_public_estimators(m):
    r = np.random.default_rng(m).standard_normal((40, m))
    got = estimates(_config(m), r)[:, :, 0]
    scores = score(r)
    common = dict(tail_fraction=0.1, n_target=128, scale_floor=MODEL.scale_floor)
    expected = [tailext.direct_gradient(r, scores, **common)]
    for order, count in ((2, 3), (2, 4)):
        expected.append(tailext.prefix_tea_gradient(r, scores, order=order, n_prefixes=count,
                                                    **common))
    for e, want in enumerate(expected):
        scale = np.abs(want).max(axis=1, keepdims=True) + 1e-300
        assert np.all(np.abs(got[:, e] - want) <= 1e-12 * scale + 1e-15)


@pytest.mark.slow  # importing torch alone takes ~20 s on the shared CI machine
def test_torch_backend_matches_numba():
    pytest.importorskip("torch")
    r = np.random.default_rng(11).standard_normal((32, 256))
    np.testing.assert_allclose(estimates(_config(backend="torch"), r),
                               estimates(_config(), r), rtol=0, atol=1e-11)


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        estimates(_config(backend="jax"), np.zeros((1, 256)))


def test_conditional_means_have_the_estimates_expectation():
    # Rao–Blackwellization and the control variate must not move the mean: per replication
    # d = estimate − conditional mean (and conditional − controlled) has mean zero; check
    # each component within 4 SE of the same replications.
    r = np.random.default_rng(5).standard_normal((4096, 256))
    out = estimates(_config(), r)
    for first, second in ((0, 1), (1, 2)):
        d = out[:, :, first] - out[:, :, second]
        se = d.std(axis=0, ddof=1) / math.sqrt(len(d)) + 1e-300
        assert np.all(np.abs(d.mean(axis=0)) <= 4 * se + 1e-15), (first, second)
    # and they reduce the spread (the reason they exist)
    spread = out.var(axis=0).sum(axis=-1)
    assert np.all(spread[:, 2] < spread[:, 0])


def test_results_do_not_depend_on_chunking():
    config = _config(blocks_per_chunk=1)
    a = simulate_cell(config, 256, 1024)
    b = simulate_cell(dataclasses.replace(config, blocks_per_chunk=3), 256, 1024)
    np.testing.assert_array_equal(a.sums, b.sums)
    np.testing.assert_array_equal(block_rewards(3, 256, 1, 256), block_rewards(3, 256, 1, 256))
    assert not np.array_equal(block_rewards(3, 256, 1, 256), block_rewards(3, 256, 2, 256))


def test_summary_bias_matches_direct_computation():
    stats = simulate_cell(_config(), 256, 1024)
    rewards = np.concatenate([block_rewards(3, 256, j, 256) for j in range(4)])
    controlled = estimates(_config(), rewards)[:, 0, 2] - MODEL.true_gradient
    summary = summarize_cell(stats, 0)
    np.testing.assert_allclose(summary.bias_vector, controlled.mean(axis=0), rtol=1e-10)
    u = summary.bias_vector / summary.bias_norm
    np.testing.assert_allclose(summary.bias_se, (controlled @ u).std(ddof=1) / 32, rtol=1e-8)


def test_config_rejects_bad_replication_counts():
    with pytest.raises(ValueError, match="multiple of block_size=256"):
        SimulationConfig(MODEL, (256,), (1000,), 256, 0)
    with pytest.raises(ValueError, match="one count per group size"):
        SimulationConfig(MODEL, (256, 512), (1024,), 256, 0)


def test_loglog_slope_recovers_power_law_and_widens_on_misfit():
    m = np.array([256.0, 512.0, 1024.0, 2048.0])
    exact = fit_loglog_slope(m, 2.0 / m ** 2, 0.01 / m ** 2)
    assert abs(exact.slope + 2.0) < 1e-12 and exact.contains(-2.0)
    wiggly = fit_loglog_slope(m, 2.0 / m * np.array([1.0, 1.3, 0.8, 1.1]), 0.001 / m)
    assert wiggly.ci_high - wiggly.ci_low > 0.1


def test_loglog_slope_errors():
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_loglog_slope([1.0, 2.0], [1.0, 0.5], [0.1, 0.1])
    with pytest.raises(ValueError, match="must be positive"):
        fit_loglog_slope([1.0, 2.0, 4.0], [1.0, -0.5, 0.2], [0.1, 0.1, 0.1])


def test_loglog_slope_with_correction_recovers_leading_exponent():
    # y = 3/m + 40/m²: a pure power law over m = 160..5120 is bent by the second term; the
    # corrected model y = A m^a (1 + d/m) recovers a = −1 exactly (noise-free data)
    m = 160.0 * 2.0 ** np.arange(6)
    y = 3.0 / m + 40.0 / m ** 2
    plain = fit_loglog_slope(m, y, 1e-4 * y)
    corrected = fit_loglog_slope(m, y, 1e-4 * y, correction=True)
    assert abs(plain.slope + 1.0) > 0.02
    assert abs(corrected.slope + 1.0) < 1e-6 and corrected.contains(-1.0)
    with pytest.raises(ValueError, match="at least 4 points"):
        fit_loglog_slope(m[:3], y[:3], y[:3] * 0.01, correction=True)


def test_mse_map_decides_only_beyond_two_standard_errors():
    from tailext.validate.theory.appendix_e import mse_comparison

    def row(name, bias, se, variance):
        return {"estimator": name, "m": 1024, "bias_estimate": bias, "bias_se": se,
                "bias_upper": bias + 2 * se, "variance": variance}

    # TEA: bias 4e-3 ± 1e-4, variance 7e-3; Prefix-TEA: bias ≤ 2e-4 (n.r.), variance 0.1.
    # Crossover B* = (0.1 − 0.007)/(bias_T² − bias_P²) ≈ 6e3 with the ±2 SE ranges moving it.
    record = {"rows": [row("tea", 4e-3, 1e-4, 7e-3), row("pt", 1e-4, 1e-4, 0.1)]}
    grid = mse_comparison(record, "pt", np.array([1.0, 1e3, 6.2e3, 1e5]))
    assert grid.tolist() == [[-1, -1, 0, 1]]


def test_replication_override_picks_dividing_blocks():
    from tailext.validate.theory.appendix_e import build_config

    config = build_config(quick=True, replications=1000)
    assert config.block_size == 125 and config.replications[0] == 1000


def test_block_rewards_use_the_documented_stream():
    # the seeding scheme: block j of group size m is SeedSequence(seed, spawn_key=(m, j))
    expected = np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(3, spawn_key=(256, 1)))).standard_normal((4, 256))
    np.testing.assert_array_equal(block_rewards(3, 256, 1, 4), expected)
