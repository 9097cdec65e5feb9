"""Torch adapter: every registered advantage rule on the rewards' own device.

``tailext.torch.advantages(rewards[B, m], method=...)`` computes the same numbers as
:func:`tailext.advantages` with torch ops (``topk``, ``sort``, ``cumsum``, ``searchsorted``)
on the tensor's device, without copying it to the host. Constants (``κ_N``, prefix weights,
max@k weights, the Chow split) are computed on the host once per call from the options
alone and moved to the device by an asynchronous copy, never a device sync.
Half-precision and float32 rewards are computed in float32, float64 in float64, and the
result is returned in the input dtype with no autograd graph attached.

Requires ``torch`` (``pip install tailext[torch]``); ``import tailext`` does not import it.
"""

from __future__ import annotations

import numpy as np
import torch

from . import baselines
from ._baseline_kernels import max_at_k_weights
from ._validation import check_tail_size, tail_settings_iv
from .constants import _check_positive_int
from .estimators import prefix_plan
from .rules import get_rule

__all__ = ["advantages", "advantages_from_groups", "grouped_policy_loss"]

_HALF = (torch.float16, torch.bfloat16)


# --- validation ---------------------------------------------------------------------------

def _check_finite(values: torch.Tensor, name: str, was_1d: bool):
    """Raise naming the first non-finite entry (one device sync)."""
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    row, col = (int(i) for i in torch.nonzero(~finite)[0])
    value = values[row, col].item()
    where = f"{name}[{col}]" if was_1d else f"row {row} of `{name}` (column {col})"
    raise ValueError(f"non-finite reward {value} in {where}; rewards must be finite.")


def _as_reward_tensor(rewards, check_finite: bool, name: str = "rewards"):
    """``(work[B, m] float32/float64, was_1d)``; ``work`` never aliases a tensor we write."""
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
    if check_finite:
        _check_finite(work, name, was_1d)
    return work, was_1d


def _check_group_size(m: int, minimum: int, name: str = "rewards"):
    if m < minimum:
        raise ValueError(f"groups of `{name}` need at least {minimum} rollouts, got m={m}.")


# --- shared pieces ------------------------------------------------------------------------

def _centred(x):
    """``r − r̄`` as ``s − s̄`` with ``s = r − max(r)``: equal rewards give exact zeros."""
    shifted = x - x.amax(dim=1, keepdim=True)
    return shifted - shifted.mean(dim=1, keepdim=True)


def _std(x, ddof):
    return torch.sqrt((_centred(x) ** 2).sum(dim=1, keepdim=True) / (x.shape[1] - ddof))


def _safe_divide(numerator, denominator):
    return numerator / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def _zscore(x, eps, ddof):
    return _safe_divide(_centred(x), _std(x, ddof) + eps)


def _constant(values, like):
    """A host array on ``like``'s device and dtype without a device sync.

    A blocking host-to-device copy synchronizes with the device, so on CUDA the array is
    staged in pinned memory and copied asynchronously (the caching host allocator keeps the
    buffer alive until the copy has run).
    """
    host = torch.from_numpy(np.ascontiguousarray(values))
    if like.device.type == "cuda":
        host = host.pin_memory()
    return host.to(device=like.device, non_blocking=True).to(like.dtype)


def _put_at(like, index, values):
    """Zeros shaped like ``like`` with ``values[B, 1]`` at column ``index[B, 1]``."""
    return torch.zeros_like(like).scatter(1, index, values)


# --- rules --------------------------------------------------------------------------------
# Each takes a validated [B, m] float32/float64 tensor and the rule's full option dict,
# validates the options like the numpy rule and returns [B, m] in the same dtype.

def _grpo(x):
    return _centred(x)


def _grpo_z(x, eps, ddof):
    eps, ddof = baselines._eps_iv(eps), baselines._ddof_iv(ddof)
    _check_group_size(x.shape[1], 1 + ddof)
    return _zscore(x, eps, ddof)


def _rloo(x):
    m = x.shape[1]
    _check_group_size(m, 2)
    return m / (m - 1) * _centred(x)


def _bon_max_mean(x):
    best = x.argmax(dim=1, keepdim=True)  # first index of the maximum
    return _put_at(x, best, _centred(x).gather(1, best))


def _bon_max_second(x, normalize, eps):
    _check_group_size(x.shape[1], 2)
    normalize, eps = baselines._bool_iv(normalize, "normalize"), baselines._eps_iv(eps)
    best = x.argmax(dim=1, keepdim=True)
    top_two = torch.topk(x, 2, dim=1).values
    gap = top_two[:, :1] - top_two[:, 1:]
    if normalize:
        gap = _safe_divide(gap, _std(x, 1) + eps)
    return _put_at(x, best, gap)


