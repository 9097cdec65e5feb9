"""Torch adapter: every registered advantage rule on the rewards' own device.

``tailext.torch.advantages(rewards[B, m], method=...)`` computes the numbers of
:func:`tailext.advantages` with each rule's torch implementation (registered beside its numpy
kernel, see :mod:`tailext.rules`) on the tensor's device, without copying it to the host.
Constants (``κ_N``, prefix plans and max@k weights of every possible group size, the random
keys of ``chow_bon_rl`` and ``prefix_tea``) are computed on the host from the options and the
shape alone and moved to the device by an asynchronous copy.

Every built-in rule handles the validity mask itself (``torch_masks=True``): invalid rollouts
are left out of their group's statistics with per-row counts, sorts and tables gathered by
count, so a call with ``check_finite=False`` never synchronizes with the device. Each rule's
cost is in its torch implementation's docstring and measured by
``benchmarks/bench_torch_masks.py``.

Precision: half-precision and float32 rewards are computed in float32, float64 in float64,
each row in its own frame (:mod:`tailext._torch_ops`: shifted by its maximum, scaled by a
power of two near its spread), and the result is returned in the input dtype with no autograd
graph attached. The result is the float64 answer on the same input values to within the
dtype's rounding of the row's scale (times the rule's condition number: ≈ 13 for Prefix-TEA's
jackknife), for any magnitude and offset the dtype can hold (``tests/test_torch_rules.py``,
``benchmarks/torch_precision.py``). An advantage the returned dtype cannot hold (float16 above
65504) is an error under ``check_finite=True`` and ``±inf`` under ``check_finite=False``.

Trainer policy (see :mod:`tailext.rules.policy`): groups too small for the rule get advantage 0
by default (``small_groups="zero"``), rollouts marked invalid are left out of their group, and
the counts are returned with ``return_info=True``. A rule registered without a torch
implementation is computed by its numpy kernel after one device-to-host copy.

Requires ``torch`` (``pip install tailext[torch]``); ``import tailext`` does not import it.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _torch_ops
from ._arguments import bool_iv, choice_iv, real_iv
from .rules.dispatch import compute_groups
from .rules.policy import (SMALL_GROUP_POLICIES, AdvantageResult, small_group_error,
                           warn_discrete, warn_small_groups)
from .rules.registry import get_rule

__all__ = ["advantages", "advantages_from_groups", "grouped_policy_loss"]


# --- validation ---------------------------------------------------------------------------

def _reward_tensor_iv(rewards, valid, name: str = "rewards"):
    """``(work[B, m] float32/float64, mask[B, m] bool or None, was_1d)``."""
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(rewards).__name__}; "
                        f"use tailext.advantages for numpy arrays.")
    if not rewards.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {rewards.dtype}.")
    if rewards.ndim not in (1, 2):
        raise ValueError(f"`{name}` must be 1-D (one group) or 2-D [B, m] (B groups of m "
                         f"rollouts), got shape {tuple(rewards.shape)}.")
    if rewards.numel() == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(rewards.shape)}.")
    was_1d = rewards.ndim == 1
    batch = rewards.detach()[None] if was_1d else rewards.detach()
    work = batch.to(torch.float64 if batch.dtype == torch.float64 else torch.float32)
    mask = None
    if valid is not None:
        if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
            raise TypeError("`valid` must be a boolean torch.Tensor (True = a valid rollout), "
                            f"got {getattr(valid, 'dtype', type(valid).__name__)}.")
        if tuple(valid.shape) != tuple(rewards.shape):
            raise ValueError(f"`valid` must have the shape of `{name}` "
                             f"{tuple(rewards.shape)}, got {tuple(valid.shape)}.")
        mask = (valid[None] if was_1d else valid).to(work.device)
    return work, mask, was_1d


def _raise_nonfinite(work, mask, name, was_1d):
    bad = ~torch.isfinite(work) if mask is None else (~torch.isfinite(work) & mask)
    row, col = (int(i) for i in torch.nonzero(bad)[0])
    value = work[row, col].item()
    where = f"{name}[{col}]" if was_1d else f"row {row} of `{name}` (column {col})"
    raise ValueError(f"non-finite reward {value} in {where}; rewards must be finite (mark a "
                     "reward that could not be computed invalid with `valid`, or pass "
                     "check_finite=False to treat non-finite rewards as invalid).")


# --- computing one block of equal-size groups -----------------------------------------------

def _zero_count(like):
    return torch.zeros((), dtype=torch.int64, device=like.device)


def _call_torch(rule, x, options):
    """The rule's torch implementation on whole valid groups → ``(out, discrete count)``."""
    out = rule.torch(x, None, **options)
    if rule.tail_fit:
        out, flags = out
        return out, flags.sum()
    return out, _zero_count(x)


