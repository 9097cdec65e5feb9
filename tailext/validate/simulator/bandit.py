"""Contextual bandit with a shared linear-softmax policy, solved exactly.

Generative model (one *scenario*; every number is a field of :class:`Scenario`):

- prompt ``x``: offset ``c_x ~ N(0, 1)`` and scale ``s_x = exp(N(0, scale_sd²))``;
- ``K`` candidate responses with features ``φ(x, k) ~ N(0, I_d)``;
- reward ``r(x, k) = c_x + s_x [ a·φ + σ_ε exp(γ b·φ − γ²) ε(x, k) ]`` with ``ε ~ N(0, 1)``
  drawn once per candidate (it is part of the response, fixed, but no feature predicts it),
  ``b = e₂`` (the *risky* feature: it widens the noise) and
  ``a = (e₁ − ρ e₂) / √(1 + ρ²)`` (the mean direction; ``ρ > 0`` makes the risky feature
  cost mean reward). ``γ = 0`` is homoscedastic: the only thing mean-seeking training can
  destroy is then the diversity of the finite candidate set. ``exp(−γ²)`` keeps
  ``E[noise²] = σ_ε²``.
- policy ``π_θ(k|x) ∝ exp(θ·φ(x, k))``, ``θ ∈ R^d`` shared across prompts; ``θ₀ = 0`` is
  uniform over the candidates, under which each prompt's reward is a Gaussian plus a
  (for ``γ > 0``, log-normal-scale) Gaussian noise.

Everything downstream is exact because ``π`` is explicit: the score is
``∇ log π(k|x) = φ(x, k) − E_π φ``; ``∇ KL(π_θ‖π₀) = Cov_π(φ) θ``; best-of-n values come from
the ``π``-weighted CDF of the candidate rewards. Each prompt's candidates are stored sorted
by reward, so the CDF is a cumulative sum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numba import njit
from scipy import special

__all__ = ["Scenario", "PromptSet", "draw_prompts", "policy", "kl_gradient", "kl_divergence",
           "cdf", "sample_candidates", "top_k_of_n_mean"]


@dataclass(frozen=True)
class Scenario:
    """Parameters of the generative model (see the module docstring)."""

    name: str
    gamma: float = 0.0          # heteroscedasticity γ of the noise along the risky feature
    rho: float = 0.0            # mean cost ρ of the risky feature
    noise_sd: float = 1.0       # σ_ε, reward noise the features cannot predict
    n_candidates: int = 1024    # K
    n_features: int = 8         # d
    scale_sd: float = 0.25      # sd of log s_x (prompt-level reward scale)

    def as_dict(self):
        return asdict(self)


@dataclass
class PromptSet:
    """Prompts with candidates sorted ascending by reward: ``features[P, K, d]``, ``rewards[P, K]``."""

    features: np.ndarray
    rewards: np.ndarray

    def __len__(self):
        return self.rewards.shape[0]


def draw_prompts(scenario: Scenario, n_prompts: int, rng: np.random.Generator) -> PromptSet:
    """Draw ``n_prompts`` prompts of a scenario (float64, candidates sorted by reward)."""
    K, d = scenario.n_candidates, scenario.n_features
    phi = rng.standard_normal((n_prompts, K, d))
    noise = rng.standard_normal((n_prompts, K))
    offset = rng.standard_normal((n_prompts, 1))
    scale = np.exp(scenario.scale_sd * rng.standard_normal((n_prompts, 1)))
    a = np.zeros(d)
    a[0], a[1] = 1.0, -scenario.rho
    a /= np.linalg.norm(a)
    g = scenario.gamma
    spread = scenario.noise_sd * np.exp(g * phi[..., 1] - g * g)
    rewards = offset + scale * (phi @ a + spread * noise)
    order = np.argsort(rewards, axis=1)
    return PromptSet(np.take_along_axis(phi, order[..., None], axis=1),
                     np.take_along_axis(rewards, order, axis=1))


def _logits(theta, features):
    """``θ·φ``: ``[..., K]`` for one ``theta[d]``, ``[..., L, K]`` for ``theta[..., L, d]``."""
    if theta.ndim == 1:
        return features @ theta
    return np.swapaxes(features @ np.swapaxes(theta, -1, -2), -1, -2)


def _expect(weights, features, single):
    """``Σ_k w_k φ_k``: ``[..., d]`` (single) or ``[..., L, d]`` (batched matmul)."""
    if single:
        return (weights[..., None, :] @ features)[..., 0, :]
    return weights @ features


def policy(theta, features):
    """Softmax probabilities ``π`` and mean features ``E_π φ`` on each prompt.

    ``theta[d]`` gives ``probs[..., K]`` and ``mean[..., d]``; a stack ``theta[..., L, d]``
    (broadcasting against ``features[..., K, d]`` without its ``K`` axis) gives
    ``probs[..., L, K]`` and ``mean[..., L, d]`` — all ``L`` policies on the same prompts.
    """
    logits = _logits(theta, features)
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs, _expect(probs, features, theta.ndim == 1)


def kl_gradient(theta, features, probs, mean_features):
    """``∇_θ KL(π_θ ‖ uniform) = Cov_π(φ) θ = E_π[(θ·φ) φ] − E_π[θ·φ] E_π φ`` per prompt
    (shapes as in :func:`policy`)."""
    weighted = probs * _logits(theta, features)
    return (_expect(weighted, features, theta.ndim == 1)
            - weighted.sum(axis=-1)[..., None] * mean_features)


def kl_divergence(probs):
    """``KL(π ‖ uniform) = Σ π log(K π)`` per prompt."""
    K = probs.shape[-1]
    return special.xlogy(probs, K * probs).sum(axis=-1)


def cdf(probs):
    """π-weighted CDF over the reward-sorted candidates (last entry exactly 1)."""
    F = np.cumsum(probs, axis=-1)
    return np.minimum(F / F[..., -1:], 1.0)


def sample_candidates(F, uniforms):
    """Inverse-CDF sampling: candidate indices ``[..., m]`` for ``uniforms[..., m]``.

    All rows are searched at once by offsetting row ``j`` to ``[j, j + 1]``.
    """
    K = F.shape[-1]
    rows = F.reshape(-1, K)
    u = uniforms.reshape(rows.shape[0], -1)
    offsets = np.arange(rows.shape[0], dtype=np.float64)[:, None]
    flat = np.searchsorted((rows + offsets).ravel(), (u + offsets).ravel(), side="right")
    index = np.clip(flat.reshape(u.shape) - np.arange(rows.shape[0])[:, None] * K, 0, K - 1)
    return index.reshape(uniforms.shape)


def top_k_of_n_mean(rewards, F, n, k):
    r"""Exact ``E[mean of the top k of n draws]`` per prompt (the validation metric).

    ``Σ_{j>n−k} P(X_(j:n) ≤ x) = G(F(x))`` with
    ``G(F) = Σ_{l=n−k+1}^{n} (l − (n − k)) C(n, l) F^l (1 − F)^{n−l}``, so
    ``E[sum of top k] = Σ_i r_(i) [G(F_i) − G(F_{i−1})]``. ``k = 1`` gives ``V_n``.
    """
    coefs = np.array([(j + 1) * special.comb(n, n - k + 1 + j) for j in range(k)])
    G = _top_k_cdf_weight(np.ascontiguousarray(F, dtype=np.float64).ravel(), n, k,
                          coefs).reshape(F.shape)
    previous = np.concatenate([np.zeros_like(G[..., :1]), G[..., :-1]], axis=-1)
    return (rewards * (G - previous)).sum(axis=-1) / k


@njit(cache=True)
def _top_k_cdf_weight(F, n, k, coefs):
    """``G(F)`` elementwise. The binomial terms are chained by the ratio ``p/q`` (from the
    lowest power, when ``p <= ½``) or ``q/p`` (from ``p^n``, when ``p > ½``), so every
    factor is at most ~1 and only one or two ``pow`` calls are made per entry."""
    out = np.empty_like(F)
    for i in range(F.size):
        p = F[i]
        q = 1.0 - p
        total = 0.0
        if p <= 0.5:  # j = 0, 1, …: term_j = coefs[j] p^(n−k+1+j) q^(k−1−j)
            power = p ** (n - k + 1) * q ** (k - 1)
            ratio = p / q
            for j in range(k):
                total += coefs[j] * power
                power *= ratio
        else:  # j = k−1, k−2, …, from p^n
            power = p ** n
            ratio = q / p
            for j in range(k - 1, -1, -1):
                total += coefs[j] * power
                power *= ratio
        out[i] = total
    return out
