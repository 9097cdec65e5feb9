"""numba kernel of TEA and the raw shaped reward that selects each row's tail itself.

``tea_batch`` computes what :func:`tailext._kernels.prefix_tea_batch` computes for the single
prefix ``(m,)`` — TEA (``raw=False``) and the raw shaped reward ψ (``raw=True``), see
docs/math.md#tea-clipping — without numpy's partition (on ``[4096, 64]`` the partition and
its copy of the batch took 0.37 ms of TEA's 1.09 ms).

A row takes the fast path when the sums ``Σd``, ``Σd²`` of its deviations ``d`` from an
origin inside its range (the mean of its first four values) are finite and ``Σd²`` lies in
``[2^-600, 2^600]``: then no reward is NaN or infinite, the row is not constant, and no
square, product or quotient below overflows or underflows, so the row is computed in its
own units, every difference taken from ``ĥ`` (a data value) so that rounding is relative
to the row's spread at any offset. Every other row (non-finite, constant, extreme
magnitudes, or an output beyond float64) takes the general path, framed by its range
(:func:`tailext._kernels.prefix_row`, its top values found by quickselect).

Fast path, per row (``k = ⌈βm⌉``; steps 1 and 2 for a block of rows at a time), every pass
over the whole row and vectorized:

1. ``Σd``, ``Σd²`` → the row's mean and population sd (the relative floor's sd, kept when
   the origin is within √3 sd of the mean, so the one-pass variance loses at most 2 bits;
   otherwise recomputed about ``ĥ``, where Cantelli bounds the loss);
2. the counts at four thresholds from the normal model (ranks ``k + 4``, ``k + 1.5``,
   ``k − 1.5``, ``k − 4``; :func:`first_bracket`) and the largest order key
   (:func:`order_key`: the bit pattern as an integer, a negative value's low bits
   flipped);
3. ``ĥ``, the ``k``-th largest, exactly, by counting passes and one pass for the largest
   or smallest order key of the final bracket (:func:`kth_largest`);
4. ``D₁ = Σ (r − ĥ)₊``, ``D₂ = Σ (r − ĥ)₊²``, ``#{r > ĥ}`` — from the selection's last
   pass, which sums about the bracket's end it settles ``ĥ`` from (sums of non-negative
   parts; about its lower end only while that loses at most a bit, and without the count,
   which the tie flag then takes from a pass of its own when it needs it), else by a pass
   of their own. The ``k`` largest rewards are those above ``ĥ`` and copies
   of ``ĥ``, so ``μ̂_t − ĥ = D₁/k`` and ``ŝ² = D₂/k − (D₁/k)²``, kept when ``(μ̂_t − ĥ)² <=
   3 ŝ²`` (at most 2 bits lost; otherwise a second pass about ``μ̂_t``);
5. TEA: one pass writing ψ₊ and summing it, one subtracting the mean (ψ: one pass).

Order keys exist because numba's float maximum and minimum keep NaN semantics and do not
vectorize: a masked maximum of 64 rewards took 100 ns as floats and 6.5 ns as keys.

The tied-tail flag (:func:`tailext._kernels.tail_moments`) needs a pass of its own only when
the values above ``ĥ`` may all be equal (``n D₂ − D₁² <= 1e-9 D₁²``; Cauchy–Schwarz is
strict otherwise, far beyond the sums' rounding of ~m·2^-52) or may be two levels in the
general path's frame (:func:`strictly_between` cannot exclude it).

Two habits of numba decide the speed more than the passes do (measured on ``[4096, 64]``
normal rewards, one thread, median CPU time of interleaved calls, same run):

- Every array handed to an ``inline="always"`` function is a new reference: numba
  increments and decrements its count around the inlined body with calls into its runtime
  (atomic, and every vector register is spilled around them), and its pruning pass leaves
  them where the body has loops and branches. The previous version passed six arrays per
  row (the row, its int64 view, the output, the scratch buffer, a one-element cell and its
  view, for float ↔ key conversions through memory): twelve calls per row. Bit casts
  (:func:`float_bits`, :func:`bits_float`) and a buffer allocated only where quickselect
  needs it leave the row and the output: 166 → 149 ns per row.
- A row's steps form one chain of dependent reductions, square roots and divisions; the
  processor overlaps rows only where independent work lies close together in the
  instruction stream. Steps 1 and 2 therefore run for a block of 16 rows at a time
  (:func:`block_brackets`, indexing the batch directly): 149 → 136 ns per row (8 or 32
  rows: the same within 1 %). Blocking the selection's passes as well was slower (its
  per-row state and branches cost more than the overlap gained).

Together 0.69 ms → 0.56 ms per call, 2.4× → 1.95× the fused one-pass GRPO-Z of
benchmarks/bench_advantages.py (exponential rewards: 189 → 159 ns per row); the blocks'
state taken from three allocations per call instead of ten per chunk of 64 rows took
another 3–4 % off. In the benchmark report (every rule, numba and torch, interleaved) the
whole ``tailext.advantages`` call is 2.17–2.35× the fused GRPO-Z (six runs). The design
before this one compacted the candidates above rank ``k + 6`` into a buffer (98 ns per
row) and counted there (111 ns: loops of ~22 values run scalar): 1.37 ms. On this
processor (512-bit vectors, executed as two halves) a counting threshold costs ≈ 2.5 ns
per row (compare, mask to vector, subtract), the four first counts with the largest key
20–28 ns, a settling pass 20–24 ns, ψ and output ≈ 20 ns. Tried and measured slower or no
faster: a steering pass before any test (so that the tests' outcome is predictable) with
a last pass serving both bracket ends (8 % slower); float keys stored in an array by the
first pass (3 %); helpers as ordinary (not inlined) functions (50 % slower); four first
thresholds instead of two (``k ± 2.5``) made no difference on normal rewards and took
3–9 % off exponential, t₃ and uniform ones.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ._kernels import (FASTMATH, _DOUBLE_MAX, chunk_bounds, chunk_count, prefix_row,
                       sd_about, select_top)
from ._parallel import batched_kernel

#: Bounds of ``Σd²`` for the fast path (see the module docstring).
_SQUARES_LOW, _SQUARES_HIGH = 2.0 ** -600, 2.0 ** 600
#: Counting passes before :func:`kth_largest` selects the bracket's values by quickselect.
_MAX_PASSES = 8
#: Rows whose first two steps run together (:func:`tea_batch`).
_BLOCK_ROWS = 16
#: The order keys' ends: every finite reward's key lies strictly between them.
_KEY_LOW, _KEY_HIGH = np.iinfo(np.int64).min, np.iinfo(np.int64).max


@njit(cache=True, inline="always")
def order_key(bits):
    """The order key of a float64 given as its int64 bit pattern: ``bits`` for a value
    ``>= +0``, its 63 low bits flipped plus one for a negative one, so that keys compare
    as the values do (``-0.0`` and ``+0.0`` both have key 0). Integer maxima and minima
    vectorize where the float ones do not (numba's keep NaN semantics: a masked maximum of
    64 rewards took 100 ns as floats, 6.5 ns as keys)."""
    sign = bits >> 63  # -1 for a negative value, else 0
    return (bits ^ (sign & 0x7FFFFFFFFFFFFFFF)) - sign


@intrinsic
def float_bits(typingctx, value):
    """The bit pattern of the float64 ``value`` as an int64 (an LLVM bitcast: no memory
    round trip, and vectorized inside loops)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def bits_float(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (inverse of :func:`float_bits`)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(cache=True, inline="always")
def key_of(value):
    """The order key of the float ``value`` (see :func:`order_key`)."""
    return order_key(float_bits(value))


@njit(cache=True, inline="always")
def value_of(key):
    """The float whose order key is ``key`` (``+0.0`` for key 0; see :func:`key_of`)."""
    sign = key >> 63
    return bits_float((key + sign) ^ (sign & 0x7FFFFFFFFFFFFFFF))


@njit(cache=True, inline="always")
def first_bracket(row, m, k, t1, t2, t3, t4):
    """One vectorized pass over ``row[:m]`` counting at
    ``t1 <= t2 <= t3 <= t4`` → ``(t_lo, c_lo, t_hi, c_hi, the largest key)``: the largest
    threshold with at least ``k`` rewards at or above it and its count (``-inf``, ``m`` if
    none), the smallest with fewer (``+inf``, 0 if none)."""
    c1 = 0
    c2 = 0
    c3 = 0
    c4 = 0
    top = _KEY_LOW
    for i in range(m):
        v = row[i]
        c1 += v >= t1
        c2 += v >= t2
        c3 += v >= t3
        c4 += v >= t4
        top = max(top, key_of(v))
    t_lo, c_lo = -np.inf, m
    t_hi, c_hi = np.inf, 0
    for t, c in ((t1, c1), (t2, c2), (t3, c3), (t4, c4)):  # unrolled; counts fall
        t_lo = t if c >= k else t_lo
        c_lo = c if c >= k else c_lo
    for t, c in ((t4, c4), (t3, c3), (t2, c2), (t1, c1)):
        t_hi = t if c < k else t_hi
        c_hi = c if c < k else c_hi
    return t_lo, c_lo, t_hi, c_hi, top


@njit(cache=True, inline="always")
def count_two(row, m, ta, tb):
    """``(#{r >= ta}, #{r >= tb})`` over ``row[:m]`` (one vectorized pass)."""
    ca = 0
    cb = 0
    for i in range(m):
        v = row[i]
        ca += v >= ta
        cb += v >= tb
    return ca, cb


@njit(cache=True, inline="always")
def count_above(row, m, t):
    """``#{r > t}`` over ``row[:m]``."""
    c = 0
    for i in range(m):
        c += row[i] > t
    return c


@njit(cache=True, inline="always")
def narrowed(t_lo, c_lo, t_hi, c_hi, k, ta, ca, tb, cb):
    """The bracket ``c_lo = #{r >= t_lo} >= k > c_hi = #{r >= t_hi}`` narrowed by the counts
    ``ca``, ``cb`` at ``ta <= tb`` (so ``ca >= cb``) → ``(t_lo, c_lo, t_hi, c_hi)``. By
    selects: which end moves is a coin toss per row, and a mispredicted branch costs about
    15 cycles."""
    low_b = (cb >= k) & (tb > t_lo)
    low_a = (ca >= k) & (ta > t_lo) & (not low_b)
    high_a = (ca < k) & (ta < t_hi)
    high_b = (cb < k) & (tb < t_hi) & (not high_a)
    t_lo, c_lo = (tb, cb) if low_b else ((ta, ca) if low_a else (t_lo, c_lo))
    t_hi, c_hi = (ta, ca) if high_a else ((tb, cb) if high_b else (t_hi, c_hi))
    return t_lo, c_lo, t_hi, c_hi


@njit(cache=True, inline="always")
def steering(t_lo, c_lo, t_hi, c_hi, k, low, high, bisect):
    """The next two thresholds inside the bracket: ±0.35 of a mean spacing around where the
    ``k``-th largest would be if the bracket's values were evenly spaced (``bisect``: both
    at its middle, progress whatever the spacing); ``low``, ``high`` stand in for an
    infinite end."""
    inside = c_lo - c_hi
    a = t_lo if t_lo > -np.inf else low
    b = t_hi if t_hi < np.inf else high
    if not a < b:  # the bounds are off (rounding): bisect what is known
        a, b = (t_lo, t_hi) if t_lo > -np.inf and t_hi < np.inf else (a - 1.0, a + 1.0)
    step = (b - a) / inside
    if bisect:
        middle = a + 0.5 * inside * step
        return middle, middle
    where = a + (inside - (k - c_hi) + 0.5) * step
    ta = where - 0.35 * step
    tb = where + 0.35 * step
    # selects, clamped to the bracket: numba's min and max branch on NaN
    return (ta if ta > a else a), (tb if tb < b else b)


@njit(cache=True, inline="always")
def bracket_end(row, m, t, key, from_top):
    """The largest order key ``< key`` (``from_top``) or the smallest ``>= key`` of the
    values ``row[:m]`` (``key``: the key of ``t``), with ``S₁ =
    Σ_{r >= t} (r − t)`` and ``S₂ = Σ_{r >= t} (r − t)²`` over ``row[:m]``, in one pass
    (``from_top`` is the same for the whole loop: compiled as two loops)."""
    best = _KEY_LOW if from_top else _KEY_HIGH
    first = 0.0
    second = 0.0
    for i in range(m):
        x = key_of(row[i])
        if from_top:
            best = max(best, x if x < key else _KEY_LOW)
        else:
            best = min(best, x if x >= key else _KEY_HIGH)
        d = row[i] - t
        e = d if d >= 0.0 else 0.0
        first += e
        second += e * e
    return best, first, second


@njit(cache=True, inline="always")
def settled(row, m, k, t_lo, c_lo, t_hi, c_hi):
    """``(ĥ, D₁, D₂, n)`` as :func:`kth_largest` for a bracket whose answer is its largest
    value (``k − c_hi = 1``) or its smallest (``k = c_lo``), from one pass
    (:func:`bracket_end`).

    From the top: the ``c_hi`` values above ``ĥ`` are those ``>= t_hi`` and ``r − ĥ = (r −
    t_hi) + g``, ``g = t_hi − ĥ >= 0``: every term a sum of non-negative parts. From the
    bottom: the ``k`` values ``>= t_lo`` are the tail and ``r − ĥ = (r − t_lo) − g``, ``g =
    ĥ − t_lo >= 0``; with ``k g <= S₁'/4``, ``D₁ >= 3 S₁'/4`` and ``D₂ >= S₂' − 2g S₁' >=
    S₂' − S₁'²/(2k) >= S₂'/2`` (Cauchy–Schwarz), so at most a bit is lost, and ``n`` is not
    known (ties at ``ĥ``): -2; otherwise -1, no sums.
    """
    if k - c_hi == 1:
        top, first, second = bracket_end(row, m, t_hi, key_of(t_hi), True)
        h = value_of(top)
        g = t_hi - h if c_hi > 0 else 0.0  # c_hi = 0 (k = 1): nothing above, t_hi may be inf
        return h, first + c_hi * g, second + (2.0 * g) * first + c_hi * (g * g), c_hi
    bottom, first, second = bracket_end(row, m, t_lo, key_of(t_lo), False)
    h = value_of(bottom)
    g = h - t_lo
    if t_lo > -np.inf and k * g <= 0.25 * first:
        return h, first - k * g, second - (2.0 * g) * first + k * (g * g), -2
    return h, 0.0, 0.0, -1


@njit(cache=True, inline="always")
def kth_largest(row, m, k, t_lo, c_lo, t_hi, c_hi, low, high):
    """The ``k``-th largest value ``ĥ`` of ``row[:m]`` (finite values), exactly, from the
    bracket ``c_lo = #{r >= t_lo} >= k > c_hi = #{r >= t_hi}`` (``-inf``, ``m`` and
    ``+inf``, 0 where nothing is known) → ``(ĥ, D₁, D₂, n)``: where
    the pass that finds ``ĥ`` also gives them, ``D₁ = Σ (r − ĥ)₊``, ``D₂ = Σ (r − ĥ)₊²``
    and ``n = #{r > ĥ}``; ``n = -2`` where it gives the sums but not the count, ``n = -1``
    where it gives neither.

    The answer is the ``j``-th largest of the ``w = c_lo − c_hi`` values in ``[t_lo,
    t_hi)``, ``j = k − c_hi``. Once it is the bracket's largest value (``j = 1``) or its
    smallest (``j = w``), one pass settles it (:func:`settled`, on order keys: vectorized,
    unlike float maxima); until then each pass counts at two thresholds
    (:func:`steering`) and narrows the bracket (:func:`narrowed`). When a pass does not
    narrow it, the next one bisects it; after two such passes it holds tied values: its
    smallest value ``a`` is the answer if fewer than ``k`` values exceed it, else the
    bracket starts above ``a``. After ``_MAX_PASSES`` passes the bracket's values are
    selected by quickselect. Only counts decide; the thresholds merely steer (``low``,
    ``high`` stand in for an infinite end).
    """
    stalled = 0
    for _ in range(_MAX_PASSES):
        if k - c_hi == 1 or k == c_lo:
            return settled(row, m, k, t_lo, c_lo, t_hi, c_hi)
        inside = c_lo - c_hi
        ta, tb = steering(t_lo, c_lo, t_hi, c_hi, k, low, high, stalled > 0)
        ca, cb = count_two(row, m, ta, tb)
        t_lo, c_lo, t_hi, c_hi = narrowed(t_lo, c_lo, t_hi, c_hi, k, ta, ca, tb, cb)
        stalled = stalled + 1 if c_lo - c_hi >= inside else 0
        if stalled == 2:  # twice no progress: the bracket holds tied values
            stalled = 0
            a = value_of(bracket_end(row, m, t_lo, key_of(t_lo), False)[0])
            above = count_above(row, m, a)
            if above < k:
                return a, 0.0, 0.0, -1
            t_lo, c_lo = np.nextafter(a, np.inf), above
    buf = np.empty(m)  # rare: an allocation here costs less than a buffer passed in
    n = 0
    for i in range(m):  # the bracket's values, then the (k − c_hi)-th largest of them
        v = row[i]
        if v >= t_lo and v < t_hi:
            buf[n] = v
            n += 1
    select_top(buf, n, k - c_hi)
    return buf[n - (k - c_hi)], 0.0, 0.0, -1


@njit(cache=True, inline="always")
def all_equal_above(row, m, h):
    """Whether every ``r > h`` of ``row[:m]`` has the same value (some must exist)."""
    a = np.inf
    for i in range(m):
        v = row[i]
        a = v if (v > h) & (v < a) else a
    return count_above(row, m, a) == 0


@njit(cache=True, inline="always")
def framed_two_level(row, m, k, h, n_gt, top):
    """The tied-tail flag on the frame's values ``x − max x`` (how the general path and the
    reference see the row; ``top`` is the row's maximum): a top ``k`` of at most two
    levels, one of them repeated. The raw values' flag can miss it when a value lies within
    rounding of ``ĥ`` or of the maximum relative to their distance (``[3e-256, 1, 0, …]``:
    ``3e-256 − 1 == 0 − 1``)."""
    low = h - top
    inside = 0
    n_low = k - n_gt
    n_high = 0
    for i in range(m):
        v = row[i]
        x = v - top
        above = v > h
        inside += above & (x > low) & (x < 0.0)
        n_low += above & (x == low)
        n_high += above & (x == 0.0)
    return inside == 0 and (n_low >= 2 or n_high >= 2)


@njit(cache=True, inline="always")
def strictly_between(d1, d2, n_gt, spread, m):
    """Whether some ``r > ĥ`` lies strictly between ``ĥ`` and the maximum by more than
    ``2^-30`` of ``R = max − ĥ`` (then the frame cannot merge the values above ``ĥ`` into
    two levels), from ``D₁ = Σ (r − ĥ)₊`` and ``D₂ = Σ (r − ĥ)₊²``.

    ``R D₁ − D₂ = Σ_{r > ĥ} (r − ĥ)(R − (r − ĥ))``, a sum of terms ``>= 0``; if every value
    above ``ĥ`` were within ``εR`` of ``ĥ`` or of the maximum, each term would be at most
    ``εR (r − ĥ)`` or ``εR²``, the sum at most ``(1 + n) ε R D₁`` (``D₁ >= R``). The
    test's margin adds the sums' rounding, ``m 2^-48 R D₁``.
    """
    margin = (1.0 + n_gt) * 2.0 ** -30 + m * 2.0 ** -48
    return spread * d1 - d2 > margin * spread * d1


@njit(cache=True, inline="always")
def block_brackets(rewards, start, stop, m, k, inv_m, z, ok, shift, variance, sd, centre,
                   t_lo, c_lo, t_hi, c_hi, top_key):
    """Steps 1 and 2 of the fast path for the rows ``start <= b < stop`` of ``rewards``,
    into the arrays indexed by ``b − start``: ``ok`` (the row may take the fast path), the
    mean's ``shift`` from the origin, the population ``variance`` and ``sd``, the
    ``centre`` (the mean), the first bracket and the largest order key
    (:func:`first_bracket`). A block's rows are independent, so their passes overlap in the
    processor (see :func:`tea_batch`)."""
    for j in range(stop - start):
        b = start + j
        origin = rewards[b, 0]
        if m >= 4:
            origin = 0.25 * ((rewards[b, 0] + rewards[b, 1])
                             + (rewards[b, 2] + rewards[b, 3]))
        first = 0.0
        second = 0.0
        for i in range(m):
            d = rewards[b, i] - origin
            first += d
            second += d * d
        moved = first * inv_m
        spread = second * inv_m - moved * moved
        # also False for NaN and inf
        ok[j] = (second >= _SQUARES_LOW) & (second <= _SQUARES_HIGH) & (spread > 0.0)
        shift[j] = moved
        variance[j] = spread
        sd[j] = math.sqrt(spread) if spread > 0.0 else 0.0
        centre[j] = origin + moved
    for j in range(stop - start):
        if ok[j]:
            c = centre[j]
            s = sd[j]
            t_lo[j], c_lo[j], t_hi[j], c_hi[j], top_key[j] = first_bracket(
                rewards[start + j], m, k, c + z[0] * s, c + z[1] * s, c + z[2] * s,
                c + z[3] * s)


@njit(cache=True, inline="always")
def tea_fast_row(row, m, k, inv_m, inv_k, shift, variance, sd, centre, t_lo, c_lo, t_hi,
                 c_hi, top_key, spread_bound, floor_abs, floor_rel, inv_beta, kappa_n, raw,
                 result):
    """TEA (``raw``: ψ) of one row in its own units, from its moments and first bracket
    (:func:`block_brackets`) → ``(done, tied)``; ``done`` is False where the row needs the
    general path after all (an output beyond float64). ``inv_m``, ``inv_k``: ``1/m``,
    ``1/k`` (divisions lie on each row's critical path)."""
    low = centre - spread_bound * sd
    high = centre + spread_bound * sd
    h, d1, d2, n_gt = kth_largest(row, m, k, t_lo, c_lo, t_hi, c_hi, low, high)
    if n_gt == -1:  # the selection's last pass did not give the tail sums
        d1 = 0.0
        d2 = 0.0
        n_gt = 0
        for i in range(m):
            d = row[i] - h
            e = d if d > 0.0 else 0.0
            d1 += e
            d2 += e * e
            n_gt += d > 0.0
    delta = d1 * inv_k  # μ̂_t − ĥ
    variance_top = d2 * inv_k - delta * delta
    if not delta * delta <= 3.0 * variance_top:  # the one-pass variance may have lost bits
        if n_gt < 0:
            n_gt = count_above(row, m, h)
        squares = 0.0
        for i in range(m):
            d = row[i] - h
            e = d - delta if d > 0.0 else 0.0
            squares += e * e
        variance_top = (squares + (k - n_gt) * delta * delta) / k
    s = math.sqrt(max(variance_top, 0.0))
    if floor_rel > 0.0:
        if not shift * shift <= 3.0 * variance:  # the origin was far from the mean
            sd = sd_about(row, m, h)
        s = max(s, floor_abs + floor_rel * sd)
    else:
        s = max(s, floor_abs)
    top = value_of(top_key)
    # a value strictly inside (ĥ, max) rules out every tie; with k for the unknown count
    # (an upper bound: a wider margin)
    if n_gt == -2 and strictly_between(d1, d2, k, top - h, m):
        tied = False
    else:
        if n_gt < 0:
            n_gt = count_above(row, m, h)
        if n_gt == 0:
            tied = True  # the k largest are all ĥ (k >= 2)
        elif n_gt == 1 or n_gt * d2 - d1 * d1 <= 1e-9 * d1 * d1:
            tied = all_equal_above(row, m, h) and (k - n_gt >= 2 or n_gt >= 2)
        else:
            tied = False
        # equal in the frame, distinct in raw units: values within rounding of ĥ or of max
        if not tied and not strictly_between(d1, d2, n_gt, top - h, m):
            tied = framed_two_level(row, m, k, h, n_gt, top)
    if not s > 0.0:
        result[:m] = 0.0
        return True, tied
    curvature = kappa_n / (2.0 * s)
    edge = 2.0 * delta  # r + ĥ − 2μ̂_t = d − 2(μ̂_t − ĥ)
    finite = True
    if raw:
        for i in range(m):
            d = row[i] - h
            e = d if d > 0.0 else 0.0
            term = inv_beta * e * (1.0 + curvature * (e - edge))
            result[i] = term
            finite &= abs(term) <= _DOUBLE_MAX
        return finite, tied
    total = 0.0
    for i in range(m):
        d = row[i] - h
        e = d if d > 0.0 else 0.0
        term = inv_beta * e * (1.0 + curvature * (e - edge))
        term = term if term > 0.0 else 0.0
        result[i] = term
        total += term
    if not total <= _DOUBLE_MAX:  # every ψ₊ >= 0 is at most their sum: all finite if it is
        return False, tied
    mean = total * inv_m
    for i in range(m):
        result[i] -= mean
    return True, tied


@njit(cache=True, fastmath=FASTMATH)
def general_rows(rewards, start, stop, k, floor_abs, floor_rel, inv_beta, kappa_n, raw, out,
                 tied, status):
    """The general path (:func:`tailext._kernels.prefix_row`, framed by the row's range)
    for the rows ``start <= b < stop`` with ``status[b]`` set, which it overwrites. A
    function of its own, not inlined: inside the fast loop its code made the fast path
    3–7 % slower though no row took it."""
    m = rewards.shape[1]
    sizes = np.full(1, m, dtype=np.int64)
    counts = np.full(1, k, dtype=np.int64)
    weights = np.ones(1)
    buf = np.empty(m)
    x = np.empty(m)
    top = np.empty(k)
    for b in range(start, stop):
        if status[b]:
            row = rewards[b]
            for i in range(m):  # the general path takes the top values, any order
                buf[i] = row[i]
            select_top(buf, m, k)
            tied[b], status[b] = prefix_row(row, m, buf[m - k:], sizes, counts, weights,
                                            floor_abs, floor_rel, inv_beta, kappa_n, raw,
                                            x, top, out[b])


@batched_kernel(fastmath=FASTMATH)
def tea_batch(rewards, k, z, floor_abs, floor_rel, inv_beta, kappa_n, raw):
    """TEA (``raw``: the raw shaped reward) of every row of the C-contiguous ``rewards`` →
    ``(out, tied, status)`` as :func:`tailext._kernels.prefix_tea_batch` with the single
    prefix ``(m,)``; ``k = ⌈βm⌉``; ``z``: four increasing standard-normal quantiles, of
    the ranks ``k + 4``, ``k + 1.5``, ``k − 1.5`` and ``k − 4`` from the top (the first
    counting thresholds, ``mean + z·sd``)."""
    n_groups, m = rewards.shape
    out = np.empty((n_groups, m))
    tied = np.zeros(n_groups, dtype=np.bool_)
    status = np.zeros(n_groups, dtype=np.uint8)
    spread_bound = math.sqrt(m - 1.0) * 1.000001  # Samuelson: |r − mean| <= √(m−1) sd
    inv_m = 1.0 / m
    inv_k = 1.0 / k
    n_chunks = chunk_count(n_groups)
    # every chunk's block state from three allocations per call (ten per chunk, 640 per
    # call on [4096, 64], took 3–4 % of the call)
    ok_all = np.empty((n_chunks, _BLOCK_ROWS), dtype=np.bool_)
    floats = np.empty((n_chunks, 6, _BLOCK_ROWS))
    ints = np.empty((n_chunks, 3, _BLOCK_ROWS), dtype=np.int64)
    for chunk in prange(n_chunks):
        ok = ok_all[chunk]
        shift, variance, sd = floats[chunk, 0], floats[chunk, 1], floats[chunk, 2]
        centre, t_lo, t_hi = floats[chunk, 3], floats[chunk, 4], floats[chunk, 5]
        c_lo, c_hi, top_key = ints[chunk, 0], ints[chunk, 1], ints[chunk, 2]
        start, stop = chunk_bounds(chunk, n_chunks, n_groups)
        general = 0
        for first in range(start, stop, _BLOCK_ROWS):
            last = min(first + _BLOCK_ROWS, stop)
            block_brackets(rewards, first, last, m, k, inv_m, z, ok, shift, variance, sd,
                           centre, t_lo, c_lo, t_hi, c_hi, top_key)
            for j in range(last - first):
                b = first + j
                done = False
                if ok[j]:
                    done, tied[b] = tea_fast_row(
                        rewards[b], m, k, inv_m, inv_k, shift[j], variance[j], sd[j],
                        centre[j], t_lo[j], c_lo[j], t_hi[j], c_hi[j], top_key[j],
                        spread_bound, floor_abs, floor_rel, inv_beta, kappa_n, raw, out[b])
                status[b] = not done  # for now: "needs the general path"
                general += not done
        if general:
            general_rows(rewards, start, stop, k, floor_abs, floor_rel, inv_beta, kappa_n,
                         raw, out, tied, status)
    return out, tied, status
