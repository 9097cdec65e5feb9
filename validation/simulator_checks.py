"""Self-checks of the exact simulator, run before training (they can fail).

- the exact frontier ``V_n`` and the exact top-10-of-32 validation metric agree with Monte
  Carlo draws from ``π_θ`` within 4 standard errors of those draws;
- the exact oracle update ``Σ_k π_k A*_k (φ_k − E_π φ)`` equals a central finite difference of
  the mean best-of-N value in ``θ`` (this checks ``A*``, the score and the weighting at once);
- the KL gradient equals a finite difference of the KL;
- the oracle rule aligned with itself: at the uniform initial policy the rule update on the
  full candidate pool and the oracle update coincide, cosine 1.
"""

from __future__ import annotations

import numpy as np

from tailext.evaluation import best_of_n_from_cdf
from tailext.oracle import oracle_advantages, oracle_alignment, policy_update

from .bandit import cdf, kl_divergence, kl_gradient, policy, sample, top_k_of_n_mean

#: A fixed non-trivial policy for the checks: tilted along the mean and the risky feature.
CHECK_THETA_SCALE = (1.5, 0.7)
N_CHECK_PROMPTS = 4


def _check_theta(d):
    theta = np.zeros(d)
    theta[:2] = CHECK_THETA_SCALE
    return theta


def _monte_carlo(name, exact, draws, z_limit=4.0):
    mean = draws.mean(axis=-1)
    se = draws.std(axis=-1, ddof=1) / np.sqrt(draws.shape[-1])
    z = (mean - exact) / se
    return dict(passed=bool(np.all(np.abs(z) < z_limit)), exact=exact, monte_carlo=mean,
                standard_error=se, max_abs_z=float(np.abs(z).max()), limit=f"|z| < {z_limit}",
                what=name)


def _relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def run_checks(world, config) -> dict:
    _, _, _, test = world
    rng = np.random.default_rng([config.seed, 4])
    features, rewards = test.features[:N_CHECK_PROMPTS], test.rewards[:N_CHECK_PROMPTS]
    d = features.shape[2]
    theta = _check_theta(d)
    probs, mean_phi = policy(theta, features)
    F = cdf(probs)
    checks = {}

    ns = [1, 8, 64, 512]
    exact = best_of_n_from_cdf(rewards, F, ns)  # [P, C]
    draws = np.empty(exact.shape + (config.mc_draws,))
    for c, n in enumerate(ns):
        picks = sample(F, rng.random((len(rewards), config.mc_draws * n)))
        draws[:, c] = np.take_along_axis(rewards, picks, axis=1).reshape(
            len(rewards), config.mc_draws, n).max(axis=2)
    checks["frontier_vs_monte_carlo"] = _monte_carlo("V_n, n=1,8,64,512", exact, draws)

    n, k = config.train.select_n, config.train.select_k
    picks = sample(F, rng.random((len(rewards), config.mc_draws * n)))
    groups = np.sort(np.take_along_axis(rewards, picks, axis=1).reshape(
        len(rewards), config.mc_draws, n), axis=2)
    checks["top_k_of_n_vs_monte_carlo"] = _monte_carlo(
        f"top-{k}-of-{n} mean", top_k_of_n_mean(rewards, F, n, k), groups[..., n - k:].mean(2))

    N, h = config.alignment_target, 1e-5
    adv = oracle_advantages(rewards, n_target=N, weights=probs).advantages
    analytic = policy_update(adv, features - mean_phi[:, None, :], weights=probs)

    def value(t):
        return best_of_n_from_cdf(rewards, cdf(policy(t, features)[0]), [N]).mean()

    numeric = np.array([(value(theta + h * e) - value(theta - h * e)) / (2 * h)
                        for e in np.eye(d)])
    error = _relative_error(analytic, numeric)
    checks["oracle_gradient_vs_finite_difference"] = dict(
        passed=error < 1e-5, relative_error=error, limit="< 1e-5 (central difference, h=1e-5)")

    kl_analytic = kl_gradient(theta, features, probs, mean_phi).mean(axis=0)
    kl_numeric = np.array([(kl_divergence(policy(theta + h * e, features)[0]).mean()
                            - kl_divergence(policy(theta - h * e, features)[0]).mean())
                           / (2 * h) for e in np.eye(d)])
    error = _relative_error(kl_analytic, kl_numeric)
    checks["kl_gradient_vs_finite_difference"] = dict(passed=error < 1e-5,
                                                      relative_error=error, limit="< 1e-5")

    uniform, uniform_mean = policy(np.zeros(d), features)
    scores = features - uniform_mean[:, None, :]
    oracle = oracle_advantages(rewards, n_target=N, weights=uniform).advantages
    self_cos = oracle_alignment(oracle, scores, rewards, scores, n_target=N,
                                pool_weights=uniform).cosine
    checks["oracle_self_alignment"] = dict(passed=abs(self_cos - 1.0) < 1e-12,
                                           cosine=self_cos, limit="|cos − 1| < 1e-12")
    return checks