def _max_at_k_sorted(x, k, leave_one_out):
    """The two max@k sweeps of :func:`tailext._baseline_kernels.max_at_k_batch`."""
    m = x.shape[1]
    _check_group_size(m, 2)
    k = baselines._k_iv(k, m)
    weights = max_at_k_weights(m, k)
    own, above = _constant(weights.own, x), _constant(weights.above, x)
    ordered, order = torch.sort(x, dim=1)
    shifted = ordered - ordered[:, -1:]
    zero = torch.zeros_like(shifted[:, :1])
    if leave_one_out:  # own_i x_(i) − Σ_{j<i} above_{j+1} x_(j)
        lower = torch.cumsum(above[1:] * shifted[:, :-1], dim=1)
        swept = own * shifted - torch.cat([zero, lower], dim=1)
    else:  # own_i x_(i) + Σ_{j>i} above_j x_(j)
        upper = torch.flip(torch.cumsum(torch.flip(above * shifted, [1]), dim=1), [1])
        swept = own * shifted + torch.cat([upper[:, 1:], zero], dim=1)
    return torch.empty_like(swept).scatter(1, order, swept), k


def _bon_mean(x, k, eps):
    eps = baselines._eps_iv(eps)
    transformed, _ = _max_at_k_sorted(x, k, leave_one_out=False)
    return _zscore(transformed, eps, 0)


def _maxk_loo1(x, k):
    swept, k = _max_at_k_sorted(x, k, leave_one_out=True)
    return k / x.shape[1] * swept


def _chow_bon_rl(x, n_select, seed):
    n_groups, m = x.shape
    _check_group_size(m, 2)
    selected_host = baselines.chow_selection((n_groups, m), n_select=n_select, seed=seed)
    n_select = int(selected_host[0].sum())
    selected = _constant(selected_host, x).bool()
    best = torch.where(selected, x, torch.full_like(x, -torch.inf)).argmax(dim=1, keepdim=True)
    r_best = x.gather(1, best)
    gain = m * _centred(x).gather(1, best)
    below = ~selected & (x <= r_best)
    count = below.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
    out = torch.where(below, gain * (n_select - 1) / count, torch.zeros_like(x))
    return out.scatter(1, best, gain)


def _cat_bon(x, n_target, eps):
    m = x.shape[1]
    _check_group_size(m, 2)
    n_target = _check_positive_int(n_target, "n_target", 1)
    eps = baselines._eps_iv(eps)
    below = torch.searchsorted(torch.sort(x, dim=1).values, x, right=False)
    log_weights = (n_target - 1) * torch.log((below.to(x.dtype) + 1.0) / (m + 1.0))
    weights = torch.exp(log_weights - log_weights.amax(dim=1, keepdim=True))
    normalized = weights / weights.mean(dim=1, keepdim=True)
    return normalized * _safe_divide(_centred(x), _std(x, 1) + eps)


def _fit_and_psi(x, k, settings):
    """ψ(r; τ̂(x)) of every entry of ``x[B, n]``, the tail fit of its own row (MATH §2–§3)."""
    top = torch.topk(x, k, dim=1).values  # descending
    h = top[:, -1:]
    mu = top.mean(dim=1, keepdim=True)
    s = torch.sqrt(((top - mu) ** 2).mean(dim=1, keepdim=True))
    floor = settings.floor_abs
    if settings.floor_rel > 0.0:
        floor = floor + settings.floor_rel * torch.sqrt(
            ((x - x.mean(dim=1, keepdim=True)) ** 2).mean(dim=1, keepdim=True))
    s = torch.clamp(s, min=floor) if isinstance(floor, float) else torch.maximum(s, floor)
    positive = s > 0
    curvature = torch.where(positive, settings.kappa / (2.0 * s), torch.zeros_like(s))
    psi = (x - h) * (1.0 + curvature * (x + h - 2.0 * mu)) * settings.inv_beta
    return torch.where((x >= h) & positive, psi, torch.zeros_like(psi))


