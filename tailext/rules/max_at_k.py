"""max@k rules: advantages from the expected maximum of random ``k``-subsets of a group.

Both need each group sorted, so they cost O(m log m) per group; everything after the sort is
one O(m) sweep with weights that depend only on ``(m, k)``
(:func:`tailext._baseline_kernels.max_at_k_weights`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._arguments import integer_iv, real_iv
from .dispatch import check_status, checks_finite
from .registry import register_rule

# Kernels (numba) and references (scipy, via tailext.constants) are imported in the
# functions that use them: registering the rules (import tailext.rules) stays cheap.

__all__ = ["bon_mean", "maxk_loo1"]


def _max_at_k(rewards, k, leave_one_out, eps=0.0):
    from .._baseline_kernels import max_at_k_batch, max_at_k_weights

    m = rewards.shape[1]
    weights = max_at_k_weights(m, k)
    out, status = max_at_k_batch(rewards, np.argsort(rewards, axis=1), weights.own,
                                 weights.above, leave_one_out, float(eps), k / m)
    check_status(status)
    return out


@functools.lru_cache(maxsize=64)
def _max_at_k_log_tables(m: int, k: int):
    """``log C(q, k−1)``, ``log C(q−1, k−2)`` (q = 0..m−1) and ``log C(n−1, k−1)`` (n = 0..m).

    The max@k weights of sorted position ``q`` in a group of ``n`` are
    ``own = C(q, k−1)/C(n−1, k−1)`` and ``above = C(q−1, k−2)/C(n−1, k−1)`` (0 for
    ``q >= n``), so one table per ``(m, k)`` serves every valid count ``n``. The logs of the
    exact integers are accurate to an ulp or two, so ``exp(log C(q, ·) − log C(n−1, ·))``
    has a relative error of about ``|log C| · 2⁻⁵²`` (≈ 2e-15 for m = 64, k = 4; 6e-13 for
    m = 4096, k = 2048). Entries that are 0 have log −inf; counts below ``k`` get the row
    of ``n = k`` (such rows are below the rule's minimum; their result is discarded).
    """
    def log_comb(a, b):
        return math.log(math.comb(a, b)) if 0 <= b <= a else -math.inf

    own = np.array([log_comb(q, k - 1) for q in range(m)])
    above = np.array([log_comb(q - 1, k - 2) for q in range(m)])
    norm = np.array([log_comb(max(n, k) - 1, k - 1) for n in range(m + 1)])
    return own, above, norm


def _max_at_k_weights_torch(frame, k, live):
    """``(own, above)`` of every sorted position of every row (0 past its valid count ``n``).

    Without a mask every row has ``n = m``: one row of the numpy kernel's weights,
    broadcast. With one, the weights of each row's ``n`` are ``exp`` of a float64 log
    difference from :func:`_max_at_k_log_tables`, gathered by ``n`` (no host sync).
    """
    import torch

    from .. import _torch_ops
    from .._baseline_kernels import max_at_k_weights

    like = frame.values
    m = like.shape[1]
    if frame.valid is None:
        weights = max_at_k_weights(m, k)
        return (_torch_ops.constant(weights.own, like)[None],
                _torch_ops.constant(weights.above, like)[None])
    own_log, above_log, norm_log = (_torch_ops.constant(table, like, torch.float64)
                                    for table in _max_at_k_log_tables(m, k))
    norm = norm_log[frame.count]  # [B, 1]
    return (_torch_ops.zeroed(torch.exp((own_log - norm).to(like.dtype)), live),
            _torch_ops.zeroed(torch.exp((above_log - norm).to(like.dtype)), live))


def _max_at_k_torch(x, valid, k, leave_one_out):
    """The two max@k sweeps of :func:`tailext._baseline_kernels.max_at_k_batch`, masked.

    Cost: one sort of ``[B, m]``, O(B m) sweeps (:func:`_max_at_k_weights_torch` for the
    weights). Returns ``(swept, frame, order, live)`` in sorted order (valid rewards
    ascending, then the invalid entries, where ``live`` is False).
    """
    import torch

    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    order = _torch_ops.ascending(frame)
    ordered = frame.values.gather(1, order)  # ≤ 0: the frame's anchor is the maximum
    live = _torch_ops.positions(x) < frame.count
    own, above = _max_at_k_weights_torch(frame, k, live)
    zero = torch.zeros_like(ordered[:, :1])
    if leave_one_out:  # own_q x_(q) − Σ_{j<q} above_{j+1} x_(j)
        lower = torch.cumsum(above[:, 1:] * ordered[:, :-1], dim=1)
        swept = own * ordered - torch.cat([zero, lower], dim=1)
    else:  # own_q x_(q) + Σ_{j>q} above_j x_(j)
        upper = torch.flip(torch.cumsum(torch.flip(above * ordered, [1]), dim=1), [1])
        swept = own * ordered + torch.cat([upper[:, 1:], zero], dim=1)
    return swept, frame, order, live


def _bon_mean_torch(x, valid, *, k, eps):
    """Masked: max@k transformed rewards, z-scored over the valid ones (scale-invariant)."""
    import torch

    from .. import _torch_ops

    swept, frame, order, live = _max_at_k_torch(x, valid, k, leave_one_out=False)
    ranked = frame._replace(values=_torch_ops.zeroed(swept, live), valid=live)
    return torch.empty_like(swept).scatter(1, order, _torch_ops.zscore(ranked, eps, 0))


def _bon_mean_options(*, k, eps):
    return {"k": integer_iv(k, "k", low=2), "eps": real_iv(eps, "eps", low=0.0)}


@register_rule(
    "bon_mean", torch=_bon_mean_torch, torch_masks=True, check_options=_bon_mean_options,
    min_group_size=lambda *, k, eps: k, label="BoN mean",
    properties={"zero_sum", "shift_invariant", "permutation_equivariant", "monotone",
                "deterministic"},
    formula=r"\tilde r_{(i)} = \frac{\binom{i-1}{k-1} r_{(i)} + \sum_{j>i}\binom{j-2}{k-2} "
            r"r_{(j)}}{\binom{m-1}{k-1}},\quad A_i = \frac{\tilde r_i - \overline{\tilde r}}"
            r"{\operatorname{sd}(\tilde r) + \varepsilon}")
@checks_finite
def bon_mean(rewards, *, k=4, eps=1e-6):
    r"""BoN mean (max@k transformed reward, Bagirov et al. 2025), z-scored.

    .. math::

        \tilde r_{(i)} = \frac{\binom{i-1}{k-1} r_{(i)} + \sum_{j>i}\binom{j-2}{k-2} r_{(j)}}
        {\binom{m-1}{k-1}},\qquad
        A_i = \frac{\tilde r_i - \overline{\tilde r}}{\operatorname{sd}(\tilde r) + \varepsilon}

    ``r̃_i`` is the expected maximum of a uniformly random ``k``-subset that contains ``i``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= k``.
    k : int, default 4
        Subset size, ``2 <= k <= m``. The paper's value is not stated; 4 is tailext's default.
    eps : float, default 1e-6

    Notes
    -----
    O(m log m) per group: one sort, then weights by the stable product form
    ``C(i−2,k−1)/C(i−1,k−1) = (i−k)/(i−1)`` (no overflow for ``m = 4096, k = 2048``; weights
    below ``1e-308`` underflow to 0). Tied rewards get equal ``r̃``; a group of equal rewards
    gives zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> A = advantages(np.array([0.0, 1.0, 2.0, 3.0]), method="bon_mean", k=2)
    >>> bool(abs(A.sum()) < 1e-12 and np.all(np.diff(A) >= 0))
    True
    """
    return _max_at_k(rewards, k, leave_one_out=False, eps=eps)


def _maxk_loo1_torch(x, valid, *, k):
    """Masked: ``(k/n) c [own x'_(q) − Σ_{j<q} above_{j+1} x'_(j)]``, put back in place."""
    import torch

    swept, frame, order, _ = _max_at_k_torch(x, valid, k, leave_one_out=True)
    return torch.empty_like(swept).scatter(1, order, swept * (k / frame.size * frame.scale))


def _maxk_loo1_options(*, k):
    return {"k": integer_iv(k, "k", low=2)}


@register_rule(
    "maxk_loo1", torch=_maxk_loo1_torch, torch_masks=True, check_options=_maxk_loo1_options,
    min_group_size=lambda *, k: k, label="max@k LOO",
    properties={"shift_invariant", "scale_equivariant", "permutation_equivariant", "monotone",
                "deterministic"},
    formula=r"A_i = s_i - \frac{k}{m}\hat\rho_{k-1}(r_{-i}),\quad s_i = \frac{\binom{i-1}{k-1} "
            r"r_{(i)} + \sum_{j>i}\binom{j-2}{k-2} r_{(j)}}{\binom{m}{k}}")
@checks_finite
def maxk_loo1(rewards, *, k=4):
    r"""Leave-one-out max@k advantage (Walder & Karkhanis 2025), lowest-variance max@k rule.

    .. math::

        A_i = s_i - \frac km\,\hat\rho_{k-1}(r_{-i}),\quad
        s_i = \frac{\binom{i-1}{k-1} r_{(i)} + \sum_{j>i}\binom{j-2}{k-2} r_{(j)}}{\binom mk},
        \quad \hat\rho_k(x) = \sum_{i=k}^{n}\frac{\binom{i-1}{k-1}}{\binom nk}x_{(i)}

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= k``.
    k : int, default 4
        ``2 <= k <= m``.

    Notes
    -----
    The sums over ``j > i`` in ``s_i`` and in the leave-one-out estimate cancel, leaving
    ``A_(i) = (k/m) [C(i−1,k−1) r_(i) − Σ_{j<i} C(j−1,k−2) r_(j)] / C(m−1,k−1)``, one O(m)
    sweep after the sort. The advantage of sorted position ``i`` is its weight times
    ``r_(i)`` minus a weighted mean of the lower rewards, so only the ``m − k + 1`` largest
    rewards get non-zero advantages; they need not sum to zero.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([0.0, 1.0, 3.0], method="maxk_loo1", k=2).round(6).tolist()
    [0.0, 0.333333, 1.666667]
    """
    return _max_at_k(rewards, k, leave_one_out=True)
