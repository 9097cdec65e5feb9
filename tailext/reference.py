"""Pure-numpy reference implementations of every tailext estimator.

Written for reading, not for speed: full sorts, explicit formulas, one obvious loop where the
math has one. The numba kernels in :mod:`tailext._kernels` must agree with these to 1e-12
relative (float64); the test-suite checks it on hypothesis-generated inputs.

All functions here take already-validated 2-D float64 arrays (``[B, m]`` rewards,
``[B, m, d]`` scores) and plain Python scalars; use the public API in :mod:`tailext` for
validation, 1-D inputs and defaults.
"""

from __future__ import annotations

import numpy as np

from .constants import kappa, tail_moments
from .prefix import tail_count

__all__ = [
    "tail_vector",
    "shaped_reward",
    "tea_raw",
    "tea",
    "direct_gradient",
    "crossfit_gradient",
    "split_gradient",
    "prefix_tea_gradient",
    "prefix_tea",
]


def _floor_parameters(tail_fraction, scale_floor):
    """Return ``(absolute, relative)`` with floor = absolute + relative · sd(fit sample)."""
    if scale_floor is None:
        return 0.0, 0.5 * np.sqrt(tail_moments(tail_fraction).v)
    return float(scale_floor), 0.0


def tail_vector(rewards, tail_fraction, scale_floor=None):
    """Empirical tail vector ``(ĥ, μ̂_t, ŝ)`` of each row (MATH §3), via a full sort."""
    m = rewards.shape[1]
    k = tail_count(m, tail_fraction)
    top = np.sort(rewards, axis=1)[:, m - k:]  # the k largest values, ascending
    threshold = top[:, 0]
    # Means are taken of deviations from a data value (the threshold; the first reward) so
    # that rounding scales with the spread of the rewards, not with their offset.
    mean = threshold + (top - threshold[:, None]).mean(axis=1)
    raw_scale = np.sqrt(((top - mean[:, None]) ** 2).mean(axis=1))
    absolute, relative = _floor_parameters(tail_fraction, scale_floor)
    origin = rewards[:, :1]
    group_mean = origin + (rewards - origin).mean(axis=1, keepdims=True)
    floor = absolute + relative * np.sqrt(((rewards - group_mean) ** 2).mean(axis=1))
    return threshold, mean, np.maximum(raw_scale, floor)


def shaped_reward(rewards, threshold, mean, scale, tail_fraction, n_target):
    """Tail-shaped reward ψ (MATH §2), factored form; ψ ≡ 0 where the scale is zero."""
    k_n = kappa(tail_fraction, n_target)
    h, mu, s = threshold[:, None], mean[:, None], scale[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        curvature = np.where(s > 0, k_n / (2.0 * s), 0.0)
    psi = (rewards - h) * (1.0 + curvature * (rewards + h - 2.0 * mu)) / tail_fraction
    return np.where((rewards >= h) & (s > 0), psi, 0.0)


def tea_raw(rewards, tail_fraction, n_target, scale_floor=None):
    """Raw advantage ``a_i = ψ(r_i; τ̂)`` with ``τ̂`` fitted on the same row."""
    tau = tail_vector(rewards, tail_fraction, scale_floor)
    return shaped_reward(rewards, *tau, tail_fraction, n_target)


def tea(rewards, tail_fraction, n_target, scale_floor=None):
    """TEA advantage ``A_i = (a_i)₊ − mean_j (a_j)₊`` (MATH §4)."""
    positive = np.maximum(tea_raw(rewards, tail_fraction, n_target, scale_floor), 0.0)
    return positive - positive.mean(axis=1, keepdims=True)


def direct_gradient(rewards, scores, tail_fraction, n_target, scale_floor=None):
    """Direct plug-in estimator ``ĝ = (1/m) Σ_i ψ(r_i; τ̂) S_i`` → ``[B, d]``."""
    psi = tea_raw(rewards, tail_fraction, n_target, scale_floor)
    return np.einsum("bm,bmd->bd", psi, scores) / rewards.shape[1]


def crossfit_gradient(fit_rewards, eval_rewards, eval_scores, tail_fraction, n_target,
                      scale_floor=None):
    """Cross-fitted estimator ``(1/n) Σ_{i∈B²} ψ(r²_i; τ̂(B¹)) S²_i`` → ``[B, d]``."""
    tau = tail_vector(fit_rewards, tail_fraction, scale_floor)
    psi = shaped_reward(eval_rewards, *tau, tail_fraction, n_target)
    return np.einsum("bm,bmd->bd", psi, eval_scores) / eval_rewards.shape[1]


def split_gradient(fit_rewards, eval_rewards, eval_scores, sizes, weights, tail_fraction,
                   n_target, scale_floor=None):
    """Split-budget estimator ``Σ_j w_j ĝ^cf_{n_j}`` over nested prefixes (MATH §5)."""
    total = 0.0
    for n_j, w_j in zip(sizes, weights):
        total = total + w_j * crossfit_gradient(
            fit_rewards[:, :n_j], eval_rewards[:, :n_j], eval_scores[:, :n_j],
            tail_fraction, n_target, scale_floor)
    return total


def prefix_tea_gradient(rewards, scores, sizes, weights, tail_fraction, n_target,
                        symmetric=True, scale_floor=None):
    """Total-budget Prefix-TEA gradient: halves ``B¹``/``B²``, symmetric average (MATH §5)."""
    n = rewards.shape[1] // 2
    first, second = rewards[:, :n], rewards[:, n:2 * n]
    first_scores, second_scores = scores[:, :n], scores[:, n:2 * n]
    forward = split_gradient(first, second, second_scores, sizes, weights, tail_fraction,
                             n_target, scale_floor)
    if not symmetric:
        return forward
    backward = split_gradient(second, first, first_scores, sizes, weights, tail_fraction,
                              n_target, scale_floor)
    return 0.5 * (forward + backward)


def prefix_tea(rewards, sizes, weights, tail_fraction, n_target, scale_floor=None):
    """Prefix-TEA advantage: ``c_i = Σ_j w_j (m/n_j) 1{i ≤ n_j} (a_{j,i})₊``, centred."""
    m = rewards.shape[1]
    combined = np.zeros_like(rewards)
    for n_j, w_j in zip(sizes, weights):
        raw = tea_raw(rewards[:, :n_j], tail_fraction, n_target, scale_floor)
        combined[:, :n_j] += w_j * (m / n_j) * np.maximum(raw, 0.0)
    return combined - combined.mean(axis=1, keepdims=True)
