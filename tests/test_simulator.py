"""Tests of the exact bandit simulator (tailext/validate/simulator/)."""

import itertools
import json

import numpy as np
import pytest

from tailext.cli import main
from tailext.evaluation import best_of_n_from_cdf
from tailext.validate.simulator.analysis import grid_edge, kl_selection
from tailext.validate.simulator.bandit import (
    Scenario,
    cdf,
    draw_prompts,
    kl_divergence,
    kl_gradient,
    policy,
    sample_candidates,
    top_k_of_n_mean,
)
from tailext.validate.simulator.config import TrainConfig
from tailext.validate.simulator.report import _crossover, _verdict
from tailext.validate.simulator.training import Adam, train_cell


def test_inverse_cdf_sampling_matches_probabilities():
    rng = np.random.default_rng(0)
    p = np.array([[0.1, 0.0, 0.5, 0.4], [0.25, 0.25, 0.25, 0.25]])
    draws = sample_candidates(cdf(p), rng.random((2, 200_000)))
    freq = np.stack([np.bincount(row, minlength=4) / row.size for row in draws])
    # Binomial SE of each frequency; 4 SE bound (8 cells).
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / 200_000) + 1e-12)
    assert freq[0, 1] == 0.0  # a zero-probability candidate is never drawn


@pytest.mark.parametrize("n, k", [(1, 1), (3, 1), (4, 2), (5, 3), (4, 4)])
def test_top_k_of_n_mean_equals_enumeration_of_all_draws(n, k):
    rewards = np.array([[-1.0, 0.5, 0.5, 3.0], [-2.0, -1.0, 0.0, 1.0]])
    probs = np.array([[0.05, 0.15, 0.2, 0.6], [0.7, 0.1, 0.15, 0.05]])  # both G branches
    expected = [sum(np.prod(p[list(t)]) * np.sort(r[list(t)])[n - k:].mean()
                    for t in itertools.product(range(4), repeat=n))
                for r, p in zip(rewards, probs)]
    got = top_k_of_n_mean(rewards, cdf(probs), n, k)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    if k == 1:
        np.testing.assert_allclose(got, best_of_n_from_cdf(rewards, cdf(probs), [n])[:, 0],
                                   rtol=1e-12)


def test_top_10_of_32_handles_probabilities_at_zero_and_one():
    rewards = np.array([[0.0, 1.0, 2.0]])
    point_mass = top_k_of_n_mean(rewards, cdf(np.array([[0.0, 1.0, 0.0]])), 32, 10)
    assert point_mass[0] == pytest.approx(1.0, abs=1e-14)


def test_policy_stack_equals_one_policy_at_a_time_and_kl_gradient_is_exact():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(3, 50, 4))
    thetas = rng.normal(size=(5, 4))
    probs, mean = policy(thetas, features)  # [3, 5, 50], [3, 5, 4]
    for l, theta in enumerate(thetas):
        p1, m1 = policy(theta, features)
        np.testing.assert_allclose(probs[:, l], p1, rtol=1e-12)
        np.testing.assert_allclose(mean[:, l], m1, rtol=1e-12, atol=1e-14)
        grad = kl_gradient(theta, features, p1, m1)
        grad_stack = kl_gradient(thetas, features, probs, mean)[:, l]
        np.testing.assert_allclose(grad, grad_stack, rtol=1e-10, atol=1e-13)
        h = 1e-6
        numeric = np.array([(kl_divergence(policy(theta + h * e, features)[0])
                             - kl_divergence(policy(theta - h * e, features)[0])) / (2 * h)
                            for e in np.eye(4)]).T
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert np.allclose(probs.sum(axis=-1), 1.0)


def test_adam_first_step_is_learning_rate_times_gradient_sign():
    # Bias correction makes m̂ = g and v̂ = g² at t = 1, so the step is lr·g/(|g| + eps).
    grad = np.array([[3.0, -0.5, 0.0]])
    step = Adam(grad.shape, 0.1, eps=1e-8).step(np.zeros_like(grad), grad)
    np.testing.assert_allclose(step, 0.1 * grad / (np.abs(grad) + 1e-8), rtol=1e-15)


