"""Group-mean baselines: the z-scored GRPO of verl and TRL, mean-centring, and RLOO."""

from __future__ import annotations

from .._arguments import choice_iv, real_iv
from .dispatch import check_status, checks_finite
from .registry import register_rule

# Kernels (numba) and references (scipy, via tailext.constants) are imported in the
# functions that use them: registering the rules (import tailext.rules) stays cheap.

__all__ = ["grpo", "mean_centred", "rloo"]

_CENTRED = {"zero_sum", "shift_invariant", "permutation_equivariant", "monotone",
            "deterministic"}


def _grpo_torch(x, valid, *, eps, ddof):
    """Masked ``(x' − x̄')/(sd' + ε/c)`` in the row frame: O(B m), no sort."""
    from .. import _torch_ops

    return _torch_ops.zscore(_torch_ops.row_frame(x, valid), eps, ddof)


def _grpo_options(*, eps, ddof):
    return {"eps": real_iv(eps, "eps", low=0.0), "ddof": choice_iv(ddof, "ddof", (0, 1))}


@register_rule(
    "grpo", torch=_grpo_torch, torch_masks=True, check_options=_grpo_options,
    min_group_size=lambda *, eps, ddof: 1 + ddof, properties=_CENTRED, label="GRPO-Z",
    formula=r"A_i = \frac{r_i - \bar r}{\operatorname{sd}(r) + \varepsilon}")
@checks_finite
def grpo(rewards, *, eps=1e-6, ddof=1):
    r"""GRPO advantage, as verl and TRL compute it: ``A_i = (r_i − r̄) / (sd + ε)``.

    .. math::

        A_i = \frac{r_i - \bar r}{\operatorname{sd}(r) + \varepsilon},\qquad
        \operatorname{sd}(r) = \sqrt{\tfrac{1}{m - \mathrm{ddof}}\textstyle\sum_j (r_j - \bar r)^2}

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= 1 + ddof``.
    eps : float, default 1e-6
        ``ε >= 0``: verl's default; TRL's ``GRPOTrainer`` uses ``1e-4``.
    ddof : {0, 1}, default 1
        ``sd`` divisor ``m − ddof``: 1 is the sample standard deviation of verl and TRL, 0
        the population one.

    Returns
    -------
    ndarray, float64, same shape as ``rewards``

    Notes
    -----
    A group of equal rewards gives zeros (also with ``eps=0``). Scale-invariant only up to
    the ``ε`` term, so it claims shift invariance but not scale invariance. verl's ``grpo``
    gives a group of one rollout ``r/(1 + ε)`` (it uses mean 0 and std 1 there); here such a
    group is too small (``small_groups`` decides what happens to it).

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([0.0, 1.0], method="grpo", eps=0.0, ddof=0).tolist()
    [-1.0, 1.0]
    """
    return _centred(rewards, "ZSCORE", eps, ddof)


def _mean_centred_torch(x, valid):
    """Masked ``c (x' − x̄')``: O(B m)."""
    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    return _torch_ops.centred(frame) * frame.scale


@register_rule(
    "mean_centred", torch=_mean_centred_torch, torch_masks=True,
    properties=_CENTRED | {"scale_equivariant"},
    label="GRPO", formula=r"A_i = r_i - \bar r")
@checks_finite
def mean_centred(rewards):
    r"""Mean-centred advantage ``A_i = r_i − r̄`` (the paper's "GRPO", without the std).

    verl's ``grpo`` with ``norm_adv_by_std_in_grpo=False`` and TRL's ``scale_rewards="none"``
    (the Dr. GRPO advantage) compute this.

    Notes
    -----
    Computed in the group's frame (shifted by its maximum, scaled by a power of two near its
    spread), so a group of equal rewards gives exact zeros and precision is relative to the
    spread at any magnitude.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([1.0, 2.0, 6.0], method="mean_centred").tolist()
    [-2.0, -1.0, 3.0]
    """
    return _centred(rewards, "CENTRED")


def _rloo_torch(x, valid):
    """Masked ``n/(n − 1) · c (x' − x̄')`` with ``n`` the row's valid count: O(B m)."""
    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    factor = frame.size / (frame.size - 1.0).clamp(min=1.0)
    return factor * _torch_ops.centred(frame) * frame.scale


@register_rule(
    "rloo", torch=_rloo_torch, torch_masks=True, min_group_size=2,
    properties=_CENTRED | {"scale_equivariant"},
    label="RLOO", formula=r"A_i = r_i - \frac{1}{m-1}\sum_{j \ne i} r_j "
                          r"= \frac{m}{m-1}(r_i - \bar r)")
@checks_finite
def rloo(rewards):
    r"""RLOO advantage ``A_i = r_i − mean_{j≠i} r_j = m/(m−1) · (r_i − r̄)``; needs ``m >= 2``.

    verl's ``rloo`` and TRL's ``RLOOTrainer`` compute the same leave-one-out baseline.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([1.0, 3.0], method="rloo").tolist()
    [-2.0, 2.0]
    """
    return _centred(rewards, "LEAVE_ONE_OUT")


def _centred(rewards, mode, eps=0.0, ddof=0):
    """The group-mean kernel in ``mode`` (the name of one of its mode constants)."""
    from .. import _baseline_kernels

    out, status = _baseline_kernels.centred_batch(rewards, getattr(_baseline_kernels, mode),
                                                  float(eps), int(ddof))
    check_status(status)
    return out