def _on_host(rule, x, mask, options, policy):
    """A rule without a torch implementation: numpy kernel, one round trip to the host."""
    host = x.cpu().numpy().astype(np.float64)
    host_mask = None if mask is None else mask.cpu().numpy()
    if host_mask is not None:
        host = np.where(host_mask, host, 0.0)
    out, (small, invalid, discrete) = compute_groups(rule, host, host_mask, options, policy)
    counts = torch.tensor([small, discrete], dtype=torch.int64, device=x.device)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype), counts[0], counts[1]


def _compute(rule, x, mask, options, policy, where=None, given=None):
    """Advantages of ``x[B, m]`` (finite where ``mask``) → ``(out, small, discrete)``.

    ``small`` and ``discrete`` are 0-d int64 tensors on the device; ``where`` names a group
    in the small-group error (default: by its row), ``given`` the options as passed.
    Sync-free for a rule with a masking torch implementation unless ``policy == "raise"``
    and there is a mask (finding a small group reads the device).
    """
    n_groups, m = x.shape
    minimum = int(rule.min_group_size(**options))
    if rule.torch is None:
        return _on_host(rule, x, mask, options, policy)
    if mask is None:
        if m >= minimum:
            out, discrete = _call_torch(rule, x, options)
            return out, _zero_count(x), discrete
        if policy == "raise":
            where = where or ("the group" if n_groups == 1 else "group 0 of `rewards`")
            raise small_group_error(rule, given or {}, m, minimum, where)
        small = torch.full((), n_groups, dtype=torch.int64, device=x.device)
        return torch.zeros_like(x), small, _zero_count(x)
    counts = mask.sum(dim=1)
    small_rows = (counts > 0) & (counts < minimum)
    if policy == "raise" and bool(small_rows.any()):
        row = int(torch.nonzero(small_rows)[0, 0])
        where = where or ("the group" if n_groups == 1 else f"group {row} of `rewards`")
        raise small_group_error(rule, given or {}, int(counts[row]), minimum, where)
    if m < minimum:  # no row can reach the minimum: nothing to compute
        return torch.zeros_like(x), small_rows.sum(), _zero_count(x)
    if rule.torch_masks:  # sync-free: the rule leaves invalid rollouts out itself
        usable = counts >= minimum
        out = rule.torch(x, mask, **options)
        discrete = _zero_count(x)
        if rule.tail_fit:
            out, flags = out
            discrete = (flags & usable).sum()
        out = torch.where(mask & usable[:, None], out, torch.zeros_like(out))
        return out, small_rows.sum(), discrete
    # Groups of equal valid size, packed valid-first in their order (one device sync for the
    # distinct sizes).
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    out = torch.zeros_like(x)
    discrete = _zero_count(x)
    for size in torch.unique(counts[counts >= minimum]).tolist():
        rows = torch.nonzero(counts == size)[:, 0]
        columns = order[rows, :size]
        block = x[rows[:, None], columns]
        advantages, flagged = _call_torch(rule, block, options)
        out[rows[:, None], columns] = advantages
        discrete = discrete + flagged
    return out, small_rows.sum(), discrete


