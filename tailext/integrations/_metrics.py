r"""Validation metrics the trainer integrations log: unbiased best-of-k and pass@k per prompt.

For a prompt with ``n`` scored completions, ascending scores :math:`r_{(1)} \le \dots \le
r_{(n)}` and a budget ``k <= n``,

.. math::

    \widehat{\mathrm{best@}k} = \sum_{i=k}^{n} \binom{i-1}{k-1}\Big/\binom{n}{k}\; r_{(i)},

the average of the maximum over all :math:`\binom nk` subsets of size ``k`` — the unbiased
estimator of :func:`tailext.evaluation.best_of_n`. For 0/1 scores with ``c`` successes it is
exactly the unbiased pass@k, :math:`1 - \binom{n-c}{k}/\binom nk`. Trainers' own bootstrap
estimates (verl's ``best@k/mean`` resamples with replacement) are biased low: for one success
in four completions verl reports ``best@4/mean`` ≈ 0.69 where the pass@4 of those four is 1.

Completions without a score (NaN, ``None``) are left out of their prompt's pool; a prompt with
fewer than ``k`` scored completions has no best@k estimate and is left out of that budget's
average.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PromptBestOf", "best_of_by_prompt", "doubling_budgets"]


class PromptBestOf(NamedTuple):
    """Per-prompt unbiased best-of-k estimates for several budgets.

    Attributes
    ----------
    values : dict of int to ndarray
        Budget ``k`` → the estimates of the prompts with at least ``k`` scored completions,
        in the order the prompts first appear.
    binary : dict of int to ndarray of bool
        Budget ``k`` → whether each of those prompts' scores are all 0 or 1 (its best@k is
        then its pass@k).
    """

    values: dict
    binary: dict


def doubling_budgets(n: int) -> list[int]:
    """``[2, 4, 8, …, n]`` (powers of two below ``n``, then ``n``): verl's best@k budgets.

    Examples
    --------
    >>> doubling_budgets(16), doubling_budgets(6), doubling_budgets(1)
    ([2, 4, 8, 16], [2, 4, 6], [])
    """
    budgets, k = [], 2
    while k < n:
        budgets.append(k)
        k *= 2
    return budgets + [n] if n >= 2 else []


def _pools(scores, prompt_ids):
    """Each prompt's finite scores, sorted ascending, by first appearance of its id."""
    pools: dict = {}
    for prompt, score in zip(prompt_ids, scores):
        pools.setdefault(prompt, [])
        if score is not None and np.isfinite(score):
            pools[prompt].append(float(score))
    return [np.sort(np.asarray(pool, dtype=np.float64)) for pool in pools.values()]


def best_of_by_prompt(scores, prompt_ids, budgets) -> PromptBestOf:
    """Unbiased best-of-k (pass@k for 0/1 scores) of every prompt, for each budget ``k``.

    Parameters
    ----------
    scores : sequence of float or None
        One score per completion; ``None`` or NaN marks a completion without a score.
    prompt_ids : sequence of hashable
        The prompt (group) of each completion, e.g. verl's ``uid``.
    budgets : iterable of int
        Budgets ``k >= 1``.

    Returns
    -------
    PromptBestOf

    Examples
    --------
    >>> est = best_of_by_prompt([1.0, 0.0, 0.0, 0.0, 0.0, 1.0], ["p"] * 4 + ["q"] * 2, [1, 4])
    >>> est.values[1].tolist(), est.values[4].tolist(), est.binary[4].tolist()
    ([0.25, 0.5], [1.0], [True])
    """
    from ..evaluation import unbiased_weights  # scipy: only when a metric is computed

    values: dict = {}
    binary: dict = {}
    pools = _pools(scores, prompt_ids)
    for k in budgets:
        estimates, flags = [], []
        for pool in pools:
            if len(pool) >= k:
                estimates.append(float(pool @ unbiased_weights(len(pool), k)))
                flags.append(bool(np.all((pool == 0.0) | (pool == 1.0))))
        values[k] = np.asarray(estimates, dtype=np.float64)
        binary[k] = np.asarray(flags, dtype=bool)
    return PromptBestOf(values, binary)
