"""The polynomial control variates of the rates check (docs/math.md#polynomial-controls):
exact means, unbiasedness of the controlled values, the offset-size ablation's sizes and the
kurtosis rule."""

import math

import numpy as np
import pytest
from scipy import stats

from tailext import tail_count
from tailext.validate.montecarlo.controls import (N_FEATURES, N_THRESHOLD, feature_means,
                                                  threshold_moments, truncated_moments)
from tailext.validate.montecarlo.engine import (EstimatorSpec, SimulationConfig,
                                                controlled_values, estimates_and_features,
                                                estimator_plan, fit_controls, offset_sizes,
                                                simulate_cell, summarize_cell)
from tailext.validate.montecarlo.model import diagnostic_model

MODEL = diagnostic_model(0.5, 128)
SINGLE = (EstimatorSpec("tea", "TEA"), EstimatorSpec("fit", "fit", 0, 1, "single"))


@pytest.mark.parametrize("h", [-0.3, 0.0, 1.2816])
def test_truncated_moments_match_scipy(h):
    law = stats.truncnorm(h, np.inf)
    mean, c2, c3, c4 = truncated_moments(h)
    assert math.isclose(mean, law.mean(), rel_tol=1e-12)
    central = [law.expect(lambda y, r=r: (y - mean) ** r) for r in (2, 3, 4)]
    np.testing.assert_allclose([c2, c3, c4], central, rtol=1e-8)


@pytest.mark.parametrize("n, beta", [(64, 0.5), (639, 0.1)])
def test_threshold_moments_agree_between_rules_and_with_simulation(n, beta):
    model = diagnostic_model(beta, 128)
    k = tail_count(n, beta)
    args = (n, k, model.threshold, beta, model.threshold_density)
    fine = threshold_moments(*args)
    np.testing.assert_allclose(threshold_moments(*args, nodes=200), fine, rtol=0, atol=1e-12)
    # the k-th largest of n normals, simulated: each E[z^a] within 4 SE of 40,000 draws
    r = np.random.default_rng(n).standard_normal((40_000, n))
    h = -np.partition(-r, k - 1, axis=1)[:, k - 1]
    sigma = math.sqrt(beta * (1 - beta) / n) / model.threshold_density
    z = (h - model.threshold) / sigma
    for a in range(1, N_THRESHOLD + 1):
        values = z ** a
        se = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - fine[a - 1]) <= 4 * se, (a, values.mean(), fine[a - 1], se)


def _features(m, rows, seed, beta=0.5):
    model = diagnostic_model(beta, 128)
    config = SimulationConfig(model, (m,), (1024,), 512, 0, estimators=SINGLE, controls=True,
                              pilot_replications=1024)
    r = np.random.default_rng(seed).standard_normal((rows, m))
    return config, estimates_and_features(config, r)


@pytest.mark.parametrize("beta", [0.5, 0.1])
def test_features_have_their_exact_means(beta):
    # every feature of the fit on n = 64 rewards (both directions summed) has mean equal to
    # feature_means (zero for all but the powers of z): within 4.5 SE of 30,000 replications
    # (46 features × 2 values of β: 4.5 SE keeps the family-wise false alarm below 1e-3)
    config, (_, features) = _features(128, 30_000, 3, beta)
    n = 64
    model = config.model
    exact = 2 * feature_means(n, tail_count(n, beta), model.threshold, beta,
                              model.threshold_density)
    values = features[:, 0, :]
    assert values.shape[1] == N_FEATURES
    se = values.std(axis=0, ddof=1) / math.sqrt(len(values))
    assert np.all(np.abs(values.mean(axis=0) - exact) <= 4.5 * se), (
        np.abs(values.mean(axis=0) - exact) / se)


def test_controlled_values_keep_the_expectation_and_cut_the_spread():
    # coefficients fitted on the pilot stream; on independent draws the controlled value
    # minus the conditional mean has mean zero (4 SE), and its spread is far below the
    # linear control's: at m = 256 the SD falls at least 5-fold
    est = (SINGLE[0], EstimatorSpec("p12", "p12", 1, 2))
    config = SimulationConfig(MODEL, (256,), (4096,), 512, 9, estimators=est, controls=True,
                              pilot_replications=4096)
    controls = fit_controls(config, 256)
    r = np.random.default_rng(99).standard_normal((8192, 256))
    full = controlled_values(config, *estimates_and_features(config, r), controls)
    difference = full[:, 1, 3] - full[:, 1, 1]
    se = difference.std(axis=0, ddof=1) / math.sqrt(len(difference))
    assert np.all(np.abs(difference.mean(axis=0)) <= 4 * se)
    assert np.all(full[:, 1, 3].std(axis=0) * 5 < full[:, 1, 2].std(axis=0))
    np.testing.assert_array_equal(full[:, 0, 3], full[:, 0, 2])  # TEA: linear control only


