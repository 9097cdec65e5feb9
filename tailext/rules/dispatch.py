""":func:`advantages`, the numpy entry point of every registered rule.

It validates the rewards, the validity mask and the options once, applies the policy of
:mod:`tailext.rules.policy` (invalid rollouts, groups too small for the rule) and calls the
rule's kernel on blocks of whole, valid groups, so kernels never see an invalid rollout, a
group too small for them or a non-finite reward.
"""

from __future__ import annotations

import numpy as np

from .._arguments import bool_iv, choice_iv, masked_rewards_iv
from .policy import (SMALL_GROUP_POLICIES, AdvantageResult, small_group_error, warn_discrete,
                     warn_small_groups)
from .registry import get_rule

__all__ = ["advantages", "compute_groups"]


def _kernel_output(rule, block, options):
    """The kernel's advantages and its per-group discrete flags (tail-fitting rules)."""
    out, discrete = rule.numpy(block, **options), 0
    if rule.tail_fit:
        out, flags = out
        discrete = int(np.count_nonzero(flags))
    out = np.asarray(out, dtype=np.float64)
    if out.shape != block.shape:
        raise ValueError(f"rule {rule.name!r} returned shape {out.shape} for rewards of shape "
                         f"{block.shape}; a rule must return one advantage per reward.")
    return out, discrete


def compute_groups(rule, batch, mask, options, policy, name="rewards", given=None):
    """Advantages of validated ``batch[B, m]`` with ``mask`` (or ``None``) → ``(out, info)``.

    Groups are processed in blocks of equal valid size: each block's valid rewards, in their
    order, are packed into ``[G, s]`` and handed to the kernel, and the results are put back;
    invalid rollouts and groups below the rule's minimum get 0. ``info`` is
    ``(small_groups, invalid, discrete_groups)``. ``given`` are the options as the caller
    passed them, for the error message (default: ``options``).
    """
    n_groups, m = batch.shape
    minimum = int(rule.min_group_size(**options))
    if mask is None and m >= minimum:
        out, discrete = _kernel_output(rule, batch, options)
        return _checked(rule, out, batch), (0, 0, discrete)
    counts = np.full(n_groups, m) if mask is None else mask.sum(axis=1)
    small = (counts > 0) & (counts < minimum)
    if policy == "raise" and small.any():
        row = int(np.argmax(small))
        where = "the group" if n_groups == 1 else f"group {row} of `{name}`"
        raise small_group_error(rule, options if given is None else given,
                                int(counts[row]), minimum, where)
    out = np.zeros_like(batch)
    # Valid entries first, each row's order kept (a stable sort of the invalid flags).
    order = None if mask is None else np.argsort(~mask, axis=1, kind="stable")
    discrete = 0
    for size in np.unique(counts[counts >= minimum]):
        rows = np.flatnonzero(counts == size)
        if order is None:
            block = batch[rows]
        else:
            columns = order[rows, :size]
            block = np.ascontiguousarray(np.take_along_axis(batch[rows], columns, axis=1))
        advantages, flagged = _kernel_output(rule, block, options)
        discrete += flagged
        if order is None:
            out[rows] = advantages
        else:
            out[rows[:, None], columns] = advantages
    n_small = int(small.sum())
    invalid = 0 if mask is None else int(mask.size - counts.sum())
    return _checked(rule, out, batch), (n_small, invalid, discrete)


def _checked(rule, out, batch):
    """``out``, or a clear error where the rule could not represent an advantage."""
    finite = np.isfinite(out)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        low, high = batch[row].min(), batch[row].max()
        raise ValueError(f"method {rule.name!r} gave a non-finite advantage in group {row}, "
                         f"whose rewards span [{low!r}, {high!r}]: the result is outside the "
                         "float64 range; rescale the rewards.")
    return out


def advantages(rewards, method="tea", *, valid=None, small_groups="raise", return_info=False,
               **options):
    """Advantages of every rollout under the rule ``method``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Rewards of ``B`` groups (prompts) of ``m`` rollouts; finite where valid.
    method : str, default "tea"
        A name from :func:`available_methods` (or a registered :class:`AdvantageRule`).
    valid : array_like of bool, shape of ``rewards``, optional
        ``False`` marks rollouts that must not count: they are left out of their group's
        statistics (a group of 16 with 3 invalid rollouts is a group of 13, in its order)
        and get advantage 0. Their rewards may be NaN.
    small_groups : {"raise", "zero"}, default "raise"
        A group with fewer valid rollouts than the rule's minimum
        (``get_rule(method).min_group_size(...)``) raises ``ValueError``, or, with
        ``"zero"``, gets advantage 0 (with a :class:`SmallGroupWarning` once per call site).
    return_info : bool, default False
        Return an :class:`AdvantageResult` (advantages and the counts of small groups,
        invalid rollouts and tied-tail groups) instead of the array.
    **options
        The rule's keyword options (e.g. ``tail_fraction``, ``n_target`` for TEA); an
        option the rule does not accept is a ``TypeError``.

    Returns
    -------
    ndarray, float64, same shape as ``rewards`` (or :class:`AdvantageResult`)

    Raises
    ------
    ValueError
        Unknown method; a non-finite valid reward; a group too small under
        ``small_groups="raise"``; an advantage outside the float64 range.
    TypeError
        An option the rule does not accept, or an argument of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> rewards = np.random.default_rng(0).normal(size=(4, 16))
    >>> A = advantages(rewards, method="tea", tail_fraction=0.25, n_target=128)
    >>> A.shape
    (4, 16)
    >>> valid = np.ones((4, 16), dtype=bool); valid[0, 13:] = False
    >>> B = advantages(rewards, method="tea", valid=valid)
    >>> bool(np.allclose(B[0, :13], advantages(rewards[0, :13], method="tea")))
    True
    """
    rule = get_rule(method)
    resolved = rule.resolve(options)
    rule = rule.specialized(resolved)
    policy = choice_iv(small_groups, "small_groups", SMALL_GROUP_POLICIES)
    return_info = bool_iv(return_info, "return_info")
    batch, mask, was_1d = masked_rewards_iv(rewards, valid)
    out, (n_small, invalid, discrete) = compute_groups(rule, batch, mask, resolved, policy,
                                                       given=options)
    if n_small:
        warn_small_groups(rule, rule.min_group_size(**resolved))
    if discrete:
        warn_discrete(rule)
    out = out[0] if was_1d else out
    return AdvantageResult(out, n_small, invalid, discrete) if return_info else out