def _finish(rule, minimum, rewards, work, mask, out, small, discrete, check_finite, was_1d,
            return_info, name="rewards"):
    """Checks (one device sync when ``check_finite``), warnings, dtype and the result.

    The finiteness of the advantages is checked in the returned dtype: a float16 result
    can overflow where its float32 computation did not.
    """
    invalid = _zero_count(work) if mask is None else (~mask).sum()
    result = out.to(rewards.dtype)
    nonfinite = (~torch.isfinite(result)).sum()
    if check_finite:
        finite = torch.isfinite(work) if mask is None else (torch.isfinite(work) | ~mask)
        flags = torch.stack([(~finite).sum(), nonfinite, small, discrete])
        bad_in, bad_out, n_small, n_discrete = flags.tolist()
        if bad_in:
            _raise_nonfinite(work, mask, name, was_1d)
        if bad_out:
            row = int(torch.nonzero(~torch.isfinite(result))[0, 0])
            largest = float(out[row].abs().max())
            where = f"`{name}`" if was_1d else f"group {row} of `{name}`"
            raise ValueError(f"method {rule.name!r} gave an advantage of magnitude "
                             f"{largest:.3g} in {where}, outside the range of "
                             f"{str(rewards.dtype).removeprefix('torch.')}: rescale the "
                             "rewards (or pass them in a wider dtype).")
        if n_small:
            warn_small_groups(rule, minimum)
        if n_discrete:
            warn_discrete(rule)
    result = result[0] if was_1d else result
    if return_info:
        return AdvantageResult(result, small, invalid, discrete, nonfinite)
    return result


def _entry_iv(method, options, small_groups, check_finite, return_info):
    rule = get_rule(method)
    resolved = rule.resolve(options)
    rule = rule.specialized(resolved)
    policy = choice_iv(small_groups, "small_groups", SMALL_GROUP_POLICIES)
    return (rule, resolved, policy, bool_iv(check_finite, "check_finite"),
            bool_iv(return_info, "return_info"))


# --- public API ---------------------------------------------------------------------------

@torch.no_grad()
def advantages(rewards, method="tea", *, valid=None, small_groups="zero", check_finite=True,
               return_info=False, **options):
    """Advantages of every rollout under rule ``method``, with torch on ``rewards``' device.

    ``A = tailext.advantages(rewards, method, valid=valid, small_groups=small_groups,
    **options)`` evaluated with torch ops; see :func:`tailext.available_methods` and each
    rule's docstring for the formulas.

    Parameters
    ----------
    rewards : torch.Tensor, shape ``(m,)`` or ``(B, m)``, floating
        float16/bfloat16/float32 are computed in float32, float64 in float64.
    method : str, default "tea"
        Any registered rule.
    valid : torch.Tensor of bool, shape of ``rewards``, optional
        ``False`` marks rollouts left out of their group's statistics; they get 0.
    small_groups : {"zero", "raise"}, default "zero"
        Groups with fewer valid rollouts than the rule's minimum get advantage 0 (counted,
        and a :class:`tailext.SmallGroupWarning` when ``check_finite`` reads the counts), or
        raise ``ValueError`` (which needs a device sync).
    check_finite : bool, default True
        Raise on a NaN/inf valid reward (naming it) and on an advantage the returned dtype
        cannot hold, and emit the warnings; this costs one device-to-host sync per call.
        ``False`` makes the call sync-free (with ``small_groups="zero"``) and treats
        non-finite rewards as invalid rollouts; an advantage beyond the returned dtype's
        range is then ``±inf`` (never clipped or zeroed).
    return_info : bool, default False
        Return an :class:`tailext.AdvantageResult` whose counts are 0-d int64 tensors.
    **options
        The rule's keyword options, as for :func:`tailext.advantages`.

    Returns
    -------
    torch.Tensor, same shape, dtype and device as ``rewards``, no autograd graph (or
    :class:`tailext.AdvantageResult`).

    Notes
    -----
    ``chow_bon_rl`` and ``prefix_tea`` (``ordering="random"``) draw their keys on the host
    from ``seed`` (numpy) and copy them to the device, so with every rollout valid they
    match the numpy rule for the same seed; with a mask they use the keys of the valid
    rollouts (uniformly random too, but not the numpy rule's draws for the compacted
    groups).

    Examples
    --------
    >>> import torch, tailext.torch
    >>> r = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.7]])
    >>> A = tailext.torch.advantages(r, method="tea")
    >>> A.dtype, bool(A.argmax() == 3), A.requires_grad
    (torch.float32, True, False)
    """
    rule, resolved, policy, check_finite, return_info = _entry_iv(
        method, options, small_groups, check_finite, return_info)
    work, mask, was_1d = _reward_tensor_iv(rewards, valid)
    work, mask = _sanitized(work, mask, check_finite)
    out, small, discrete = _compute(rule, work, mask, resolved, policy, given=options)
    return _finish(rule, rule.min_group_size(**resolved), rewards, work, mask, out, small,
                   discrete, check_finite, was_1d, return_info)


