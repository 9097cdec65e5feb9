"""numba kernels for the tail fit, ψ and the TEA / Prefix-TEA estimators.

Layers (each calls only the ones above it):

* row frames (:func:`row_range`, :func:`row_frame`, :func:`to_frame`): every row is
  computed in its own frame ``x = (r − max r) · 2^-e`` with ``2^e`` the power of two at
  or below the row's spread, so every ``x`` lies in ``[-4, 0]`` whatever the magnitude
  of the rewards (subnormal … 1.8e308) and rounding is relative to the spread, not to an
  offset, while nothing overflows or underflows. The rules are shift-invariant and
  scale-equivariant or scale-invariant, so results computed on ``x`` are scaled back by
  ``2^e`` (exact) at the very end; absolute options (``ε``, an absolute scale floor) are
  scaled into the frame by ``2^-e``;
* row passes (:func:`sum_into_frame`, :func:`squares_about`, …): small functions inlined
  into the batched kernels (``inline="always"``: as separate functions each call passed
  its arrays with reference counting, which cost 40 ns per call — TEA 0.66 → 0.48 ms on
  ``[4096, 64]``), which are compiled with ``fastmath={"reassoc"}`` only, so LLVM
  vectorizes the sums (2.3× faster than the strict left-to-right sum on rows of 64; TEA
  0.71 → 0.40 ms); no NaN/inf assumptions, so a non-finite reward still turns its row's
  sum NaN, which is how the kernels detect one. Products may be regrouped, so output
  checks compare (``|v| <= max``) rather than multiply;
* per-value / per-group: :func:`psi_value`, :func:`tail_moments` and :func:`fit_tail` (the
  tail fit from the row's ``k`` largest values, which the caller finds with numpy's
  SIMD partition, :func:`tailext.estimators.top_blocks`; TEA itself selects them in its
  own counting passes, :mod:`tailext._tea_kernel`);
* batched: ``*_batch``, over groups with ``prange`` in chunks that each own their scratch
  buffers (no allocation per row), built serial and parallel and dispatched by batch size
  (:mod:`tailext._parallel`); float64 in, float64 out, plus a ``status[B]`` array
  (:data:`BAD_INPUT` for a row with a non-finite reward, :data:`BAD_OUTPUT` for one whose
  result is outside the float64 range) that replaces separate finiteness passes.

One prefix kernel serves TEA, the raw shaped reward and Prefix-TEA, and one cross-fit
kernel serves the direct, cross-fitted, split-budget and total-budget gradients: TEA is
Prefix-TEA with the single prefix ``(m,)`` and weight ``(1,)``, and the direct estimator is
the cross-fit estimator whose fitting and evaluation samples coincide. Argument validation
happens in the public wrappers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._parallel import batched_kernel

#: ``status`` codes of the batched kernels (0: the row is fine).
BAD_INPUT, BAD_OUTPUT = 1, 2
#: Rows per scratch chunk of a batched kernel (the unit of parallel work).
CHUNK_ROWS = 64
#: Back-scale factors ``2^e`` above which frame values of a few units may overflow.
SCALE_CHECKED = 2.0 ** 1016
#: numba fast-math flags of the batched kernels: reassociation only (see the module docstring).
FASTMATH = {"reassoc"}
_DOUBLE_MAX = 1.7976931348623157e308


# --- row frames -------------------------------------------------------------------------

@njit(cache=True, inline="always")
def row_range(row, n):
    """``(max, min)`` of ``row[:n]`` with four independent accumulators (a single one is
    latency-bound: 25 % slower on rows of 64). NaN entries may be skipped; callers detect
    them through a sum."""
    h0 = h1 = h2 = h3 = row[0]
    l0 = l1 = l2 = l3 = row[0]
    i = 0
    while i + 4 <= n:
        a, b, c, d = row[i], row[i + 1], row[i + 2], row[i + 3]
        h0, l0 = max(a, h0), min(a, l0)
        h1, l1 = max(b, h1), min(b, l1)
        h2, l2 = max(c, h2), min(c, l2)
        h3, l3 = max(d, h3), min(d, l3)
        i += 4
    while i < n:
        a = row[i]
        h0, l0 = max(a, h0), min(a, l0)
        i += 1
    return max(max(h0, h1), max(h2, h3)), min(min(l0, l1), min(l2, l3))


@njit(cache=True, inline="always")
def row_frame(hi, lo):
    """Frame ``(p, q, t, g)`` of a row with maximum ``hi`` and minimum ``lo``.

    ``x = (r·p − q)·t`` equals ``(r − hi)·2^-e`` with ``2^e <= hi − lo < 2^(e+1)`` (``e``
    clamped to ``[-1022, 1023]``), so ``x ∈ [-4, 0]`` and the row maximum maps to exactly 0;
    ``g = 2^e`` scales results back. For ``e >= 0`` the rewards are scaled before the
    subtraction (``r − hi`` can overflow when the spread exceeds the float64 maximum), for
    ``e < 0`` after it (``r·2^-e`` can overflow for a tiny spread at a large offset); either
    way the only rounding is one subtraction, relative to the spread. A constant row (or
    one with a NaN) gets the identity frame.
    """
    spread = hi - lo
    if not spread > 0.0:
        return 1.0, hi, 1.0, 1.0
    if spread > _DOUBLE_MAX:  # inf: the spread itself overflows; halve first (exact)
        e = math.frexp(0.5 * hi - 0.5 * lo)[1]
    else:
        e = math.frexp(spread)[1] - 1
    e = min(max(e, -1022), 1023)
    f = math.ldexp(1.0, -e)
    g = math.ldexp(1.0, e)
    if e >= 0:
        return f, hi * f, 1.0, g
    return 1.0, hi, f, g


@njit(cache=True, inline="always")
def to_frame(r, p, q, t):
    """``x = (r·p − q)·t`` (see :func:`row_frame`)."""
    return (r * p - q) * t


@njit(cache=True, inline="always")
def scaled_back(value, g):
    """``value · g`` for ``g = 2^e``, by ``ldexp``.

    Not a multiplication: under the kernels' reassociation flag (which numba applies to
    every function a kernel calls) the compiler could regroup a back-scaling by ``g`` (up
    to ``2^1023``) with the factors that formed ``value`` and overflow an intermediate —
    ``(m/(m−1))·g`` became ``(m·g)/(m−1)``, infinite at ``g = 2^1023``.
    """
    return math.ldexp(value, math.frexp(g)[1] - 1)


@njit(cache=True, inline="always")
def from_frame(x, hi, g):
    """The reward ``hi + x·g`` at frame value ``x`` (halved first where ``x·g`` may
    overflow; by ``ldexp``, like :func:`scaled_back`)."""
    e = math.frexp(g)[1] - 1
    if g > SCALE_CHECKED:
        return math.ldexp(0.5 * hi + math.ldexp(x, e - 1), 1)
    return hi + math.ldexp(x, e)


# --- reductions (vectorized: reassociation only) ----------------------------------------

@njit(cache=True, inline="always")
def sum_into_frame(row, n, p, q, t, x):
    """Write ``x[i] = to_frame(row[i])`` for ``i < n`` and return ``Σ x`` (NaN if a reward is
    not finite)."""
    total = 0.0
    for i in range(n):
        v = (row[i] * p - q) * t
        x[i] = v
        total += v
    return total


@njit(cache=True, inline="always")
def frame_sum(row, n, p, q, t):
    """``Σ_{i<n} to_frame(row[i])`` (NaN if a reward is not finite)."""
    total = 0.0
    for i in range(n):
        total += (row[i] * p - q) * t
    return total


@njit(cache=True, inline="always")
def frame_squares(row, n, p, q, t, centre):
    """``Σ_{i<n} (to_frame(row[i]) − centre)²``."""
    total = 0.0
    for i in range(n):
        d = (row[i] * p - q) * t - centre
        total += d * d
    return total


@njit(cache=True, inline="always")
def squares_about(x, n, centre):
    """``Σ_{i<n} (x[i] − centre)²``."""
    total = 0.0
    for i in range(n):
        d = x[i] - centre
        total += d * d
    return total


@njit(cache=True, inline="always")
def nonfinite_in(x, n):
    """Whether ``x[:n]`` holds a NaN or an infinity.

    Written as comparisons (``|v| <= max`` is false exactly for those): a product such as
    ``0·v`` would not do, since reassociation lets the compiler fold ``0·(a·g)`` into
    ``(0·g)·a = 0``.
    """
    finite = True
    for i in range(n):
        finite &= abs(x[i]) <= _DOUBLE_MAX
    return not finite


@njit(cache=True, inline="always")
def mean_and_sd(values, n, ddof):
    """Mean of ``values[:n]`` and ``sqrt(Σ (v − mean)² / (n − ddof))`` (two passes).

    For frame values (or any values of moderate size); the first pass sums deviations from
    ``values[0]`` so that rounding scales with the spread, not with an offset.
    """
    origin = values[0]
    total = 0.0
    for i in range(n):
        total += values[i] - origin
    mean = origin + total / n
    return mean, np.sqrt(squares_about(values, n, mean) / (n - ddof))


# --- the tail fit and ψ -----------------------------------------------------------------

@njit(cache=True, inline="always")
def psi_value(r, h, mu, s, inv_beta, kappa_n):
    """ψ(r; h, μ_t, s) = (1/β) 1{r ≥ h} (r − h) [1 + κ/(2s) (r + h − 2μ_t)]; 0 when s = 0."""
    if r < h or s <= 0.0:
        return 0.0
    return (r - h) * (1.0 + kappa_n / (2.0 * s) * (r + h - 2.0 * mu)) * inv_beta


@njit(cache=True)
def select_top(buf, n, k):
    """Reorder ``buf[:n]`` in place so ``buf[n-k:n]`` holds its ``k`` largest values.

    Wirth/Hoare quickselect with a median-of-three pivot: afterwards ``buf[n-k]`` is the
    k-th largest value, nothing left of it is larger and nothing right of it is smaller.
    Runs of equal values split evenly, so all-equal groups stay O(n).
    """
    target = n - k
    lo = 0
    hi = n - 1
    while hi > lo:
        a = buf[lo]
        b = buf[(lo + hi) >> 1]
        c = buf[hi]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
            if a > b:
                b = a
        pivot = b
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                tmp = buf[i]
                buf[i] = buf[j]
                buf[j] = tmp
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break


@njit(cache=True, inline="always")
def tail_moments(values, k, p, q, t, top):
    """Tail fit of the ``k`` largest rewards ``values[:k]`` (any order): their frame values
    go to ``top[:k]``; returns their minimum ``h``, mean, sd (divisor ``k``) and whether they
    are a two-level tie — at most two distinct values (``h`` and the maximum), one of them
    at least twice (the 0/1-reward pattern; the caller excludes constant groups).

    Two passes: the mean from deviations from the first value (rounding relative to the
    spread of the top values), then the squared deviations and the tie counts.
    """
    first = to_frame(values[0], p, q, t)
    total = 0.0
    low = high = first
    for i in range(k):
        v = to_frame(values[i], p, q, t)
        top[i] = v
        total += v - first
        low, high = min(low, v), max(high, v)
    mu = first + total / k
    squares = 0.0
    inside = 0
    n_low = 0
    n_high = 0
    for i in range(k):
        v = top[i]
        d = v - mu
        squares += d * d
        inside += (v > low) & (v < high)
        n_low += v == low
        n_high += v == high
    tied = inside == 0 and (n_low >= 2 or n_high >= 2)
    return low, mu, np.sqrt(squares / k), tied


@njit(cache=True, inline="always")
def sd_about(x, n, h):
    """Population sd of ``x[:n]`` from deviations from ``h``, in one pass:
    ``sqrt(mean(d²) − mean(d)²)``, ``d = x − h``.

    With ``h`` the ``k``-th largest of ``x[:n]`` (``k = ⌈βn⌉``), Cantelli's inequality bounds
    ``(mean − h)² / var`` by ``max((1−β)/β, β/(1−β))`` (3 at β = 1/4), so the subtraction
    loses at most ``log2(1 + that)`` bits (2 at β = 1/4); and a constant ``x[:n]`` gives
    exactly 0 (every ``d`` is 0), which a mean computed by summing cannot promise.
    """
    first = 0.0
    second = 0.0
    for i in range(n):
        d = x[i] - h
        first += d
        second += d * d
    mean = first / n
    return np.sqrt(max(second / n - mean * mean, 0.0))


@njit(cache=True, inline="always")
def fit_tail(x, n, values, k, p, q, t, floor_abs, floor_rel, top):
    """Tail vector ``(ĥ, μ̂_t, ŝ)`` of frame values ``x[:n]`` given ``values[:k]``, their
    ``k`` largest in reward units (any order; from numpy's partition), and whether those
    are a two-level tie. ``top`` (length ≥ k) receives them in the frame.

    ``ŝ = max(sd of the top k (divisor k), floor_abs + floor_rel · sd(x[:n]) (divisor n))``
    with ``floor_abs`` already in frame units.
    """
    h, mu, s, tied = tail_moments(values, k, p, q, t, top)
    floor = floor_abs
    if floor_rel > 0.0:
        floor += floor_rel * sd_about(x, n, h)
    return h, mu, max(s, floor), tied


@njit(cache=True)
def fit_row(x, n, k, floor_abs, floor_rel, buf):
    """Tail vector ``(ĥ, μ̂_t, ŝ)`` of ``x[:n]`` in its own units, using scratch ``buf``
    (length ≥ n), by quickselect; for unit-scale data (the validation replications).

    ``ŝ = max(sd of the top k (divisor k), floor_abs + floor_rel · sd(x[:n]) (divisor n))``.
    """
    for i in range(n):
        buf[i] = x[i]
    select_top(buf, n, k)
    top = buf[n - k:n]
    h = top[0]
    for i in range(1, k):
        h = min(h, top[i])
    mu, s = mean_and_sd(top, k, 0)
    floor = floor_abs
    if floor_rel > 0.0:
        floor += floor_rel * mean_and_sd(x, n, 0)[1]
    return h, mu, max(s, floor)


# --- batched kernels --------------------------------------------------------------------

@njit(cache=True, inline="always")
def chunk_bounds(chunk, n_chunks, n_rows):
    """Rows ``[start, stop)`` of ``chunk`` out of ``n_chunks`` near-equal chunks."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks


@njit(cache=True, inline="always")
def chunk_count(n_rows):
    return max(1, (n_rows + CHUNK_ROWS - 1) // CHUNK_ROWS)


#: ``mode`` of :func:`add_psi`.
PSI_RAW, PSI_SET, PSI_ADD = 0, 1, 2


@njit(cache=True, inline="always")
def add_psi(x, n, h, mu, curvature, factor, mode, result):
    """``result[i] = factor · ψ(x[i])`` (``PSI_RAW``), ``= factor · ψ₊(x[i])``
    (``PSI_SET``) or ``+= factor · ψ₊(x[i])`` (``PSI_ADD``) for ``i < n``, with ``ψ(v) =
    (v − h)(1 + curvature (v + h − 2μ))`` for ``v ≥ h``, else 0 (the ``1/β`` is in
    ``factor``); returns the sum of the terms. ψ₊ is clipped before the weight, which may be
    negative. One loop per mode, so that each vectorizes."""
    edge = h - 2.0 * mu
    total = 0.0
    if mode == PSI_RAW:
        for i in range(n):
            v = x[i]
            term = factor * (v - h) * (1.0 + curvature * (v + edge)) if v >= h else 0.0
            result[i] = term
            total += term
    else:
        for i in range(n):
            v = x[i]
            a = (v - h) * (1.0 + curvature * (v + edge))
            term = factor * a if (v >= h) & (a > 0.0) else 0.0
            if mode == PSI_ADD:
                result[i] += term
            else:
                result[i] = term
            total += term
    return total


@njit(cache=True, inline="always")
def shift_scale(values, n, centre, g):
    """``values[i] = (values[i] − centre)·g`` for ``i < n``; whether all results are finite
    (checked by comparison, as in :func:`nonfinite_in`)."""
    finite = True
    for i in range(n):
        v = (values[i] - centre) * g
        values[i] = v
        finite &= abs(v) <= _DOUBLE_MAX
    return finite


@njit(cache=True, inline="always")
def prefix_row(row, m, tops, sizes, tail_counts, weights, floor_abs, floor_rel, inv_beta,
               kappa_n, raw, x, top, result):
    """Prefix-TEA advantages of one row into ``result`` → ``(tied, status)``, framed by the
    row's range; ``tops``: the ``k_j`` largest values of every prefix, side by side (see
    :func:`prefix_tea_batch`), ``x`` (length ``m``) and ``top`` (length ``max k_j``) scratch.

    One pass for the range, one writing the frame values (with their sum, which also
    detects a non-finite reward), per prefix the tail fit (:func:`fit_tail`: its top values
    and one pass for the floor) and one ψ pass, and one pass that centres, scales back and
    checks the output.
    """
    hi, lo = row_range(row, m)
    p, q, t, g = row_frame(hi, lo)
    total = sum_into_frame(row, m, p, q, t, x)
    if not math.isfinite(total):
        result[:m] = 0.0
        return False, BAD_INPUT
    if not lo < hi:  # a constant group: ψ ≡ 0
        result[:m] = 0.0
        return False, 0
    n_prefixes = sizes.shape[0]
    result[sizes[0]:m] = 0.0  # the first prefix sets result[:n_0], the others add
    frame_floor = floor_abs * (p * t)
    total = 0.0
    offset = 0
    tied = False
    for j in range(n_prefixes):
        n_j = sizes[j]
        k_j = tail_counts[j]
        h, mu, s, tied_j = fit_tail(x, n_j, tops[offset:offset + k_j], k_j, p, q, t,
                                    frame_floor, floor_rel, top)
        offset += k_j
        if j == n_prefixes - 1:
            tied = tied_j
        mode = PSI_RAW if raw else (PSI_SET if j == 0 else PSI_ADD)
        if s > 0.0:
            total += add_psi(x, n_j, h, mu, kappa_n / (2.0 * s),
                             weights[j] * (m / n_j) * inv_beta, mode, result)
        elif mode != PSI_ADD:  # ψ ≡ 0
            result[:n_j] = 0.0
    if not shift_scale(result, m, 0.0 if raw else total / m, g):
        return tied, BAD_OUTPUT
    return tied, 0


@batched_kernel(fastmath=FASTMATH)
def prefix_tea_batch(rewards, tops, sizes, tail_counts, weights, floor_abs, floor_rel,
                     inv_beta, kappa_n, raw):
    """Prefix-TEA advantages (TEA when ``sizes = (m,)``, ``weights = (1,)``) → ``(out, tied,
    status)``.

    ``c_i = Σ_j w_j (m / n_j) 1{i < n_j} ψ₊(r_i; τ̂(r[:n_j]))``, ``A_i = c_i − mean(c)``,
    ``τ̂`` with ``k_j = tail_counts[j]``; ``raw=True`` (one prefix, weight 1): ``A_i =
    ψ(r_i; τ̂)``, neither clipped nor centred. ``tops[b]`` holds, prefix after prefix, the
    ``k_j`` largest values of ``rewards[b, :n_j]`` in any order (:func:`tailext.estimators.top_blocks`).
    ``tied[b]``: the top ``k`` of the whole row are a two-level tie (:func:`tail_moments`)
    in a non-constant row. Each row by :func:`prefix_row`; TEA itself has a faster kernel
    that selects the top values in its own passes (:func:`tailext._tea_kernel.tea_batch`).
    """
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    tied = np.zeros(n_groups, dtype=np.bool_)
    status = np.zeros(n_groups, dtype=np.uint8)
    k_max = 0
    for j in range(sizes.shape[0]):
        k_max = max(k_max, tail_counts[j])
    n_chunks = chunk_count(n_groups)
    for chunk in prange(n_chunks):
        x = np.empty(m)
        top = np.empty(k_max)
        start, stop = chunk_bounds(chunk, n_chunks, n_groups)
        for b in range(start, stop):
            tied[b], status[b] = prefix_row(rewards[b], m, tops[b], sizes, tail_counts,
                                            weights, floor_abs, floor_rel, inv_beta,
                                            kappa_n, raw, x, top, out[b])
    return out, tied, status


@batched_kernel(fastmath=FASTMATH)
def tail_vector_batch(rewards, tops, floor_abs, floor_rel):
    """Tail vectors of every row of ``rewards[B, m]`` → ``(h, μ, s, status)``, ``[B]`` each;
    ``tops[b]``: the row's ``k`` largest values (any order).

    Fitted in the row's frame; ``ĥ`` is returned as the data value it is, ``μ̂_t`` and
    ``ŝ`` scaled back (``status`` :data:`BAD_OUTPUT` where ``ŝ`` overflows).
    """
    n_groups, m = rewards.shape
    k = tops.shape[1]
    thresholds = np.empty(n_groups)
    means = np.empty(n_groups)
    scales = np.empty(n_groups)
    status = np.zeros(n_groups, dtype=np.uint8)
    n_chunks = chunk_count(n_groups)
    for chunk in prange(n_chunks):
        x = np.empty(m)
        top = np.empty(k)
        start, stop = chunk_bounds(chunk, n_chunks, n_groups)
        for b in range(start, stop):
            row = rewards[b]
            values = tops[b]
            threshold = values[0]
            for i in range(1, k):
                threshold = min(threshold, values[i])
            thresholds[b] = threshold
            hi, lo = row_range(row, m)
            p, q, t, g = row_frame(hi, lo)
            sum_into_frame(row, m, p, q, t, x)
            frame_floor = floor_abs * (p * t)
            h, mu, s, _ = fit_tail(x, m, values, k, p, q, t, frame_floor, floor_rel, top)
            means[b] = from_frame(mu, hi, g)
            scales[b] = (floor_abs if s == frame_floor and floor_rel == 0.0
                         else scaled_back(s, g))
            if not math.isfinite(scales[b]):
                status[b] = BAD_OUTPUT
    return thresholds, means, scales, status


@batched_kernel(fastmath=FASTMATH)
def shaped_reward_batch(rewards, thresholds, means, scales, inv_beta, kappa_n):
    """ψ of every reward for a given tail vector per row → ``(out[B, m], status)``.

    Evaluated in the frame of the row's rewards together with ``h`` and ``μ_t``.
    """
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    status = np.zeros(n_groups, dtype=np.uint8)
    for b in prange(n_groups):
        row = rewards[b]
        result = out[b]
        hi, lo = row_range(row, m)
        h0, mu0 = thresholds[b], means[b]
        hi, lo = max(hi, max(h0, mu0)), min(lo, min(h0, mu0))
        p, q, t, g = row_frame(hi, lo)
        h, mu = to_frame(h0, p, q, t), to_frame(mu0, p, q, t)
        s = scales[b] * (p * t)
        for i in range(m):
            result[i] = scaled_back(psi_value(to_frame(row[i], p, q, t), h, mu, s,
                                              inv_beta, kappa_n), g)
        if nonfinite_in(result, m):
            status[b] = BAD_OUTPUT
    return out, status


@batched_kernel(fastmath=FASTMATH)
def crossfit_gradient_batch(fit_rewards, fit_tops, eval_rewards, eval_scores, sizes,
                            tail_counts, weights, floor_abs, floor_rel, inv_beta, kappa_n):
    """``Σ_j w_j (1/n_j) Σ_{i < n_j} ψ(r^eval_i; τ̂(r^fit[:n_j])) S^eval_i`` → ``(out[B, d],
    status)``; ``fit_tops[b]``: the ``k_j`` largest of ``fit_rewards[b, :n_j]``, prefix after
    prefix.

    With ``fit_rewards is eval_rewards`` and one prefix this is the direct estimator. Both
    rows share one frame (their joint range); ψ is scaled back once per row.
    """
    n_groups, m_fit = fit_rewards.shape
    m_eval = eval_rewards.shape[1]
    d = eval_scores.shape[2]
    out = np.zeros((n_groups, d))
    status = np.zeros(n_groups, dtype=np.uint8)
    k_max = 0
    for j in range(sizes.shape[0]):
        k_max = max(k_max, tail_counts[j])
    n_chunks = chunk_count(n_groups)
    for chunk in prange(n_chunks):
        x = np.empty(m_fit)
        top = np.empty(k_max)
        start, stop = chunk_bounds(chunk, n_chunks, n_groups)
        for b in range(start, stop):
            fit_row_values = fit_rewards[b]
            eval_row = eval_rewards[b]
            hi, lo = row_range(fit_row_values, m_fit)
            eval_hi, eval_lo = row_range(eval_row, m_eval)
            hi, lo = max(hi, eval_hi), min(lo, eval_lo)
            if not lo < hi:  # fit and evaluation rows constant and equal: ψ ≡ 0
                continue
            p, q, t, g = row_frame(hi, lo)
            sum_into_frame(fit_row_values, m_fit, p, q, t, x)
            frame_floor = floor_abs * (p * t)
            result = out[b]
            offset = 0
            for j in range(sizes.shape[0]):
                n_j = sizes[j]
                k_j = tail_counts[j]
                h, mu, s, _ = fit_tail(x, n_j, fit_tops[b, offset:offset + k_j], k_j, p, q,
                                       t, frame_floor, floor_rel, top)
                offset += k_j
                factor = scaled_back(weights[j] / n_j, g)
                for i in range(n_j):
                    a = psi_value(to_frame(eval_row[i], p, q, t), h, mu, s, inv_beta,
                                  kappa_n)
                    if a != 0.0:
                        coef = factor * a
                        for c in range(d):
                            result[c] += coef * eval_scores[b, i, c]
            if nonfinite_in(result, d):
                status[b] = BAD_OUTPUT
    return out, status
