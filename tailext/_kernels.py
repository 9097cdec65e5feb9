"""numba kernels for the tail fit, ψ and the TEA / Prefix-TEA estimators.

Layers (each calls only the one below it):

* per-value: :func:`psi_value` — ψ(r; τ) for one reward;
* per-group: :func:`select_top`, :func:`fit_row` — the tail vector of one group by
  selection (O(m), no sort), with the scale floor; :func:`fit_from_top` when the top ``k``
  values are already known (the TEA/Prefix-TEA path selects them with numpy's partition);
* batched: ``*_batch`` — over groups with ``prange``, built serial and parallel and
  dispatched by batch size (:mod:`tailext._parallel`); float64 in, float64 out.

One prefix kernel serves TEA and Prefix-TEA, and one cross-fit kernel serves the direct,
cross-fitted, split-budget and total-budget gradients: TEA is Prefix-TEA with the single
prefix ``(m,)`` and weight ``(1,)``, and the direct estimator is the cross-fit estimator
whose fitting and evaluation samples coincide. Validation happens in the public wrappers;
kernels assume finite float64 C-contiguous input and valid sizes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._parallel import batched_kernel


@njit(cache=True, inline="always")
def psi_value(r, h, mu, s, inv_beta, kappa_n):
    """ψ(r; h, μ_t, s) = (1/β) 1{r ≥ h} (r − h) [1 + κ/(2s) (r + h − 2μ_t)]; 0 when s = 0."""
    if r < h or s <= 0.0:
        return 0.0
    return (r - h) * (1.0 + kappa_n / (2.0 * s) * (r + h - 2.0 * mu)) * inv_beta


@njit(cache=True)
def select_top(buf, n, k):
    """Reorder ``buf[:n]`` in place so ``buf[n-k:n]`` holds its ``k`` largest values.

    Wirth/Hoare quickselect with a median-of-three pivot: afterwards ``buf[n-k]`` is the
    k-th largest value, nothing left of it is larger and nothing right of it is smaller.
    Runs of equal values split evenly, so all-equal groups stay O(n).
    """
    target = n - k
    lo = 0
    hi = n - 1
    while hi > lo:
        a = buf[lo]
        b = buf[(lo + hi) >> 1]
        c = buf[hi]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
            if a > b:
                b = a
        pivot = b
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                tmp = buf[i]
                buf[i] = buf[j]
                buf[j] = tmp
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break


@njit(cache=True)
def fit_row(x, n, k, floor_abs, floor_rel, buf):
    """Tail vector ``(ĥ, μ̂_t, ŝ)`` of ``x[:n]`` using scratch ``buf`` (length ≥ n).

    ``ŝ = max(sd of the top k (divisor k), floor_abs + floor_rel · sd(x[:n]) (divisor n))``.
    """
    for i in range(n):
        buf[i] = x[i]
    select_top(buf, n, k)
    return fit_from_top(buf[n - k:n], x, n, floor_abs, floor_rel)


@njit(cache=True, inline="always")
def mean_and_sd(values, n, ddof):
    """Mean of ``values[:n]`` and ``sqrt(Σ (v − mean)² / (n − ddof))`` (two passes).

    The first pass sums deviations from a data value (``values[0]``): for rewards far from
    zero (offset ≫ spread) the rounding error then scales with the spread, not the offset.
    The numpy reference shifts the same way.
    """
    origin = values[0]
    total = 0.0
    for i in range(n):
        total += values[i] - origin
    mean = origin + total / n
    squares = 0.0
    for i in range(n):
        deviation = values[i] - mean
        squares += deviation * deviation
    return mean, np.sqrt(squares / (n - ddof))


@njit(cache=True)
def fit_from_top(top, x, n, floor_abs, floor_rel):
    """Tail vector of ``x[:n]`` given ``top``, its ``k`` largest values in any order."""
    k = top.shape[0]
    h = top[0]
    for i in range(1, k):
        if top[i] < h:
            h = top[i]
    mu, s = mean_and_sd(top, k, 0)
    floor = floor_abs
    if floor_rel > 0.0:
        floor += floor_rel * mean_and_sd(x, n, 0)[1]
    if floor > s:
        s = floor
    return h, mu, s


@batched_kernel
def tail_vector_batch(rewards, k, floor_abs, floor_rel):
    """Tail vectors of every row of ``rewards[B, m]`` → three ``[B]`` arrays."""
    n_groups, m = rewards.shape
    thresholds = np.empty(n_groups)
    means = np.empty(n_groups)
    scales = np.empty(n_groups)
    for b in prange(n_groups):
        buf = np.empty(m)
        h, mu, s = fit_row(rewards[b], m, k, floor_abs, floor_rel, buf)
        thresholds[b] = h
        means[b] = mu
        scales[b] = s
    return thresholds, means, scales


@batched_kernel
def shaped_reward_batch(rewards, thresholds, means, scales, inv_beta, kappa_n):
    """ψ of every reward for a given tail vector per row → ``[B, m]``."""
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    for b in prange(n_groups):
        for i in range(m):
            out[b, i] = psi_value(rewards[b, i], thresholds[b], means[b], scales[b],
                                  inv_beta, kappa_n)
    return out


@batched_kernel
def tea_raw_batch(rewards, tops, floor_abs, floor_rel, inv_beta, kappa_n):
    """Raw advantage ``a_i = ψ(r_i; τ̂(row))`` → ``[B, m]``; ``tops[b]``: the row's top k."""
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    for b in prange(n_groups):
        row = rewards[b]
        h, mu, s = fit_from_top(tops[b], row, m, floor_abs, floor_rel)
        for i in range(m):
            out[b, i] = psi_value(row[i], h, mu, s, inv_beta, kappa_n)
    return out