def _prefix_combined(x, sizes, weights, settings):
    """``c_i = Σ_j w_j (m/n_j) 1{i < n_j} ψ₊(r_i; τ̂(r[:n_j]))``, centred (TEA: one prefix)."""
    m = x.shape[1]
    combined = torch.zeros_like(x)
    for n_j, w_j in zip(sizes, weights):
        n_j = int(n_j)
        psi = _fit_and_psi(x[:, :n_j], check_tail_size(n_j, settings.tail_fraction), settings)
        combined[:, :n_j] += float(w_j) * (m / n_j) * torch.clamp(psi, min=0.0)
    return combined - combined.mean(dim=1, keepdim=True)


def _tea(x, tail_fraction, n_target, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    check_tail_size(x.shape[1], settings.tail_fraction)
    return _prefix_combined(x, [x.shape[1]], [1.0], settings)


def _tea_raw(x, tail_fraction, n_target, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _fit_and_psi(x, check_tail_size(x.shape[1], settings.tail_fraction), settings)


def _prefix_tea(x, tail_fraction, n_target, order, n_prefixes, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    plan = prefix_plan(x.shape[1], tail_fraction=settings.tail_fraction, order=order,
                       n_prefixes=n_prefixes)
    return _prefix_combined(x, plan.sizes.tolist(), plan.weights.tolist(), settings)


_TORCH_RULES = {
    "tea": _tea, "tea_raw": _tea_raw, "prefix_tea": _prefix_tea,
    "grpo": _grpo, "grpo_z": _grpo_z, "rloo": _rloo, "bon_max_mean": _bon_max_mean,
    "bon_max_second": _bon_max_second, "bon_mean": _bon_mean, "maxk_loo1": _maxk_loo1,
    "chow_bon_rl": _chow_bon_rl, "cat_bon": _cat_bon,
}


def _rule_iv(method, options):
    rule = get_rule(method)
    unknown = sorted(set(options) - set(rule.options))
    if unknown:
        allowed = ", ".join(sorted(rule.options)) or "none"
        raise TypeError(f"method {method!r} got unknown option(s) {unknown}; accepted "
                        f"options: {allowed}.")
    if method not in _TORCH_RULES:
        raise NotImplementedError(f"method {method!r} has no torch implementation; torch "
                                  f"rules: {', '.join(sorted(_TORCH_RULES))}.")
    return _TORCH_RULES[method], {**rule.options, **options}


# --- public API ---------------------------------------------------------------------------

@torch.no_grad()
def advantages(rewards, method="tea", *, check_finite=True, **options):
    """Advantages of every rollout under rule ``method``, computed with torch on ``rewards``' device.

    ``A = tailext.advantages(rewards, method, **options)`` evaluated with torch ops; see
    :func:`tailext.available_methods` and each rule's docstring for the formulas.

    Parameters
    ----------
    rewards : torch.Tensor, shape ``(m,)`` or ``(B, m)``, floating
        float16/bfloat16/float32 are computed in float32, float64 in float64.
    method : str, default "tea"
        Any registered rule (TEA, Prefix-TEA, raw TEA and every baseline).
    check_finite : bool, default True
        Raise on NaN/inf rewards, naming the row. This costs one device-to-host sync (a
        ``bool`` of ``isfinite(rewards).all()``); ``False`` makes the call sync-free.
    **options
        The rule's keyword options, as for :func:`tailext.advantages`.

    Returns
    -------
    torch.Tensor, same shape, dtype and device as ``rewards``, no autograd graph.

    Notes
    -----
    ``chow_bon_rl`` draws its split on the host from ``seed`` (numpy), so it matches the
    numpy rule for the same seed; the mask is copied to the device.

    Examples
    --------
    >>> import torch, tailext.torch
    >>> r = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.7]])
    >>> A = tailext.torch.advantages(r, method="tea")
    >>> A.dtype, bool(A.argmax() == 3), A.requires_grad
    (torch.float32, True, False)
    """
    if not isinstance(check_finite, (bool, np.bool_)):
        raise TypeError(f"`check_finite` must be a bool, got {check_finite!r}.")
    function, merged = _rule_iv(method, options)
    work, was_1d = _as_reward_tensor(rewards, bool(check_finite))
    out = function(work, **merged).to(rewards.dtype)
    return out[0] if was_1d else out


def _group_codes_iv(group_ids, n_samples, device):
    """Integer codes ``[bs]`` on ``device`` and the distinct ids (indexable by code)."""
    if isinstance(group_ids, torch.Tensor):
        if group_ids.ndim != 1 or group_ids.shape[0] != n_samples:
            raise ValueError(f"`group_ids` must have shape ({n_samples},) like `scores`, got "
                             f"{tuple(group_ids.shape)}.")
        distinct, codes = torch.unique(group_ids, return_inverse=True)
        return codes.to(device), distinct
    ids = np.asarray(group_ids)
    if ids.ndim != 1 or ids.shape[0] != n_samples:
        raise ValueError(f"`group_ids` must have shape ({n_samples},) like `scores`, got "
                         f"{ids.shape}.")
    # Codes by first appearance through a dict: O(bs) hashing. np.unique sorts, and on the
    # object arrays of strings trainers pass (verl's uid) that sort compares Python objects,
    # which cost more than the whole advantage computation.
    keys = ids.tolist()
    code_of = {}
    try:
        codes = np.fromiter((code_of.setdefault(key, len(code_of)) for key in keys),
                            dtype=np.int64, count=len(keys))
    except TypeError:  # unhashable ids: group by their string form
        code_of = {}
        codes = np.fromiter((code_of.setdefault(str(key), len(code_of)) for key in keys),
                            dtype=np.int64, count=len(keys))
    return torch.as_tensor(codes, device=device), list(code_of)


@torch.no_grad()
def advantages_from_groups(scores, group_ids, method="tea", *, check_finite=True, **options):
    """Advantages for a flat batch whose groups are given by an id per sample (verl's ``uid``).

    Samples with the same id form one group, in their order in ``scores`` (which matters
    for ``prefix_tea``); groups may have different sizes. Each group gets exactly
    ``tailext.torch.advantages(scores[group], method, **options)``.

    Parameters
    ----------
    scores : torch.Tensor, shape ``(bs,)``, floating
        One scalar reward per sample.
    group_ids : torch.Tensor or array_like, shape ``(bs,)``
        Integer tensor ids, or a numpy array / list of any sortable ids (strings, objects as
        in verl's ``non_tensor_batch["uid"]``).
    method, check_finite, **options
        As in :func:`advantages`.

    Returns
    -------
    torch.Tensor, shape ``(bs,)``, dtype and device of ``scores``.

    Raises
    ------
    ValueError
        If some group is too small for the rule (the message gives the size and one id).

    Notes
    -----
    Groups are gathered by a stable sort of the ids into one ``[G_s, s]`` block per distinct
    group size ``s``; one batched call per distinct size, no per-sample Python loop.
    Finding the distinct sizes needs one device-to-host sync (``torch.unique`` of tensor
    ids syncs too). ``chow_bon_rl`` draws its splits for all blocks from one Generator.

    Examples
    --------
    >>> import numpy as np, torch, tailext.torch
    >>> scores = torch.tensor([1.0, 5.0, 2.0, 4.0, 0.0])
    >>> ids = np.array(["a", "b", "a", "b", "a"], dtype=object)
    >>> tailext.torch.advantages_from_groups(scores, ids, method="grpo").tolist()
    [0.0, 0.5, 1.0, -0.5, -1.0]
    """
    if not isinstance(scores, torch.Tensor) or scores.ndim != 1:
        raise ValueError("`scores` must be a 1-D torch.Tensor [bs] (one reward per sample), "
                         f"got {getattr(scores, 'shape', type(scores).__name__)}.")
    function, merged = _rule_iv(method, options)
    work, _ = _as_reward_tensor(scores, bool(check_finite), "scores")
    work = work[0]
    codes, distinct = _group_codes_iv(group_ids, work.shape[0], work.device)
    if "seed" in merged:  # successive blocks must draw successive splits
        merged["seed"] = np.random.default_rng(merged["seed"])
    order = torch.argsort(codes, stable=True)
    counts = torch.bincount(codes, minlength=len(distinct))
    starts = torch.cumsum(counts, dim=0) - counts
    out = torch.empty_like(work)
    for size in torch.unique(counts).tolist():
        groups = torch.nonzero(counts == size)[:, 0]
        index = order[starts[groups][:, None] + torch.arange(size, device=work.device)]
        try:
            out[index] = function(work[index], **merged)
        except ValueError as error:
            example = distinct[int(groups[0])]
            if isinstance(example, torch.Tensor):
                example = example.item()
            raise ValueError(f"groups of size {size} (e.g. group id {example!r}): "
                             f"{error}") from None
    return out.to(scores.dtype)


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
    if isinstance(kl_coef, (bool, np.bool_)) or not isinstance(kl_coef, (int, float)) \
            or not np.isfinite(kl_coef) or kl_coef < 0:
        raise ValueError(f"`kl_coef` must be a finite number >= 0, got {kl_coef!r}.")
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
    convention of MATH §5 (advantages weight the mean over the ``m`` responses of a group).

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