def test_offset_sizes_have_the_other_rounding_offset():
    # β = 1/2: the odd sizes nearest j n / J (for J = 3 these are round(j n / J))
    assert offset_sizes(128, 0.5, 3) == [43, 85, 128] == [round(j * 128 / 3) for j in (1, 2)] + [128]
    assert offset_sizes(128, 0.5, 2) == [65, 128]
    # β = 0.1: n_j ≢ n (mod 10), nearest j n / J
    sizes = offset_sizes(640, 0.1, 3)
    assert sizes[-1] == 640 and all((s - 640) % 10 for s in sizes[:-1])
    assert all(abs(s - j * 640 / 3) <= 1 for j, s in enumerate(sizes[:-1], start=1))
    spec = EstimatorSpec("x", "x", 1, 2, "offset")
    sizes, weights = estimator_plan(spec, 128, 0.5)
    assert sizes == [65, 128]
    np.testing.assert_allclose([sum(weights), sum(w * 128 / s for w, s in zip(weights, sizes))],
                               [1.0, 0.0], atol=1e-12)
    assert estimator_plan(EstimatorSpec("s", "s", 0, 1, "single", 1), 128, 0.5) == ([127], [1.0])
    with pytest.raises(ValueError, match="unknown prefix-size rule 'even'"):
        estimator_plan(EstimatorSpec("e", "e", 1, 2, "even"), 128, 0.5)


def test_kurtosis_of_summary_matches_direct_computation_and_gates_resolution():
    est = (SINGLE[0], EstimatorSpec("p12", "p12", 1, 2))
    config = SimulationConfig(MODEL, (256,), (2048,), 256, 4, estimators=est, controls=True,
                              pilot_replications=1024)
    stats_ = simulate_cell(config, 256, 2048)
    summary = summarize_cell(stats_, 1)
    from tailext.validate.montecarlo.engine import block_rewards
    rewards = np.concatenate([block_rewards(4, 256, j, 256) for j in range(8)])
    full = controlled_values(config, *estimates_and_features(config, rewards),
                             fit_controls(config, 256))
    x = (full[:, 1, 3] - MODEL.true_gradient) @ (summary.bias_vector / summary.bias_norm)
    assert math.isclose(summary.kurtosis, stats.kurtosis(x, fisher=False), rel_tol=1e-8)
    # 2048 replications trust an SE only for κ ≤ 1 + 0.01 · 2048 ≈ 21.5
    assert summary.resolved == (summary.bias_norm > 2 * summary.bias_se
                                and summary.kurtosis <= 1 + 0.01 * 2048)


def test_controls_need_a_pilot():
    with pytest.raises(ValueError, match="pilot_replications"):
        SimulationConfig(MODEL, (256,), (1024,), 256, 0, controls=True, pilot_replications=100)


@pytest.mark.slow  # importing torch alone takes ~20 s on the shared CI machine
def test_torch_features_match_numba():
    # the torch backend (here on the CPU) computes the same estimates and control features
    # from the same rewards, for every prefix-size rule of the rates check
    pytest.importorskip("torch")
    import dataclasses

    est = (SINGLE[0], EstimatorSpec("p12", "p12", 1, 2), EstimatorSpec("p23", "p23", 2, 3),
           EstimatorSpec("o23", "o23", 2, 3, "offset"), EstimatorSpec("s1", "s1", 0, 1,
                                                                      "single", 1))
    config = SimulationConfig(MODEL, (256,), (1024,), 512, 0, estimators=est, controls=True,
                              pilot_replications=1024)
    r = np.random.default_rng(12).standard_normal((32, 256))
    out, features = estimates_and_features(config, r)
    out_t, features_t = estimates_and_features(dataclasses.replace(config, backend="torch"), r)
    np.testing.assert_allclose(out_t, out, rtol=0, atol=1e-11)
    assert features_t.shape == features.shape == (32, 2 + 3 + 3 + 1, N_FEATURES)
    scale = np.abs(features).max(axis=0) + 1e-300
    assert np.all(np.abs(features_t - features) <= 1e-9 * scale)
