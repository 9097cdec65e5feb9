"""Fast paths of the sort-based baseline rules: max@k weights and numba kernels.

The max@k rules (``bon_mean``, ``maxk_loo1``) and ``cat_bon`` need each group sorted, so they
cost O(m log m) per group; everything after the sort is one O(m) sweep with weights that
depend only on ``(m, k)`` and are computed once per call. Kernels assume finite float64
C-contiguous input and valid options (validated by :mod:`tailext.baselines`); the pure-numpy
references they must match live in :mod:`tailext.reference`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange


class MaxAtKWeights(NamedTuple):
    """Sorted-position weights of the max@k estimators for a group of ``m`` (1-based ``i``).

    Attributes
    ----------
    own : ndarray, shape ``(m,)``
        ``C(i−1, k−1) / C(m−1, k−1)``: weight of ``r_(i)`` in its own transformed reward.
    above : ndarray, shape ``(m,)``
        ``C(i−2, k−2) / C(m−1, k−1)`` (0 at ``i = 1``): weight of ``r_(i)`` in the
        transformed reward of every lower position.
    """

    own: np.ndarray
    above: np.ndarray


def max_at_k_weights(m: int, k: int) -> MaxAtKWeights:
    """Weights of :class:`MaxAtKWeights` by the stable product form, O(m).

    ``own_m = 1`` and ``own_{i−1} = own_i · (i − k)/(i − 1)`` (a ratio of consecutive
    binomials), so each weight is a product of at most ``m`` factors in ``[0, 1]``: relative
    error ``≲ m`` ulps, no overflow, and weights below the float range underflow to 0 (their
    exact values are below ``1e-308``). ``above_i = own_i · (k − 1)/(i − 1)`` because
    ``C(i−2, k−2) / C(i−1, k−1) = (k−1)/(i−1)``. Needs ``2 <= k <= m``.
    """
    positions = np.arange(2, m + 1, dtype=np.float64)  # i = 2..m
    ratios = (positions - k) / (positions - 1.0)        # own_{i-1} / own_i, i = 2..m
    own = np.ones(m)
    own[:-1] = np.cumprod(ratios[::-1])[::-1]  # the factor at i = k is 0: own_i = 0, i < k
    above = np.zeros(m)
    above[1:] = own[1:] * (k - 1.0) / (positions - 1.0)
    return MaxAtKWeights(own, above)


@njit(cache=True, parallel=True)
def max_at_k_batch(rewards, own, above, leave_one_out):
    """Per-group max@k sweep after an argsort → ``[B, m]``.

    ``leave_one_out=False``: ``r̃_(i) = own_i r_(i) + Σ_{j>i} above_j r_(j)`` (the expected
    max of a random k-subset containing ``i``). ``leave_one_out=True``:
    ``own_i r_(i) − Σ_{j<i} above_{j+1} r_(j)``, which is ``(m/k) · A_i`` of ``maxk_loo1``
    (the ``Σ_{j>i}`` terms of ``s_i`` and of the leave-one-out max@(k−1) cancel).
    Rewards are shifted by the group maximum first, so a group of equal rewards gives exact
    zeros; the first sweep therefore returns ``r̃ − max(r)`` (``r̃`` is shift-equivariant:
    the weights of each position sum to one), the second is shift-invariant.
    """
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    for b in prange(n_groups):
        row = rewards[b]
        order = np.argsort(row)
        top = row[order[m - 1]]
        total = 0.0
        if leave_one_out:
            for p in range(m):
                x = row[order[p]] - top
                out[b, order[p]] = own[p] * x - total + 0.0  # + 0.0: no −0.0 outputs
                if p + 1 < m:
                    total += above[p + 1] * x
        else:
            for p in range(m - 1, -1, -1):
                x = row[order[p]] - top
                out[b, order[p]] = own[p] * x + total
                total += above[p] * x
    return out


@njit(cache=True, parallel=True)
def rank_log_weights_batch(rewards, exponent):
    """``(N−1) · log q_i`` with ``q_i = (#{j : r_j < r_i} + 1)/(m + 1)`` per group → ``[B, m]``.

    Tied rewards get the count of the first of their run in sorted order (strict ``<``).
    """
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    for b in prange(n_groups):
        row = rewards[b]
        order = np.argsort(row)
        below = 0
        for p in range(m):
            if p > 0 and row[order[p]] > row[order[p - 1]]:
                below = p
            out[b, order[p]] = exponent * np.log((below + 1.0) / (m + 1.0))
    return out