def _sanitized(work, mask, check_finite):
    """Invalid entries set to 0 so no rule sees a NaN; without ``check_finite`` non-finite
    rewards become invalid rollouts."""
    if not check_finite:
        finite = torch.isfinite(work)
        mask = finite if mask is None else (mask & finite)
    if mask is not None:
        work = torch.where(mask, work, torch.zeros_like(work))
    return work, mask


def _group_blocks(group_ids, like):
    """``[(size, example id, index[G, size])]``: the groups of each distinct size.

    ``index`` (int64 on ``like``'s device) holds each group's rollouts in their order in
    the batch. Host ids (a list or numpy array) are grouped on the host and the index is
    copied asynchronously, so no device sync is needed; tensor ids are copied to the host
    first, the one synchronization.
    """
    n_samples = like.shape[0]
    if isinstance(group_ids, torch.Tensor):
        # One device-to-host copy (the one sync), then the host path. Grouping on the device
        # would sync at torch.unique, bincount, the list of distinct sizes and each size's
        # nonzero, and would number the groups the same way.
        if group_ids.ndim != 1 or group_ids.shape[0] != n_samples:
            raise ValueError(f"`group_ids` must have shape ({n_samples},) like `rewards`, got "
                             f"{tuple(group_ids.shape)}.")
        host = group_ids.detach().cpu()
        group_ids = (host.float() if host.dtype == torch.bfloat16 else host).numpy()
    ids = np.asarray(group_ids)
    if ids.ndim != 1 or ids.shape[0] != n_samples:
        raise ValueError(f"`group_ids` must have shape ({n_samples},) like `rewards`, got "
                         f"{ids.shape}.")
    # Codes by first appearance through a dict: O(bs) hashing. np.unique sorts, and on the
    # object arrays of strings trainers pass (verl's uid) that sort compares Python objects,
    # which cost more than the whole advantage computation.
    keys = ids.tolist()
    if any(isinstance(key, float) and key != key for key in keys):
        raise ValueError("`group_ids` must not contain NaN (NaN is not equal to itself, so "
                         "its rollouts would each form a group of one).")
    code_of = {}
    try:
        codes = np.fromiter((code_of.setdefault(key, len(code_of)) for key in keys),
                            dtype=np.int64, count=len(keys))
    except TypeError:  # unhashable ids: group by their string form
        code_of = {}
        codes = np.fromiter((code_of.setdefault(str(key), len(code_of)) for key in keys),
                            dtype=np.int64, count=len(keys))
    distinct = list(code_of)
    # Number the groups in the order of their ids, not of their first rollout: a random rule
    # (seed) then hands its draws to the same groups however the trainer ordered the rows
    # (verl sorts them by length). Sorting the distinct ids only is cheap.
    try:
        ranked = sorted(range(len(distinct)), key=distinct.__getitem__)
    except TypeError:  # ids of mixed, unorderable types
        ranked = sorted(range(len(distinct)), key=lambda i: (type(distinct[i]).__name__,
                                                             str(distinct[i])))
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[ranked] = np.arange(len(distinct))
    codes, distinct = rank[codes], [distinct[i] for i in ranked]
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(distinct))
    starts = np.cumsum(counts) - counts
    blocks = []
    for size in np.unique(counts).tolist():
        groups = np.flatnonzero(counts == size)
        index = order[starts[groups][:, None] + np.arange(size)]
        blocks.append((size, distinct[groups[0]], _torch_ops.constant(index, like,
                                                                       torch.int64)))
    return blocks


