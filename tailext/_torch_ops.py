"""torch building blocks shared by the rules' torch implementations (imported lazily).

Every function takes ``[B, m]`` float32/float64 tensors and an optional validity mask
(``None``: every rollout is valid) and works on their device without a device-to-host
synchronization: no ``.item()``, no ``bool(tensor)``, no data-dependent shapes. A masked
group is the group of its valid rollouts in their order: invalid entries are left out of
every sum, mean, sort and count.

**Precision: the per-row frame.** Every built-in rule is shift-invariant and
scale-equivariant (or scale-invariant), so it is computed on

.. math::

    x'_i = (r_i - a) / c,\\qquad a = \\max_{valid} r,\\quad
    c = 2^{e - 1},\\ \\tfrac12(\\max r - \\min r) \\in [2^{e-1}, 2^e)

(:func:`row_frame`): the row's own frame, in which the valid rewards lie in ``[−4, 0]``
whatever their magnitude or offset, and the result is scaled back by ``c`` (equivariant
rules) or not at all (invariant ones). ``c`` is a power of two, so dividing and multiplying
by it is exact: scaling a row by ``2^k`` gives bitwise the same ``x'``. The only rounding the
offset causes is that of ``r_i − a``, whose error is relative to the spread, not the offset
(measured, float32 rewards ``1e5 + N(0, 1)``: TEA 8.7 % off the float64 answer computed
directly, 1e-7 in the frame; ``benchmarks/torch_precision.py``). Terms with an absolute
size are moved into the frame with the same factor:
``(r − r̄)/(sd + ε) = (x' − x̄')/(sd' + ε/c)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["Frame", "row_frame", "masked", "zeroed", "row_sum", "row_mean", "centred", "std",
           "safe_divide", "zscore", "constant", "put_at", "ascending", "descending",
           "first_max", "positions", "ceil_ratio", "valid_ranks", "compacting", "inverse",
           "tie_means"]


class Frame(NamedTuple):
    """Rewards of ``B`` groups in their per-row frame (see the module docstring).

    Attributes
    ----------
    rewards : Tensor ``[B, m]``
        The rewards as given (for comparisons and orderings, which the frame's rounding
        could tie).
    values : Tensor ``[B, m]``
        ``x' = (r − a)/c`` at valid entries (in ``[−4, 0]``), 0 at invalid ones.
    scale : Tensor ``[B, 1]``
        ``c``, a power of two (``2^-126``/``2^-1022``, the smallest normal number, for rows
        whose spread is below it; 1 for rows of equal rewards).
    valid : Tensor ``[B, m]`` of bool, or None
    count : Tensor ``[B, 1]`` int64
        Valid rollouts per row, ``n``.
    size : Tensor ``[B, 1]``
        ``n`` in the rewards' dtype, at least 1 (a divisor).
    equal : Tensor ``[B, 1]`` of bool
        Rows whose valid rewards are all equal (or that have none).
    """

    rewards: torch.Tensor
    values: torch.Tensor
    scale: torch.Tensor
    valid: torch.Tensor | None
    count: torch.Tensor
    size: torch.Tensor
    equal: torch.Tensor


def masked(values, valid, fill):
    """``values`` where valid, ``fill`` elsewhere (``values`` itself without a mask)."""
    if valid is None:
        return values
    return torch.where(valid, values, fill)


def zeroed(values, valid):
    """Finite ``values`` with 0 where not valid, as ``values · valid``: a product, because
    ``torch.where`` on the CPU branches per element (measured [4096, 64] float32, one
    thread, 20 % invalid at random: 0.52 ms against 0.13 ms)."""
    return values if valid is None else values * valid


def row_frame(x, valid) -> Frame:
    """The :class:`Frame` of ``x[B, m]`` (finite where valid) → sync-free, O(B m)."""
    n_groups, m = x.shape
    if valid is None:
        high, low = x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True)
        count = torch.full((n_groups, 1), m, dtype=torch.int64, device=x.device)
    else:
        count = valid.sum(dim=1, keepdim=True)
        empty = count == 0
        high = torch.where(empty, 0.0, masked(x, valid, -torch.inf).amax(dim=1, keepdim=True))
        low = torch.where(empty, 0.0, masked(x, valid, torch.inf).amin(dim=1, keepdim=True))
    tiny = torch.finfo(x.dtype).tiny
    half = 0.5 * high - 0.5 * low  # half the spread: never overflows
    mantissa, _ = torch.frexp(half)  # half = mantissa · 2^e, mantissa in [1/2, 1)
    # (half/2)/mantissa = 2^(e−1) exactly: an IEEE quotient that is representable is exact,
    # and half/2 is exact for half >= 4·tiny.
    normal = half >= 4.0 * tiny
    scale = torch.where(normal, (0.5 * half) / torch.where(normal, mantissa, 1.0),
                        torch.where(half > 0, tiny, 1.0))  # equal rewards: c = 1, x' = 0
    # x/c − a/c = (x − a)/c rounded once, and it cannot overflow where x − a could: two
    # distinct floats differ by at least half an ulp of the larger, so |x|/c <= 2^(p+4).
    inverse = 1.0 / scale  # a power of two too (2^-127 is representable as a subnormal)
    values = zeroed(x * inverse - high * inverse, valid)  # invalid x are 0: finite
    return Frame(x, values, scale, valid, count, count.clamp(min=1).to(x.dtype), half == 0)


def row_sum(values, valid=None):
    """``Σ_{valid} values`` of finite ``values`` per row → ``[B, 1]``."""
    return zeroed(values, valid).sum(dim=1, keepdim=True)


def row_mean(values, frame: Frame):
    """Mean of ``values`` over the valid entries of each row → ``[B, 1]``."""
    return row_sum(values, frame.valid) / frame.size


def centred(frame: Frame):
    """``x' − x̄'`` at valid entries, 0 elsewhere (``(r − r̄)/c``)."""
    return zeroed(frame.values - row_mean(frame.values, frame), frame.valid)


def std(deviations, frame: Frame, ddof):
    """Standard deviation with divisor ``n − ddof`` (at least 1) from :func:`centred`."""
    divisor = (frame.size - ddof).clamp(min=1.0)
    return torch.sqrt((deviations * deviations).sum(dim=1, keepdim=True) / divisor)


def safe_divide(numerator, denominator):
    """``numerator / denominator`` where the denominator is positive, else the numerator."""
    return numerator / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def zscore(frame: Frame, eps, ddof):
    """``(r − r̄)/(sd + ε) = (x' − x̄')/(sd' + ε/c)``; equal rewards give zeros (also ε=0)."""
    deviations = centred(frame)
    return safe_divide(deviations, std(deviations, frame, ddof) + eps / frame.scale)


def constant(values, like, dtype=None):
    """A host array on ``like``'s device (dtype ``dtype`` or ``like``'s) without a device sync.

    A blocking host-to-device copy synchronizes with the device, so on CUDA the array is
    staged in pinned memory and copied asynchronously (the caching host allocator keeps the
    buffer alive until the copy has run).
    """
    host = torch.from_numpy(np.ascontiguousarray(values))
    if like.device.type == "cuda":
        host = host.pin_memory()
    return host.to(device=like.device, non_blocking=True).to(dtype or like.dtype)


def put_at(like, index, values):
    """Zeros shaped like ``like`` with ``values[B, 1]`` at column ``index[B, 1]``."""
    return torch.zeros_like(like).scatter(1, index, values)


def ascending(frame: Frame):
    """Sort order of each row's valid rewards, smallest first, invalid entries last."""
    return torch.argsort(masked(frame.rewards, frame.valid, torch.inf), dim=1)


def descending(frame: Frame):
    """Sort order of each row's valid rewards, largest first, invalid entries last."""
    return torch.argsort(masked(frame.rewards, frame.valid, -torch.inf), dim=1,
                         descending=True)


def first_max(frame: Frame, within=None):
    """Column of the first largest valid reward (among ``within`` too) → ``[B, 1]``."""
    allowed = frame.valid if within is None else within
    return masked(frame.rewards, allowed, -torch.inf).argmax(dim=1, keepdim=True)


def positions(like):
    """``[0, 1, …, m − 1]`` as a ``[1, m]`` int64 row on ``like``'s device."""
    return torch.arange(like.shape[1], device=like.device)[None]


def ceil_ratio(count, numerator: int, denominator: int):
    """``ceil(count · p/q)`` in exact integer arithmetic (``count`` an int64 tensor)."""
    return torch.div(count * numerator + (denominator - 1), denominator, rounding_mode="floor")


def valid_ranks(valid):
    """Position of each valid rollout among its row's valid rollouts (0-based), in order."""
    return torch.cumsum(valid.to(torch.int64), dim=1) - 1


def compacting(valid, count):
    """``[B, m]`` permutation (column → position) that puts each row's valid entries first,
    in their order, and the invalid ones after them."""
    ranks = valid_ranks(valid)
    return torch.where(valid, ranks, count + positions(valid) - ranks - 1)


def inverse(permutation):
    """The inverse of each row's permutation ``[B, m]`` (position → column)."""
    return torch.empty_like(permutation).scatter(
        1, permutation, positions(permutation).expand_as(permutation).contiguous())


def tie_means(values, keys, live):
    """Each entry of ``values[B, m]`` replaced by the mean over its run of equal ``keys``.

    ``keys`` must be sorted within each row over the ``live`` entries, which come first;
    entries past them form runs of their own and are returned unchanged.
    """
    change = torch.ones_like(live)
    change[:, 1:] = (keys[:, 1:] != keys[:, :-1]) | (live[:, 1:] != live[:, :-1])
    run = torch.cumsum(change.to(torch.int64), dim=1) - 1
    totals = torch.zeros_like(values).scatter_add(1, run, values)
    counts = torch.zeros_like(values).scatter_add(1, run, torch.ones_like(values))
    return torch.where(live, (totals / counts).gather(1, run), values)
