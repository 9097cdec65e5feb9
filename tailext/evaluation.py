"""Best-of-n evaluation: frontier estimators, tail extrapolation, paired comparison.

All functions take rewards as ``[P, M]`` arrays (``P`` prompts, ``M`` sampled completions each)
or per-prompt scores as ``[P]`` / ``[P, C]`` arrays, validate them (clear errors, never a
silent NaN) and return named result objects. The formulas are in docs/math.md#evaluation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

from ._arguments import (budgets_iv, choice_iv, distribution_iv, integer_iv, paired_scores_iv,
                         real_iv, rewards_iv, seed_iv, shown, tail_fraction_iv)
from .constants import kappa
from .estimators import tail_size_iv, tail_vector
from .prefix import tail_count

__all__ = [
    "BestOfN", "best_of_n", "unbiased_weights", "exact_best_of_n", "best_of_n_from_cdf",
    "TailPrediction", "tail_prediction",
    "PairedBootstrap", "paired_bootstrap",
    "WinTieLoss", "win_tie_loss",
    "QQLinearity", "qq_linearity",
]


# ----------------------------------------------------------------------------- best-of-n
class BestOfN(NamedTuple):
    """Best-of-n estimates for several budgets.

    Attributes
    ----------
    n : ndarray of int, shape ``(C,)``
        Budgets.
    per_prompt : ndarray, shape ``(P, C)``
        Estimate of ``E[max of n]`` for each prompt and budget.
    mean : ndarray, shape ``(C,)``
        Average over prompts.
    standard_error : ndarray, shape ``(C,)``
        Standard error of ``mean`` over prompts (sample sd / √P; 0 when ``P = 1``).
    """

    n: np.ndarray
    per_prompt: np.ndarray
    mean: np.ndarray
    standard_error: np.ndarray


def unbiased_weights(n_samples, n):
    r"""Weights of the unbiased best-of-n estimator on ascending order statistics.

    .. math::

        w_i = \binom{i-1}{n-1} \Big/ \binom{M}{n}\quad (i = 1..M;\ 0 \text{ for } i < n)

    computed by the ratio product ``w_M = n/M``, ``w_{i−1} = w_i (i − n)/(i − 1)`` (every
    factor ≤ 1, so it cannot overflow and is accurate to O(M ε) for ``M`` in the thousands).

    Parameters
    ----------
    n_samples : int
        Pool size ``M >= 1``.
    n : int
        Budget ``1 <= n <= M``.

    Returns
    -------
    ndarray, shape ``(M,)``, summing to 1.

    Examples
    --------
    >>> from tailext.evaluation import unbiased_weights
    >>> unbiased_weights(4, 2).tolist()
    [0.0, 0.16666666666666666, 0.3333333333333333, 0.5]
    """
    M, n = _unbiased_weights_iv(n_samples, n)
    i = np.arange(M, n - 1, -1, dtype=np.float64)  # M, M−1, …, n
    factors = np.empty_like(i)
    factors[0] = n / M
    factors[1:] = (i[:-1] - n) / (i[:-1] - 1.0)
    weights = np.zeros(M)
    weights[n - 1:] = np.cumprod(factors)[::-1]
    return weights


def _unbiased_weights_iv(n_samples, n):
    M = integer_iv(n_samples, "n_samples", low=1)
    budget = integer_iv(n, "n", low=1)
    if budget > M:
        raise ValueError(f"`n` must be <= n_samples = {shown(n_samples)}, got {shown(n)}.")
    return M, budget


def best_of_n(rewards, n, *, method="unbiased") -> BestOfN:
    r"""Best-of-n value ``E[max of n]`` of each prompt from ``M`` sampled rewards.

    ``method="unbiased"`` (any ``n <= M``):
    ``Σ_{i=n}^{M} C(i−1, n−1)/C(M, n) · r_(i)`` on the ascending order statistics — the
    average of the max over all ``C(M, n)`` subsets. ``method="grouped"`` (``n`` divides
    ``M``): split the ``M`` completions, in their given order, into ``M/n`` consecutive groups
    and average the group maxima (see docs/math.md#unbiased-best-of-n and
    docs/math.md#grouped-best-of-n).

    Parameters
    ----------
    rewards : array_like, shape ``(P, M)`` or ``(M,)``
        Finite rewards; a 1-D array is one prompt.
    n : int or sequence of int
        Budget(s).
    method : {"unbiased", "grouped"}

    Returns
    -------
    BestOfN

    Notes
    -----
    Both estimators are unbiased for sampling with replacement from the policy; the
    unbiased one has the lower variance (it is the Rao–Blackwellization of the grouped one).
    Ties need no special care: the estimate depends only on the sorted values.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.evaluation import best_of_n
    >>> best_of_n(np.array([[0.0, 1.0, 2.0, 3.0]]), [1, 2, 4]).mean.round(6).tolist()
    [1.5, 2.333333, 3.0]
    """
    batch, budgets, method = _best_of_n_iv(rewards, n, method)
    M = batch.shape[1]
    if method == "unbiased":
        ordered = np.sort(batch, axis=1)
        weights = np.stack([unbiased_weights(M, b) for b in budgets], axis=1)  # [M, C]
        per_prompt = ordered @ weights
    else:
        per_prompt = np.stack([batch.reshape(batch.shape[0], M // b, b).max(axis=2)
                               .mean(axis=1) for b in budgets], axis=1)
    return _summarize(budgets, per_prompt)


def _best_of_n_iv(rewards, n, method):
    batch, _ = rewards_iv(rewards)
    M = batch.shape[1]
    budgets = budgets_iv(n, high=M, high_what="the number of samples M")
    method = choice_iv(method, "method", ("unbiased", "grouped"))
    if method == "grouped" and np.any(M % budgets):
        raise ValueError(f"`n` must divide the number of samples M = {M} for "
                         f"method='grouped', got {shown(n)}; use method='unbiased' for any "
                         f"n <= M.")
    return batch, budgets, method


def _summarize(budgets, per_prompt) -> BestOfN:
    P = per_prompt.shape[0]
    se = per_prompt.std(axis=0, ddof=1) / np.sqrt(P) if P > 1 else np.zeros(len(budgets))
    return BestOfN(budgets, per_prompt, per_prompt.mean(axis=0), se)


def sorted_cdf(values, weights):
    """Ascending values with the distribution's CDF at each (``[B, K]`` each, last = 1)."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    cdf = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)
    cdf = np.minimum(cdf / cdf[:, -1:], 1.0)
    return ordered, cdf, order


def exact_best_of_n(values, weights, n) -> BestOfN:
    r"""Exact ``E[max of n i.i.d. draws]`` from a discrete distribution.

    With ascending values ``x_(i)`` and CDF ``F_i = Σ_{j≤i} p_(j)``:
    ``V_n = Σ_i x_(i) [F_i^n − F_{i−1}^n]`` (see docs/math.md#exact-best-of-n).

    Parameters
    ----------
    values : array_like, shape ``(B, K)`` or ``(K,)``
        Support points (ties allowed) of ``B`` distributions.
    weights : array_like, same shape
        Non-negative probabilities (normalized per row).
    n : int or sequence of int
        Budgets ``>= 1`` (any size; draws are with replacement).

    Returns
    -------
    BestOfN
        ``per_prompt`` is ``[B, C]``; ``standard_error`` is over the ``B`` rows.

    Examples
    --------
    >>> from tailext.evaluation import exact_best_of_n
    >>> exact_best_of_n([0.0, 1.0], [0.5, 0.5], [1, 2]).mean.tolist()
    [0.5, 0.75]
    """
    batch, probs, budgets = _exact_best_of_n_iv(values, weights, n)
    ordered, cdf, _ = sorted_cdf(batch, probs)
    return _summarize(budgets, best_of_n_from_cdf(ordered, cdf, budgets))


def _exact_best_of_n_iv(values, weights, n):
    batch, probs, _ = distribution_iv(values, weights)
    return batch, probs, budgets_iv(n, high=np.iinfo(np.int64).max, high_what="the int64 maximum")


def best_of_n_from_cdf(ordered, cdf, budgets):
    """``V_n = Σ_i x_(i) [F_i^n − F_{i−1}^n]`` on pre-sorted values: ``[..., len(budgets)]``.

    No validation: ``ordered`` ascending and ``cdf`` its CDF along the last axis (the fast path
    behind :func:`exact_best_of_n`, for callers that keep their supports sorted).
    """
    previous = np.concatenate([np.zeros_like(cdf[..., :1]), cdf[..., :-1]], axis=-1)
    return np.stack([(ordered * (cdf ** b - previous ** b)).sum(axis=-1) for b in budgets],
                    axis=-1)


# --------------------------------------------------------------------- tail extrapolation
class TailPrediction(NamedTuple):
    """Tail-extrapolated best-of-N predictions and their error against held-out samples.

    Attributes
    ----------
    n : ndarray of int, shape ``(C,)``
    predicted : ndarray, shape ``(P, C)``
        ``μ̂_t + κ_N ŝ`` from the first ``m`` samples of each prompt.
    held_out : ndarray, shape ``(P, C)``
        Unbiased best-of-N from the remaining ``M − m`` samples.
    error : ndarray, shape ``(P, C)``
        ``predicted − held_out``.
    mean_error, mean_absolute_error, rmse : ndarray, shape ``(C,)``
        Over prompts.
    """

    n: np.ndarray
    predicted: np.ndarray
    held_out: np.ndarray
    error: np.ndarray
    mean_error: np.ndarray
    mean_absolute_error: np.ndarray
    rmse: np.ndarray


def tail_prediction(rewards, n, *, fit_size, tail_fraction=0.25,
                    scale_floor=None) -> TailPrediction:
    r"""Predict the best-of-N curve from ``m`` samples: ``V̂_N = μ̂_t + κ_N(β) ŝ``.

    The tail vector is fitted on the first ``fit_size`` completions of each prompt; the
    prediction is compared with the unbiased best-of-N of the other ``M − m`` completions
    (see docs/math.md#tail-prediction).

    Parameters
    ----------
    rewards : array_like, shape ``(P, M)`` or ``(M,)``
    n : int or sequence of int
        Targets ``2 <= N <= M − m``.
    fit_size : int
        ``m``: completions used for the fit (``ceil(β m) >= 2``).
    tail_fraction, scale_floor
        As in :func:`tailext.tail_vector`.

    Returns
    -------
    TailPrediction

    Notes
    -----
    Completions are exchangeable, so taking the first ``m`` as the fit set is a random split.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.evaluation import tail_prediction
    >>> r = np.random.default_rng(0).normal(size=(50, 1088))
    >>> out = tail_prediction(r, [64], fit_size=64)
    >>> bool(abs(out.mean_error[0]) < 0.1)
    True
    """
    batch, budgets, m, beta = _tail_prediction_iv(rewards, n, fit_size, tail_fraction)
    tail = tail_vector(batch[:, :m], tail_fraction=beta, scale_floor=scale_floor)
    kappas = np.array([kappa(beta, int(b)) for b in budgets])
    predicted = tail.mean[:, None] + kappas[None, :] * tail.scale[:, None]
    held_out = best_of_n(batch[:, m:], budgets).per_prompt
    error = predicted - held_out
    return TailPrediction(budgets, predicted, held_out, error, error.mean(axis=0),
                          np.abs(error).mean(axis=0), np.sqrt((error ** 2).mean(axis=0)))


def _tail_prediction_iv(rewards, n, fit_size, tail_fraction):
    batch, _ = rewards_iv(rewards)
    M = batch.shape[1]
    m = integer_iv(fit_size, "fit_size", low=2)
    if m >= M:
        raise ValueError(f"`fit_size` must be < the number of samples M = {M} (the rest are "
                         f"held out), got {shown(fit_size)}.")
    beta = tail_fraction_iv(tail_fraction)
    tail_size_iv(m, beta, "fit")
    budgets = budgets_iv(n, low=2, high=M - m,
                         high_what="the number of held-out samples M - fit_size")
    return batch, budgets, m, beta


# ------------------------------------------------------------------- paired comparisons
class PairedBootstrap(NamedTuple):
    """Paired prompt-bootstrap comparison of ``a − b``.

    Attributes
    ----------
    mean_difference : float or ndarray ``(C,)``
        ``mean_p (a_p − b_p)``.
    ci_low, ci_high : float or ndarray ``(C,)``
        Percentile confidence interval.
    standard_error : float or ndarray ``(C,)``
        Standard deviation of the bootstrap means.
    confidence : float
    n_resamples : int
    seed : object
        The seed given (for the record).
    """

    mean_difference: np.ndarray | float
    ci_low: np.ndarray | float
    ci_high: np.ndarray | float
    standard_error: np.ndarray | float
    confidence: float
    n_resamples: int
    seed: object


def paired_bootstrap(a, b, *, n_resamples=1000, confidence=0.95, seed=0) -> PairedBootstrap:
    r"""Paired prompt bootstrap of the mean difference ``mean(a − b)``.

    Prompts are resampled with replacement ``n_resamples`` times (multinomial counts, one
    matrix product for all resamples and all columns); the CI is the
    ``[(1−c)/2, (1+c)/2]`` percentile interval of the resampled mean differences
    (see docs/math.md#paired-bootstrap).

    Parameters
    ----------
    a, b : array_like, shape ``(P,)`` or ``(P, C)``
        Per-prompt scores of two methods on the same prompts (``C`` columns, e.g. budgets).
    n_resamples : int, default 1000
    confidence : float, default 0.95
        In ``(0, 1)``.
    seed : int, numpy Generator or None
        Randomness of the resampling (same seed → same CI).

    Returns
    -------
    PairedBootstrap
        Scalars for 1-D input, ``(C,)`` arrays for 2-D input.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.evaluation import paired_bootstrap
    >>> rng = np.random.default_rng(1)
    >>> b = rng.normal(size=200)
    >>> out = paired_bootstrap(b + 0.5 + 0.1 * rng.normal(size=200), b, seed=0)
    >>> bool(out.ci_low < 0.5 < out.ci_high)
    True
    """
    a, b, R, confidence, rng = _paired_bootstrap_iv(a, b, n_resamples, confidence, seed)
    diff = (a - b).reshape(a.shape[0], -1)
    P = diff.shape[0]
    counts = rng.multinomial(P, np.full(P, 1.0 / P), size=R)  # [R, P]
    means = counts @ diff / P  # [R, C]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    out = (diff.mean(axis=0), low, high, means.std(axis=0, ddof=1))
    if a.ndim == 1:
        out = tuple(float(x[0]) for x in out)
    return PairedBootstrap(*out, confidence, R, seed if not isinstance(
        seed, np.random.Generator) else "Generator")


def _paired_bootstrap_iv(a, b, n_resamples, confidence, seed):
    a, b = paired_scores_iv(a, b)
    R = integer_iv(n_resamples, "n_resamples", low=2)
    confidence = real_iv(confidence, "confidence", low=0.0, high=1.0, low_open=True,
                         high_open=True)
    return a, b, R, confidence, seed_iv(seed)


class WinTieLoss(NamedTuple):
    """Per-prompt win/tie/loss counts of ``a`` against ``b`` (``(C,)`` arrays for 2-D input).

    Attributes
    ----------
    wins, ties, losses : int or ndarray
        ``a − b > tol``, ``|a − b| <= tol``, ``a − b < −tol``.
    n_prompts : int
    tolerance : float
    """

    wins: np.ndarray | int
    ties: np.ndarray | int
    losses: np.ndarray | int
    n_prompts: int
    tolerance: float


def win_tie_loss(a, b, *, tol=0.0) -> WinTieLoss:
    """Count prompts where ``a`` beats, ties or loses to ``b`` (tie when ``|a − b| <= tol``).

    Parameters
    ----------
    a, b : array_like, shape ``(P,)`` or ``(P, C)``
    tol : float, default 0
        Tie tolerance ``>= 0``.

    Examples
    --------
    >>> from tailext.evaluation import win_tie_loss
    >>> tuple(win_tie_loss([1.0, 2.0, 3.0], [1.05, 2.0, 2.0], tol=0.1))[:3]
    (1, 2, 0)
    """
    a, b, tol = _win_tie_loss_iv(a, b, tol)
    diff = a - b
    counts = [(diff > tol).sum(axis=0), (np.abs(diff) <= tol).sum(axis=0),
              (diff < -tol).sum(axis=0)]
    counts = [int(c) for c in counts] if a.ndim == 1 else counts
    return WinTieLoss(*counts, a.shape[0], tol)


def _win_tie_loss_iv(a, b, tol):
    a, b = paired_scores_iv(a, b)
    return a, b, real_iv(tol, "tol", low=0.0)


# --------------------------------------------------------------------------- QQ linearity
class QQLinearity(NamedTuple):
    """Linearity of each prompt's upper tail on a normal QQ plot, and its summary.

    Attributes
    ----------
    r_squared : ndarray, shape ``(P,)``
        ``R²`` of the upper order statistics regressed on ``Φ⁻¹(p)``; NaN for prompts whose
        upper tail is constant (``degenerate``), which the summary excludes.
    degenerate : ndarray of bool, shape ``(P,)``
    median, mean, p10 : float
        Median, mean and 10th percentile of ``R²`` over non-degenerate prompts.
    share_linear : float
        Share of non-degenerate prompts with ``R² >= threshold``.
    threshold : float
    """

    r_squared: np.ndarray
    degenerate: np.ndarray
    median: float
    mean: float
    p10: float
    share_linear: float
    threshold: float


def qq_linearity(rewards, *, tail_fraction=0.25, threshold=0.9) -> QQLinearity:
    r"""Normal-QQ linearity of each prompt's upper tail.

    For the ``k = ceil(β M)`` largest of the ``M`` rewards, with Hazen plotting positions
    ``p_i = (i − ½)/M``, regress ``r_(i)`` on ``Φ⁻¹(p_i)`` by least squares and report
    ``R² = corr(r_(i), Φ⁻¹(p_i))²``. A Gaussian upper tail gives ``R²`` close to 1
    (see docs/math.md#qq-linearity).

    Parameters
    ----------
    rewards : array_like, shape ``(P, M)``
    tail_fraction : float, default 0.25
        ``β``; needs ``ceil(β M) >= 3`` (two points always fit a line).
    threshold : float, default 0.9

    Returns
    -------
    QQLinearity

    Notes
    -----
    A prompt whose top ``k`` rewards are all equal (e.g. binary rewards) has no defined
    ``R²``; it is marked ``degenerate`` (R² NaN) and left out of the summary. If every prompt
    is degenerate a ``ValueError`` is raised.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.evaluation import qq_linearity
    >>> out = qq_linearity(np.random.default_rng(0).normal(size=(20, 400)))
    >>> bool(out.median > 0.95)
    True
    """
    batch, k, threshold = _qq_linearity_iv(rewards, tail_fraction, threshold)
    M = batch.shape[1]
    top = np.sort(batch, axis=1)[:, M - k:]
    # R² is scale-invariant: dividing each row by its largest |reward| makes the degeneracy
    # test relative to the row's own scale and keeps the squares below from under- or
    # overflowing (before, rewards × 1e-150 made every tail look constant).
    magnitude = np.abs(top).max(axis=1, keepdims=True)
    top = top / np.where(magnitude > 0, magnitude, 1.0)
    q = special.ndtri((np.arange(M - k, M) + 0.5) / M)
    qc = q - q.mean()
    rc = top - top.mean(axis=1, keepdims=True)
    ss_r = (rc ** 2).sum(axis=1)
    # A spread below 1e-12 of the row's magnitude is rounding of equal values, not a tail.
    degenerate = ss_r <= 1e-24 * (top ** 2).sum(axis=1)
    if degenerate.all():
        raise ValueError("every prompt of `rewards` has a constant upper tail (e.g. 0/1 "
                         "rewards); QQ linearity is undefined.")
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(degenerate, np.nan, (rc @ qc) ** 2 / (ss_r * (qc @ qc)))
    valid = r2[~degenerate]
    return QQLinearity(r2, degenerate, float(np.median(valid)), float(valid.mean()),
                       float(np.quantile(valid, 0.1)), float((valid >= threshold).mean()),
                       threshold)


def _qq_linearity_iv(rewards, tail_fraction, threshold):
    batch, _ = rewards_iv(rewards)
    M = batch.shape[1]
    beta = tail_fraction_iv(tail_fraction)
    k = tail_count(M, beta)
    if k < 3:
        raise ValueError(f"QQ linearity needs at least 3 tail points, ceil(tail_fraction * M) "
                         f">= 3, got {k} for tail_fraction={shown(tail_fraction)} and M={M}.")
    return batch, k, real_iv(threshold, "threshold", low=0.0, high=1.0)