@torch.no_grad()
def advantages_from_groups(rewards, group_ids, method="tea", *, valid=None,
                           small_groups="zero", check_finite=True, return_info=False,
                           **options):
    """Advantages for a flat batch whose groups are given by an id per rollout (verl's ``uid``).

    Rollouts with the same id form one group, in their order in ``rewards`` (which matters
    for ``prefix_tea``); groups may have different sizes. Each group gets exactly
    ``tailext.torch.advantages(rewards[group], method, valid=valid[group], **options)``.

    Parameters
    ----------
    rewards : torch.Tensor, shape ``(bs,)``, floating
        One scalar reward per rollout.
    group_ids : torch.Tensor or array_like, shape ``(bs,)``
        Integer tensor ids, or a numpy array / list of any hashable ids (strings, objects as
        in verl's ``non_tensor_batch["uid"]``); NaN is refused.
    valid : torch.Tensor of bool, shape ``(bs,)``, optional
        ``False`` for rollouts that must not count (e.g. an empty response).
    method, small_groups, check_finite, return_info, **options
        As in :func:`advantages`.

    Returns
    -------
    torch.Tensor, shape ``(bs,)``, dtype and device of ``rewards`` (or
    :class:`tailext.AdvantageResult`).

    Raises
    ------
    ValueError
        Under ``small_groups="raise"``, if some group is too small for the rule (the message
        gives the size and one id).

    Notes
    -----
    Groups are gathered by a stable sort of the ids into one ``[G_s, s]`` block per distinct
    group size ``s``; one batched call per distinct size, no per-rollout Python loop.
    Host ids (a list or numpy array, like verl's ``uid``) are grouped on the host and the
    index copied asynchronously, so with ``check_finite=False`` the call is sync-free;
    tensor ids are copied to the host and grouped there, one device-to-host sync.
    ``check_finite=True`` adds the one sync of :func:`advantages`. Random rules (``seed``
    option) draw for all blocks from one Generator.

    Examples
    --------
    >>> import numpy as np, torch, tailext.torch
    >>> rewards = torch.tensor([1.0, 5.0, 2.0, 4.0, 0.0])
    >>> ids = np.array(["a", "b", "a", "b", "a"], dtype=object)
    >>> tailext.torch.advantages_from_groups(rewards, ids, method="mean_centred").tolist()
    [0.0, 0.5, 1.0, -0.5, -1.0]
    """
    rule, resolved, policy, check_finite, return_info = _entry_iv(
        method, options, small_groups, check_finite, return_info)
    if not isinstance(rewards, torch.Tensor) or rewards.ndim != 1:
        raise ValueError("`rewards` must be a 1-D torch.Tensor [bs] (one reward per rollout), "
                         f"got {getattr(rewards, 'shape', type(rewards).__name__)}.")
    work, mask, _ = _reward_tensor_iv(rewards, valid)
    work, mask = _sanitized(work[0], None if mask is None else mask[0], check_finite)
    out = torch.zeros_like(work)
    small = discrete = _zero_count(work)
    for size, example, index in _group_blocks(group_ids, work):
        try:
            block, block_small, block_discrete = _compute(
                rule, work[index], None if mask is None else mask[index], resolved, policy,
                where="each group", given=options)
        except ValueError as error:
            if isinstance(example, torch.Tensor):
                example = example.item()
            raise ValueError(f"groups of size {size} (e.g. group id {example!r}): "
                             f"{error}") from None
        out[index] = block
        small, discrete = small + block_small, discrete + block_discrete
    return _finish(rule, rule.min_group_size(**resolved), rewards, work[None],
                   None if mask is None else mask[None], out[None], small, discrete,
                   check_finite, True, return_info)


