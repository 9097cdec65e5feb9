"""Best-of-N "max" rules: only the best rollout of a group gets a non-zero advantage."""

from __future__ import annotations

from .._arguments import bool_iv, real_iv
from .dispatch import check_status, checks_finite
from .registry import register_rule

# Kernels (numba) and references (scipy, via tailext.constants) are imported in the
# functions that use them: registering the rules (import tailext.rules) stays cheap.

__all__ = ["bon_max_mean", "bon_max_second"]

_SHIFT_SCALE = {"shift_invariant", "scale_equivariant"}


def _bon_max_mean_torch(x, valid):
    """Masked: ``c (x'_{i*} − x̄')`` at the first valid maximum ``i*``: O(B m), no sort."""
    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    best = _torch_ops.first_max(frame)
    gain = _torch_ops.centred(frame).gather(1, best) * frame.scale
    return _torch_ops.put_at(x, best, gain)


@register_rule(
    "bon_max_mean", torch=_bon_max_mean_torch, torch_masks=True,
    properties=_SHIFT_SCALE | {"deterministic"}, label="BoN-max mean",
    formula=r"A_{i^*} = r_{i^*} - \bar r,\ i^* = \arg\max_i r_i;\quad A_i = 0\ (i \ne i^*)")
@checks_finite
def bon_max_mean(rewards):
    r"""BoN-max mean: ``A_{i*} = r_{i*} − r̄`` for ``i* = argmax r``, all other advantages 0.

    Notes
    -----
    Ties at the maximum go to the first index, so with tied maxima the rule is neither
    permutation-equivariant nor monotone (it is for distinct rewards); it does not claim
    those properties.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([1.0, 5.0, 3.0], method="bon_max_mean").tolist()
    [0.0, 2.0, 0.0]
    """
    return _bon_max(rewards, False, False, 0.0)


def _bon_max_second_torch(x, valid, *, normalize, eps):
    """Masked gap of the two largest valid rewards at the first maximum: O(B m) (a top-2)."""
    import torch

    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    best = _torch_ops.first_max(frame)
    top_two = torch.topk(_torch_ops.masked(x, valid, -torch.inf), 2, dim=1).indices
    values = frame.values.gather(1, top_two)  # ordered by the rewards, valued in the frame
    gap = values[:, :1] - values[:, 1:]
    if normalize:  # gap / (sd + ε), scale-invariant
        gap = _torch_ops.safe_divide(
            gap, _torch_ops.std(_torch_ops.centred(frame), frame, 1) + eps / frame.scale)
    else:
        gap = gap * frame.scale
    return _torch_ops.put_at(x, best, gap)


def _bon_max_second_options(*, normalize, eps):
    return {"normalize": bool_iv(normalize, "normalize"), "eps": real_iv(eps, "eps", low=0.0)}


@register_rule(
    "bon_max_second", torch=_bon_max_second_torch, torch_masks=True,
    check_options=_bon_max_second_options, min_group_size=2, label="BoN-max second",
    properties=_SHIFT_SCALE | {"permutation_equivariant", "monotone", "deterministic"},
    formula=r"A_{i^*} = r_{(m)} - r_{(m-1)},\ i^* = \arg\max_i r_i;\quad A_i = 0\ (i \ne i^*)")
@checks_finite
def bon_max_second(rewards, *, normalize=False, eps=1e-6):
    r"""BoN-max second: ``A_{i*} = r_(m) − r_(m−1)`` at ``i* = argmax r``, all others 0.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= 2``.
    normalize : bool, default False
        Divide by the sample standard deviation plus ``eps``: verl's ``grpo_passk``.
    eps : float, default 1e-6
        Only used with ``normalize=True``.

    Notes
    -----
    When the top two rewards tie the gap is 0, so every advantage is 0 and the choice of
    ``i*`` among tied maxima does not matter.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([1.0, 5.0, 3.0], method="bon_max_second").tolist()
    [0.0, 2.0, 0.0]
    """
    return _bon_max(rewards, True, normalize, eps)


def _bon_max(rewards, second, normalize, eps):
    from .._baseline_kernels import bon_max_batch

    out, status = bon_max_batch(rewards, second, bool(normalize), float(eps))
    check_status(status)
    return out
