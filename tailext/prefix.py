"""Tail counts, compatible prefix sizes and jackknife cancellation weights.

The formulas and conventions are in docs/math.md#tail-count, docs/math.md#prefix-sizes and
docs/math.md#cancellation-weights.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._arguments import MAX_TAIL_DENOMINATOR, integer_iv, numeric_array_iv, shown, tail_fraction_iv

__all__ = ["tail_count", "tail_fraction_ratio", "prefix_sizes", "cancellation_weights"]


def tail_fraction_ratio(tail_fraction) -> Fraction:
    """``β`` as the closest fraction ``p/q`` with ``q <= 1000``.

    Floats such as ``0.1`` are not exactly one tenth in binary; reading them as the nearest
    small fraction makes ``k = ceil(β m)`` and the prefix rule exact integer arithmetic.

    Examples
    --------
    >>> from tailext.prefix import tail_fraction_ratio
    >>> tail_fraction_ratio(0.1), tail_fraction_ratio(0.25)
    (Fraction(1, 10), Fraction(1, 4))
    """
    beta = tail_fraction_iv(tail_fraction)
    return Fraction(beta).limit_denominator(MAX_TAIL_DENOMINATOR)


def tail_count(group_size, tail_fraction) -> int:
    """Number of top samples in the tail fit, ``k = ceil(β m)`` (see docs/math.md#tail-count).

    The ceiling is tailext's convention: the fit never uses fewer than the fraction asked for,
    and ``k >= 1`` for every ``m >= 1``. ``β`` is read as the fraction of
    :func:`tail_fraction_ratio`, so ``0.1 · 30`` gives ``k = 3`` (not 4, as
    ``math.ceil(0.1 * 30)`` would in floating point).

    Examples
    --------
    >>> from tailext.prefix import tail_count
    >>> tail_count(64, 0.25), tail_count(30, 0.1), tail_count(10, 0.25)
    (16, 3, 3)
    """
    m, ratio = _tail_count_iv(group_size, tail_fraction)
    return -((-ratio.numerator * m) // ratio.denominator)


def _tail_count_iv(group_size, tail_fraction):
    return integer_iv(group_size, "group_size", low=1), tail_fraction_ratio(tail_fraction)


def prefix_sizes(n, *, tail_fraction=0.25, n_prefixes=3) -> np.ndarray:
    r"""Nested prefix sizes sharing the rounding offset of ``ceil(β n)``.

    .. math::

        n_j = n - q \left\lfloor \frac{(J - j)\, n}{J q} \right\rfloor, \qquad j = 1..J,

    with ``β = p/q`` in lowest terms. Then ``n_J = n``, every ``n_j ≡ n (mod q)`` — so
    ``β n_j`` has the same fractional part and the bias expansion the same coefficients —
    and ``n_j / n → j / J``.

    Parameters
    ----------
    n : int
        Base size (the group size for the Prefix-TEA advantage; half of it for the
        total-budget gradient).
    tail_fraction : float
        ``β``; read as ``p/q`` by :func:`tail_fraction_ratio`.
    n_prefixes : int
        ``J >= 2``.

    Returns
    -------
    ndarray of int64, shape ``(J,)``
        Strictly increasing sizes ending at ``n``.

    Raises
    ------
    ValueError
        If the sizes are not distinct (``n`` too small for ``J`` prefixes with step ``q``)
        or the smallest prefix has ``ceil(β n_1) < 2`` samples in its tail.

    Examples
    --------
    >>> from tailext import prefix_sizes
    >>> prefix_sizes(128, tail_fraction=0.25, n_prefixes=3).tolist()
    [44, 88, 128]
    """
    n_given = n
    n, ratio, count = _prefix_sizes_iv(n, tail_fraction, n_prefixes)
    q = ratio.denominator
    sizes = np.array([n - q * (((count - j) * n) // (count * q)) for j in range(1, count + 1)],
                     dtype=np.int64)
    if np.any(np.diff(sizes) <= 0) or sizes[0] <= 0:
        raise ValueError(
            f"`n` is too small for n_prefixes={shown(n_prefixes)} prefixes with tail_fraction="
            f"{shown(tail_fraction)} (step q={q}), got {shown(n_given)}: prefix sizes "
            f"{sizes.tolist()} are not distinct and positive.")
    smallest_tail = tail_count(int(sizes[0]), ratio)
    if smallest_tail < 2:
        raise ValueError(
            f"`n` is too small for tail_fraction={shown(tail_fraction)}, got {shown(n_given)}: "
            f"the smallest prefix (n_1={int(sizes[0])}) keeps ceil(beta*n_1)={smallest_tail} "
            f"< 2 samples in its tail fit.")
    return sizes


def _prefix_sizes_iv(n, tail_fraction, n_prefixes):
    return (integer_iv(n, "n", low=1), tail_fraction_ratio(tail_fraction),
            integer_iv(n_prefixes, "n_prefixes", low=2))


def cancellation_weights(sizes, *, order=2) -> np.ndarray:
    r"""Minimum-norm generalized-jackknife weights of order ``L``.

    The weights ``w ∈ R^J`` solve

    .. math::

        \sum_j w_j = 1, \qquad \sum_j w_j (n / n_j)^l = 0 \quad (l = 1..L),

    with ``n = max_j n_j``, and have the smallest Euclidean norm among all solutions, so a
    bias ``Σ_l b_l n_j^{-l}`` common to the prefixes cancels up to order ``L``.

    Parameters
    ----------
    sizes : array_like of int, shape ``(J,)``
        Distinct positive prefix sizes, e.g. from :func:`prefix_sizes`.
    order : int
        ``L >= 0``; needs ``J >= L + 1``.

    Notes
    -----
    Each row of the ``(L+1) × J`` system is divided by its largest entry before solving
    (the right-hand side of the scaled rows is zero, so the solution set is unchanged);
    :func:`numpy.linalg.lstsq` then returns the minimum-norm solution. With ``J = L + 1`` the
    system is square and the solution unique.

    Examples
    --------
    >>> from tailext import cancellation_weights
    >>> cancellation_weights([44, 88, 128], order=2).round(3).tolist()
    [0.524, -4.4, 4.876]
    """
    sizes, order = _cancellation_weights_iv(sizes, order)
    ratios = sizes.max() / sizes.astype(np.float64)
    system = np.vstack([ratios ** l for l in range(order + 1)])
    system /= np.abs(system).max(axis=1, keepdims=True)
    rhs = np.zeros(order + 1)
    rhs[0] = 1.0  # the first row is all ones, so its scaling is 1
    weights, *_ = np.linalg.lstsq(system, rhs, rcond=None)
    return weights


def _cancellation_weights_iv(sizes, order):
    array = numeric_array_iv(sizes, "sizes")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`sizes` must be a non-empty 1-D array of prefix sizes, got shape "
                         f"{array.shape}.")
    if not np.issubdtype(array.dtype, np.integer) and not (
            np.all(np.isfinite(array)) and np.all(array == np.round(array))):
        raise TypeError(f"`sizes` must hold integers, got {shown(sizes)}.")
    if np.any(array <= 0) or len(np.unique(array)) != len(array):
        raise ValueError(f"`sizes` must be distinct positive integers, got {shown(sizes)}.")
    order = integer_iv(order, "order", low=0, high=len(array) - 1)
    return array.astype(np.int64), order

