"""max@k rules: advantages from the expected maximum of random ``k``-subsets of a group.

Both need each group sorted, so they cost O(m log m) per group; everything after the sort is
one O(m) sweep with weights that depend only on ``(m, k)``
(:func:`tailext._baseline_kernels.max_at_k_weights`).
"""

from __future__ import annotations

import numpy as np

from .._arguments import integer_iv, real_iv
from .._baseline_kernels import max_at_k_batch, max_at_k_weights
from .dispatch import check_status, checks_finite
from .registry import register_rule

__all__ = ["bon_mean", "maxk_loo1"]


def _max_at_k(rewards, k, leave_one_out, eps=0.0):
    m = rewards.shape[1]
    weights = max_at_k_weights(m, k)
    out, status = max_at_k_batch(rewards, np.argsort(rewards, axis=1), weights.own,
                                 weights.above, leave_one_out, float(eps), k / m)
    check_status(status)
    return out


def _max_at_k_torch(x, k, leave_one_out):
    """The two max@k sweeps of :func:`tailext._baseline_kernels.max_at_k_batch`."""
    import torch

    from .. import _torch_ops

    m = x.shape[1]
    weights = max_at_k_weights(m, k)
    own, above = _torch_ops.constant(weights.own, x), _torch_ops.constant(weights.above, x)
    ordered, order = torch.sort(x, dim=1)
    shifted = ordered - ordered[:, -1:]
    zero = torch.zeros_like(shifted[:, :1])
    if leave_one_out:  # own_i x_(i) − Σ_{j<i} above_{j+1} x_(j)
        lower = torch.cumsum(above[1:] * shifted[:, :-1], dim=1)
        swept = own * shifted - torch.cat([zero, lower], dim=1)
    else:  # own_i x_(i) + Σ_{j>i} above_j x_(j)
        upper = torch.flip(torch.cumsum(torch.flip(above * shifted, [1]), dim=1), [1])
        swept = own * shifted + torch.cat([upper[:, 1:], zero], dim=1)
    return torch.empty_like(swept).scatter(1, order, swept)


def _bon_mean_torch(x, valid, *, k, eps):
    from .. import _torch_ops

    return _torch_ops.zscore(_max_at_k_torch(x, k, leave_one_out=False), eps, 0)


def _bon_mean_options(*, k, eps):
    return {"k": integer_iv(k, "k", low=2), "eps": real_iv(eps, "eps", low=0.0)}


@register_rule(
    "bon_mean", torch=_bon_mean_torch, check_options=_bon_mean_options,
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
    return k / x.shape[1] * _max_at_k_torch(x, k, leave_one_out=True)


def _maxk_loo1_options(*, k):
    return {"k": integer_iv(k, "k", low=2)}


@register_rule(
    "maxk_loo1", torch=_maxk_loo1_torch, check_options=_maxk_loo1_options,
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