@batched_kernel
def prefix_tea_batch(rewards, tops, sizes, tail_counts, weights, floor_abs, floor_rel,
                     inv_beta, kappa_n):
    """Prefix-TEA advantage (TEA when ``sizes = (m,)``, ``weights = (1,)``) → ``[B, m]``.

    ``c_i = Σ_j w_j (m / n_j) 1{i < n_j} ψ₊(r_i; τ̂(r[:n_j]))``, ``A_i = c_i − mean(c)``.
    ``tops[b]`` holds, prefix after prefix, the ``k_j`` largest values of
    ``rewards[b, :n_j]`` in any order, ``k_j = tail_counts[j]`` (found by the caller with
    numpy's SIMD partition, several times faster than :func:`select_top` per row). ψ is
    evaluated as in :func:`psi_value` with ``κ/(2s)`` hoisted out of the loop.
    """
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    for b in prange(n_groups):
        row = rewards[b]
        combined = out[b]
        for i in range(m):
            combined[i] = 0.0
        start = 0
        for j in range(sizes.shape[0]):
            n_j = sizes[j]
            k_j = tail_counts[j]
            h, mu, s = fit_from_top(tops[b, start:start + k_j], row, n_j, floor_abs,
                                    floor_rel)
            start += k_j
            if s <= 0.0:  # ψ ≡ 0
                continue
            factor = weights[j] * (m / n_j)
            curvature = kappa_n / (2.0 * s)
            for i in range(n_j):
                r = row[i]
                if r >= h:
                    a = (r - h) * (1.0 + curvature * (r + h - 2.0 * mu)) * inv_beta
                    if a > 0.0:
                        combined[i] += factor * a
        total = 0.0
        for i in range(m):
            total += combined[i]
        centre = total / m
        for i in range(m):
            combined[i] -= centre
    return out


@batched_kernel
def crossfit_gradient_batch(fit_rewards, eval_rewards, eval_scores, sizes, tail_counts,
                            weights, floor_abs, floor_rel, inv_beta, kappa_n):
    """``Σ_j w_j (1/n_j) Σ_{i < n_j} ψ(r^eval_i; τ̂(r^fit[:n_j])) S^eval_i`` → ``[B, d]``.

    With ``fit_rewards is eval_rewards`` and one prefix this is the direct estimator.
    """
    n_groups = eval_rewards.shape[0]
    m_fit = fit_rewards.shape[1]
    d = eval_scores.shape[2]
    out = np.zeros((n_groups, d))
    for b in prange(n_groups):
        buf = np.empty(m_fit)
        fit_row_values = fit_rewards[b]
        for j in range(sizes.shape[0]):
            n_j = sizes[j]
            h, mu, s = fit_row(fit_row_values, n_j, tail_counts[j], floor_abs, floor_rel, buf)
            factor = weights[j] / n_j
            for i in range(n_j):
                a = psi_value(eval_rewards[b, i], h, mu, s, inv_beta, kappa_n)
                if a != 0.0:
                    coef = factor * a
                    for c in range(d):
                        out[b, c] += coef * eval_scores[b, i, c]
    return out