@pytest.mark.slow  # importing torch takes ~20 s on the shared machine
def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    target, start = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    params = start.copy()
    adam = Adam(params.shape, 0.1)
    t = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([t], lr=0.1, maximize=True)
    for _ in range(25):
        params = adam.step(params, -(params - target))  # ascent on −|θ − target|²/2
        opt.zero_grad()
        (-0.5 * ((t - torch.tensor(target)) ** 2).sum()).backward()
        opt.step()
    np.testing.assert_allclose(params, t.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_prompts_are_sorted_reproducible_and_the_initial_best_of_one_is_the_mean():
    scenario = Scenario("t", gamma=0.5, rho=0.5, n_candidates=64, n_features=3)
    a = draw_prompts(scenario, 5, np.random.default_rng(3))
    b = draw_prompts(scenario, 5, np.random.default_rng(3))
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert np.all(np.diff(a.rewards, axis=1) >= 0)
    uniform = np.full(a.rewards.shape, 1 / 64)
    np.testing.assert_allclose(best_of_n_from_cdf(a.rewards, cdf(uniform), [1])[:, 0],
                               a.rewards.mean(axis=1), rtol=1e-12, atol=1e-12)


def test_training_is_reproducible_and_improves_validation():
    scenario = Scenario("t", n_candidates=128, n_features=4)
    rng = np.random.default_rng(4)
    train, val = draw_prompts(scenario, 64, rng), draw_prompts(scenario, 16, rng)
    config = TrainConfig(steps=20, prompts_per_step=8, validate_every=5, kl_coefs=(0.1, 1.0))
    first = train_cell(train, val, "TEA", 16, [0, 1], config, n_target=64, master_seed=0)
    again = train_cell(train, val, "TEA", 16, [0, 1], config, n_target=64, master_seed=0)
    np.testing.assert_array_equal(first.selected_theta, again.selected_theta)
    assert first.validation_curve.shape == (4, 5)
    # Selection keeps the best checkpoint, which beats the initial (uniform) policy here.
    assert np.all(first.best_validation >= first.validation_curve[:, 0])
    assert np.all(first.best_validation > first.validation_curve[:, 0] + 0.05)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from tailext.validate.simulator.report import view

    out = tmp_path_factory.mktemp("simulator")
    status = main(["validate", "simulator", "--out", str(out), "--quick", "--no-progress"])
    record = json.loads((out / "simulator.json").read_text())
    return status, out, record, view(record)


def test_quick_simulator_run_passes_its_checks_and_writes_outputs(quick_run):
    status, out, full_record, record = quick_run
    assert status == 0 and full_record["completeness"]["complete"]
    assert all(check["passed"] for check in record["checks"].values())
    assert full_record["seed"] == 0 and full_record["version"]
    assert full_record["configuration"]["group_sizes"] == [16]
    assert (out / "simulator.md").exists() and (out / "frontier_risky.png").exists()
    for cell in record["cells"]:
        # The exact best-of-n value can only grow with n.
        assert np.all(np.diff(cell["frontier"]) >= -1e-12)
    for comp in record["comparisons"]:
        assert np.all(np.array(comp["ci_low"]) <= np.array(comp["difference"]))
        assert np.all(np.array(comp["difference"]) <= np.array(comp["ci_high"]))
    assert (out / "kl_curves.png").exists()
    report = (out / "simulator.md").read_text()
    assert "## Headline: does TEA beat GRPO at high n here?" in report
    # One headline row per (scenario, m, protocol) TEA comparison at the default n_target.
    tea = [c for c in record["comparisons"] if c["rule"] == "TEA"
           and c["n_target"] == full_record["configuration"]["n_target"]]
    assert sum(line.startswith("| risky | 16 | ") for line in report.splitlines()
               if any(v in line for v in ("holds", "negligible", "vanishes", "reversed"))) == len(tea)
    # The quick grid has two values, so every selection is at an edge and is listed.
    assert len(record["kl_selection"]) == len(record["cells"])
    assert all(s["top10of32_edge"] in ("lower", "upper") for s in record["kl_selection"])
    assert "### KL selections at an edge of the grid" in report and "None:" not in report
    exact = record["alignment"]["risky"]["cosine"]["oracle_exact"]
    assert all(-1.0 <= v["mean"] <= 1.0 for v in exact.values())


def test_kl_selection_flags_only_the_grid_edges():
    grid = [0.0, 0.01, 0.1, 1.0, 10.0]
    assert [grid_edge(k, grid) for k in grid] == ["lower", None, None, None, "upper"]
    cells = [dict(scenario="s", rule="TEA", m=16, n_target=128, kl_coefs=grid,
                  selected_kl=0.1, kl_per_n=[0.0, 0.1, 10.0]),
             dict(scenario="s", rule="GRPO", m=16, n_target=128, error="cannot run")]
    (only,) = kl_selection(cells)  # cells that could not run have no selection
    assert only["top10of32"] == 0.1 and only["top10of32_edge"] is None
    assert only["kl_per_n_edge"] == ["lower", None, "upper"]


@pytest.mark.parametrize("ci_low, expected", [
    ([0.1, 0.2, 0.3], "1"),           # above zero everywhere
    ([-0.1, 0.2, -0.1, 0.1, 0.2], "8"),  # a dip at n=4: only from n=8 on
    ([0.1, 0.2, -0.01], "none"),      # not above zero at the largest n
])
def test_crossover_is_the_start_of_the_final_run_above_zero(ci_low, expected):
    comp = dict(n=[2 ** i for i in range(len(ci_low))], ci_low=ci_low)
    assert _crossover(comp) == expected


@pytest.mark.parametrize("diff, low, high, expected", [
    (0.50, 0.30, 0.70, "holds"),
    (-0.50, -0.70, -0.30, "reversed"),
    (0.005, 0.002, 0.008, "negligible"),   # resolved, but below the 0.01 tie tolerance
    (-0.009, -0.015, -0.004, "negligible"),
    (0.50, -0.10, 1.10, "vanishes"),       # CI contains 0, however large Δ is
])
def test_headline_verdict(diff, low, high, expected):
    comp = dict(difference=[diff], ci_low=[low], ci_high=[high])
    assert _verdict(comp, 0, 0.01).startswith(expected)


def test_monte_carlo_check_handles_draws_that_are_all_equal():
    # a near-deterministic best-of-512: every draw is the top reward, the SE is 0 up to
    # rounding; the exact value must then lie within -ln(6.3e-5)/D of the reward span
    from tailext.validate.simulator.selfchecks import _monte_carlo

    draws = np.full((1, 1, 4000), 5.0)
    span = np.array([[2.0]])
    close = _monte_carlo("V_n", np.array([[5.0 - 1e-4]]), draws, span)
    far = _monte_carlo("V_n", np.array([[4.9]]), draws, span)
    assert close["passed"] and close["degenerate"] == 1 and close["max_abs_z"] == 0.0
    assert not far["passed"]  # 0.1 > 9.67 / 4000 * 2
    from tailext.validate.records import to_json_value

    to_json_value(close)  # refuses inf and NaN: none reaches the record
