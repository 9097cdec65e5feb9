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

from ..seeding import SimulatorStream, generator
from .bandit import cdf, kl_divergence, kl_gradient, policy, sample_candidates, top_k_of_n_mean

__all__ = ["run_checks"]

#: A fixed non-trivial policy for the checks: tilted along the mean and the risky feature.
CHECK_THETA_SCALE = (1.5, 0.7)
N_CHECK_PROMPTS = 4


def _check_theta(d):
    theta = np.zeros(d)
    theta[:2] = CHECK_THETA_SCALE
    return theta


#: Two-sided tail probability of |z| ≥ 4 under a normal law.
_TAIL_4SE = 6.3e-5


def _monte_carlo(name, exact, draws, span, z_limit=4.0):
    """Exact values against Monte Carlo means: |z| < ``z_limit`` for every entry.

    Where every draw gave the same value (a near-deterministic best-of-n at large n; the
    computed standard error is then 0 up to rounding), a z-score is undefined; there any other value has probability below
    ``-ln(6.3e-5) / D`` after ``D`` identical draws (at the same 6.3e-5 tail as |z| ≥ 4),
    so the exact value must lie within that probability times the prompt's reward ``span``.
    """
    count = draws.shape[-1]
    mean = draws.mean(axis=-1)
    se = draws.std(axis=-1, ddof=1) / np.sqrt(count)
    degenerate = draws.max(axis=-1) == draws.min(axis=-1)
    z = np.where(degenerate, 0.0, (mean - exact) / np.where(degenerate, 1.0, se))
    bound = -np.log(_TAIL_4SE) / count * np.broadcast_to(span, mean.shape)
    within = np.where(degenerate, np.abs(mean - exact) <= bound, np.abs(z) < z_limit)
    return dict(passed=bool(np.all(within)), exact=exact, monte_carlo=mean,
                standard_error=se, max_abs_z=float(np.abs(z).max()), limit=f"|z| < {z_limit}",
                degenerate=int(degenerate.sum()), what=name)


def _relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def run_checks(world, config) -> dict:
    """Every check above on the first prompts of ``world``'s test set → name → result
    (each with ``passed``)."""
    test = world.test
    rng = generator(config.seed, SimulatorStream.SELF_CHECKS)
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
        picks = sample_candidates(F, rng.random((len(rewards), config.mc_draws * n)))
        draws[:, c] = np.take_along_axis(rewards, picks, axis=1).reshape(
            len(rewards), config.mc_draws, n).max(axis=2)
    span = (rewards.max(axis=1) - rewards.min(axis=1))[:, None]  # [P, 1]
    checks["frontier_vs_monte_carlo"] = _monte_carlo("V_n, n=1,8,64,512", exact, draws, span)

    n, k = config.train.validation_samples, config.train.validation_top
    picks = sample_candidates(F, rng.random((len(rewards), config.mc_draws * n)))
    groups = np.sort(np.take_along_axis(rewards, picks, axis=1).reshape(
        len(rewards), config.mc_draws, n), axis=2)
    checks["top_k_of_n_vs_monte_carlo"] = _monte_carlo(
        f"top-{k}-of-{n} mean", top_k_of_n_mean(rewards, F, n, k), groups[..., n - k:].mean(2),
        span[:, 0])

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
