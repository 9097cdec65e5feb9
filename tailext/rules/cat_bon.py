"""CAT-BoN (compute-aligned training for best-of-N): rank weights times the z-score."""

from __future__ import annotations

import functools

import numpy as np

from .._arguments import n_target_iv, real_iv
from .dispatch import check_status, checks_finite
from .registry import register_rule

# Kernels (numba) and references (scipy, via tailext.constants) are imported in the
# functions that use them: registering the rules (import tailext.rules) stays cheap.

__all__ = ["cat_bon"]


@functools.lru_cache(maxsize=64)
def _log_counts(m: int):
    """``log(c + 1)`` for ``c = 0..m``: the rank weights' logs for every count below."""
    return np.log(np.arange(1.0, m + 2.0))


def _cat_bon_torch(x, valid, *, n_target, eps):
    """Masked CAT-BoN: ranks and z-score among the valid rewards; one sort, O(B m log m).

    ``w_i / w_max = ((c_i + 1)/(c_max + 1))^{N−1}`` with ``c`` the count of valid rewards
    below: its log is formed in float64 from a host table of ``log(c + 1)`` (gathered by
    ``c``) and only then rounded, so float32 weights keep float32 accuracy (the exponent
    ``N − 1 = 127`` would amplify a float32 log's rounding 127-fold).
    """
    import torch

    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    keys = _torch_ops.masked(x, valid, torch.inf)
    below = torch.searchsorted(torch.sort(keys, dim=1).values, keys, right=False)
    log_count = _torch_ops.constant(_log_counts(x.shape[1]), x, torch.float64)
    highest = _torch_ops.zeroed(below, valid).amax(dim=1, keepdim=True)  # the maximum's
    log_weights = (n_target - 1) * (log_count[below] - log_count[highest])
    weights = _torch_ops.zeroed(torch.exp(log_weights.to(x.dtype)), valid)
    # The maximum's weight is 1, so the sum is >= 1 in every row with a valid reward.
    normalized = weights * (frame.size / weights.sum(dim=1, keepdim=True).clamp(min=1.0))
    return normalized * _torch_ops.zscore(frame, eps, 1)


def _cat_bon_options(*, n_target, eps):
    return {"n_target": n_target_iv(n_target, low=1), "eps": real_iv(eps, "eps", low=0.0)}


@register_rule(
    "cat_bon", torch=_cat_bon_torch, torch_masks=True, check_options=_cat_bon_options,
    min_group_size=2, label="CAT-BoN",
    properties={"shift_invariant", "permutation_equivariant", "deterministic"},
    formula=r"A_i = \frac{w_i}{\overline{w}}\cdot\frac{r_i - \bar r}{\operatorname{sd}_{m-1}(r) "
            r"+ \varepsilon},\quad w_i = N q_i^{N-1},\quad q_i = \frac{\#\{j: r_j < r_i\} + 1}"
            r"{m + 1}")
@checks_finite
def cat_bon(rewards, *, n_target=128, eps=1e-4):
    r"""CAT-BoN (Ousherovitch & Tewari 2026): rank weight times the sample-std z-score.

    .. math::

        q_i = \frac{\#\{j: r_j < r_i\} + 1}{m + 1},\quad w_i = N q_i^{N-1},\quad
        A_i = \frac{w_i}{\operatorname{mean}(w)}\cdot
        \frac{r_i - \bar r}{\operatorname{sd}_{m-1}(r) + \varepsilon}

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= 2``.
    n_target : int, default 128
        ``N``, the best-of-N budget.
    eps : float, default 1e-4

    Notes
    -----
    Tied rewards share a weight (strict ``<``). The weights are normalized in log space,
    so ``q^{N−1}`` never underflows to ``0/0`` for large ``N``.

    Examples
    --------
    >>> from tailext import advantages
    >>> A = advantages([0.0, 1.0, 2.0], method="cat_bon", n_target=2)
    >>> bool(A[0] < 0 < A[2])
    True
    """
    from .._baseline_kernels import cat_bon_batch

    out, status = cat_bon_batch(rewards, np.argsort(rewards, axis=1), float(n_target - 1),
                                float(eps))
    check_status(status)
    return out