def _loss_iv(logprobs, mask, advantages, ref_logprobs, kl_coef):
    if not isinstance(logprobs, torch.Tensor) or logprobs.ndim != 2:
        raise ValueError("`logprobs` must be a 2-D torch.Tensor [bs, T], got "
                         f"{getattr(logprobs, 'shape', type(logprobs).__name__)}.")
    shape = tuple(logprobs.shape)
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != shape:
        raise ValueError(f"`mask` must be a tensor of shape {shape} like `logprobs`, got "
                         f"{getattr(mask, 'shape', type(mask).__name__)}.")
    if not isinstance(advantages, torch.Tensor) or tuple(advantages.shape) != shape[:1]:
        raise ValueError(f"`advantages` must be a tensor of shape ({shape[0]},), got "
                         f"{getattr(advantages, 'shape', type(advantages).__name__)}.")
    kl_coef = real_iv(kl_coef, "kl_coef", low=0.0)
    if ref_logprobs is not None and (not isinstance(ref_logprobs, torch.Tensor)
                                     or tuple(ref_logprobs.shape) != shape):
        raise ValueError(f"`ref_logprobs` must be None or a tensor of shape {shape}.")
    if kl_coef > 0 and ref_logprobs is None:
        raise ValueError("`kl_coef` > 0 needs `ref_logprobs`.")
    return mask.to(logprobs.dtype), advantages.detach().to(logprobs.dtype), float(kl_coef)


def grouped_policy_loss(logprobs, mask, advantages, ref_logprobs=None, kl_coef=0.0):
    r"""Policy-gradient loss: per-response token mean, then the mean over responses.

    .. math::

        L = \frac1{bs}\sum_i \frac1{|T_i|}\sum_{t\in T_i}
            \bigl[-A_i \log\pi(y_{i,t}) + \beta_{KL}\,k_3(i,t)\bigr],\qquad
        k_3 = e^{\rho} - \rho - 1,\ \rho = \log\pi_{ref} - \log\pi,

    so ``∇L = −(1/bs) Σ_i A_i ∇ log π(y_i)/|T_i| + …``: with ``bs = B·m`` this is the trainer
    convention of docs/math.md#policy-loss (advantages weight the mean over the ``m`` responses
    of a group).

    Parameters
    ----------
    logprobs : torch.Tensor, shape ``(bs, T)``
        Per-token log-probabilities under the current policy (with autograd graph).
    mask : torch.Tensor, shape ``(bs, T)``
        1 (or True) for response tokens.
    advantages : torch.Tensor, shape ``(bs,)``
        One advantage per response (detached here), e.g. from :func:`advantages_from_groups`.
    ref_logprobs : torch.Tensor or None, shape ``(bs, T)``
        Reference-policy log-probabilities for the KL penalty.
    kl_coef : float, default 0.0
        ``β_KL >= 0``.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Notes
    -----
    The KL penalty uses the ``k3`` estimator of ``KL(π ‖ π_ref)`` (Schulman 2020), which is
    non-negative and unbiased for samples from ``π``. A response with no unmasked token
    contributes 0 (its token count is clamped to 1). On-policy (no importance ratio, no
    clipping).

    Examples
    --------
    >>> import torch
    >>> from tailext.torch import grouped_policy_loss
    >>> lp = torch.zeros(2, 3, requires_grad=True)
    >>> loss = grouped_policy_loss(lp, torch.ones(2, 3), torch.tensor([1.0, -1.0]))
    >>> loss.backward(); lp.grad[0].tolist()
    [-0.1666666716337204, -0.1666666716337204, -0.1666666716337204]
    """
    mask, advantages, kl_coef = _loss_iv(logprobs, mask, advantages, ref_logprobs, kl_coef)
    per_token = -advantages[:, None] * logprobs
    if kl_coef > 0:
        log_ratio = ref_logprobs.detach() - logprobs
        per_token = per_token + kl_coef * (torch.exp(log_ratio) - log_ratio - 1.0)
    tokens = mask.sum(dim=1).clamp(min=1.0)
    return ((per_token * mask).sum(dim=1) / tokens).mean()
