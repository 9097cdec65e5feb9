"""numba kernels for the Monte Carlo replications of the diagnostic (docs/math.md#diagnostic).

Each replication is one group of ``m`` rewards. For every estimator the kernel returns three
2-vectors (``out[:, e, t]``):

* ``t = 0`` the estimate ``ĝ`` itself (for the variance);
* ``t = 1`` its mean given the fitting batches. For a cross-fitted estimator this is exact,
  ``Σ_j w_j G(τ̂_j)`` (docs/math.md#rao-blackwell); the direct (TEA) estimator fits and
  evaluates on the same samples, so nothing can be integrated out and ``t = 1`` is ``ĝ``;
* ``t = 2`` the same minus a control variate of exactly zero mean: the first-order
  (influence-function) expansion of ``t = 1`` around ``τ*``. For a prefix fitted on
  ``r_1..r_n`` it is ``J_G · (1/n) Σ_i IF(r_i)`` with ``J_G = ∂G/∂τ(τ*)`` and ``IF`` the
  influence function of ``(h, μ_t, s)``; for the direct estimator it adds
  ``(1/m) Σ_i ψ(r_i; τ*) S(r_i) − g*``. Each term is an average of i.i.d. mean-zero values,
  so ``E[t=2] = E[t=1]`` exactly while the O(m^{-1/2}) fluctuation is removed and only the
  O(1/m) remainder is left — this is what makes biases of 1e-4 measurable.

With ``n_features > 0`` every prefix fit also reports the polynomial control features of
:func:`tailext.validate.montecarlo.controls.fit_features` (docs/math.md#polynomial-controls),
computed from the ``k`` largest values the fit has just selected.

Scores are evaluated only where ψ ≠ 0, never materialized. The tail fit and ψ are the
package kernels :func:`tailext._kernels.fit_row` and :func:`tailext._kernels.psi_value`;
tests check ``t = 0`` against :func:`tailext.direct_gradient` and
:func:`tailext.prefix_tea_gradient`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tailext._kernels import fit_row, psi_value

from .controls import fit_features
from .model import tail_gradient

__all__ = ["replicate_batch", "influence_mean"]


@njit(cache=True)
def influence_mean(values, n, tau_star, beta, density):
    """``(1/n) Σ_{i<n} IF(r_i)`` for ``τ = (h, μ_t, s)`` at the population ``τ*``.

    ``IF_h = (1{r ≥ h} − β)/φ(h)``, ``IF_μ = h + (r − h)₊/β − μ_t``,
    ``IF_s = [((r − μ_t)² − (h − μ_t)²) 1{r ≥ h}/β − s² + (h − μ_t)²] / (2s)``.
    """
    h, mu, s = tau_star[0], tau_star[1], tau_star[2]
    above = 0.0
    excess = 0.0
    spread = 0.0
    for i in range(n):
        r = values[i]
        if r >= h:
            above += 1.0
            excess += r - h
            spread += (r - mu) * (r - mu) - (h - mu) * (h - mu)
    edge = (h - mu) * (h - mu)
    i_h = (above / n - beta) / density
    i_mu = h + excess / (n * beta) - mu
    i_s = (spread / (n * beta) - s * s + edge) / (2.0 * s)
    return i_h, i_mu, i_s


@njit(cache=True)
def _crossfit_row(fit, evaluation, sizes, counts, weights, floor, inv_beta, kappa_n, offset,
                  nodes, quad_weights, tau_star, jacobian, density, buf, out, features):
    """``out[0]``: ``Σ_j w_j (1/n_j) Σ_{i<n_j} ψ(e_i; τ̂_j) S(e_i)``; ``out[1]``:
    ``Σ_j w_j G(τ̂_j)``; ``out[2]``: ``Σ_j w_j J_G · mean IF(fit[:n_j])`` (τ̂_j = τ̂(fit[:n_j]));
    ``features[j] +=`` the control features of fit ``j`` (none when ``features`` has no
    columns; :mod:`tailext.validate.montecarlo.controls`)."""
    out[:, :] = 0.0
    beta = 1.0 / inv_beta
    for j in range(sizes.shape[0]):
        n_j = sizes[j]
        h, mu, s = fit_row(fit, n_j, counts[j], floor, 0.0, buf)
        fit_features(buf[n_j - counts[j]:n_j], counts[j], h, n_j, tau_star[0], beta, density,
                     features[j])
        factor = weights[j] / n_j
        for i in range(n_j):
            r = evaluation[i]
            a = psi_value(r, h, mu, s, inv_beta, kappa_n)
            if a != 0.0:
                out[0, 0] += factor * a * np.tanh(r)
                out[0, 1] += factor * a * (1.0 / (1.0 + r * r) - offset)
        g1, g2 = tail_gradient(h, mu, s, inv_beta, kappa_n, offset, nodes, quad_weights)
        out[1, 0] += weights[j] * g1
        out[1, 1] += weights[j] * g2
        i_h, i_mu, i_s = influence_mean(fit, n_j, tau_star, beta, density)
        for c in range(2):
            out[2, c] += weights[j] * (jacobian[c, 0] * i_h + jacobian[c, 1] * i_mu
                                       + jacobian[c, 2] * i_s)


@njit(cache=True, parallel=True)
def replicate_batch(rewards, direct_count, plan_sizes, plan_counts, plan_weights, plan_bounds,
                    floor, inv_beta, kappa_n, offset, nodes, quad_weights, tau_star, jacobian,
                    density, g_star, n_features):
    """Estimates of every estimator on every row of ``rewards[R, m]`` → ``[R, 1 + P, 3, 2]``,
    and the control features of every prefix fit → ``[R, len(plan_sizes), n_features]``
    (both directions summed; ``n_features`` is 0 or
    :data:`~tailext.validate.montecarlo.controls.N_FEATURES`).

    Estimator 0 is the direct (TEA) estimator with ``k = direct_count``; estimator ``1 + p``
    is the symmetric total-budget Prefix-TEA gradient with prefix plan ``p`` (sizes, tail
    counts and weights ``plan_*[plan_bounds[p]:plan_bounds[p + 1]]``, built on ``n = m // 2``).
    """
    n_rows, m = rewards.shape
    n = m // 2
    n_plans = plan_bounds.shape[0] - 1
    out = np.empty((n_rows, 1 + n_plans, 3, 2))
    feats = np.zeros((n_rows, plan_sizes.shape[0], n_features))
    no_features = np.zeros((1, 0))
    direct_sizes = np.full(1, m, dtype=np.int64)
    direct_counts = np.full(1, direct_count, dtype=np.int64)
    direct_weights = np.ones(1)
    h_star, mu_star, s_star = tau_star[0], tau_star[1], tau_star[2]
    for b in prange(n_rows):
        buf = np.empty(m)
        forward = np.empty((3, 2))
        backward = np.empty((3, 2))
        row = rewards[b]
        _crossfit_row(row, row, direct_sizes, direct_counts, direct_weights, floor, inv_beta,
                      kappa_n, offset, nodes, quad_weights, tau_star, jacobian, density, buf,
                      forward, no_features)
        # plug-in term of the direct estimator's expansion: (1/m) Σ ψ(r_i; τ*) S(r_i) − g*
        p1 = 0.0
        p2 = 0.0
        for i in range(m):
            r = row[i]
            a = psi_value(r, h_star, mu_star, s_star, inv_beta, kappa_n)
            if a != 0.0:
                p1 += a * np.tanh(r)
                p2 += a * (1.0 / (1.0 + r * r) - offset)
        for c in range(2):
            out[b, 0, 0, c] = forward[0, c]
            out[b, 0, 1, c] = forward[0, c]
        out[b, 0, 2, 0] = forward[0, 0] - forward[2, 0] - (p1 / m - g_star[0])
        out[b, 0, 2, 1] = forward[0, 1] - forward[2, 1] - (p2 / m - g_star[1])
        first = row[:n]
        second = row[n:2 * n]
        for p in range(n_plans):
            lo = plan_bounds[p]
            hi = plan_bounds[p + 1]
            _crossfit_row(first, second, plan_sizes[lo:hi], plan_counts[lo:hi],
                          plan_weights[lo:hi], floor, inv_beta, kappa_n, offset, nodes,
                          quad_weights, tau_star, jacobian, density, buf, forward,
                          feats[b, lo:hi])
            _crossfit_row(second, first, plan_sizes[lo:hi], plan_counts[lo:hi],
                          plan_weights[lo:hi], floor, inv_beta, kappa_n, offset, nodes,
                          quad_weights, tau_star, jacobian, density, buf, backward,
                          feats[b, lo:hi])
            for c in range(2):
                out[b, 1 + p, 0, c] = 0.5 * (forward[0, c] + backward[0, c])
                out[b, 1 + p, 1, c] = 0.5 * (forward[1, c] + backward[1, c])
                out[b, 1 + p, 2, c] = 0.5 * (forward[1, c] - forward[2, c]
                                             + backward[1, c] - backward[2, c])
    return out, feats
