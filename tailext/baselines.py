"""Baseline advantage rules of the paper's comparison (BASELINES.md, MATH §6).

Every rule maps rewards ``[B, m]`` (or one group ``[m]``) to advantages of the same shape and
is registered in :mod:`tailext.rules`, so ``tailext.advantages(rewards, method=name, ...)``
reaches it. Notation: ``r̄`` group mean, ``sd`` population standard deviation (divisor
``m``) unless a rule says otherwise, ``r_(1) ≤ … ≤ r_(m)`` the sorted rewards.

The plain rules are the vectorized references of :mod:`tailext.reference` behind
validation; the sort-based ones (``bon_mean``, ``maxk_loo1``, ``cat_bon``) and
``chow_bon_rl`` run numba kernels from :mod:`tailext._baseline_kernels` that must agree with
those references.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _baseline_kernels, reference
from ._validation import as_reward_batch, unbatch
from .constants import _check_positive_int
from .rules import register_rule

__all__ = ["grpo", "grpo_z", "rloo", "bon_max_mean", "bon_max_second", "bon_mean",
           "maxk_loo1", "chow_bon_rl", "chow_selection", "cat_bon"]

_SHIFT_SCALE = {"shift_invariant", "scale_equivariant"}
_ORDERED = {"permutation_equivariant", "monotone", "deterministic"}


def _eps_iv(eps, name="eps"):
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {eps!r}.")
    value = float(eps)
    if not np.isfinite(value) or value < 0.0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value}.")
    return value


def _k_iv(k, m):
    k = _check_positive_int(k, "k", 2)
    if k > m:
        raise ValueError(f"`k` must satisfy 2 <= k <= m (the group size), got k={k} with "
                         f"m={m}.")
    return k


def _bool_iv(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool, got {value!r}.")
    return bool(value)


def _grpo_iv(rewards, min_group_size=1):
    return as_reward_batch(rewards, min_group_size=min_group_size)


def grpo(rewards):
    """GRPO advantage ``A_i = r_i − r̄``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Finite rewards; a 1-D array is one group.

    Returns
    -------
    ndarray, float64, same shape as ``rewards``

    Notes
    -----
    The mean is taken after shifting by the group maximum, so a group of equal rewards
    gives exact zeros at any magnitude.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([1.0, 2.0, 6.0], method="grpo").tolist()
    [-2.0, -1.0, 3.0]
    """
    batch, was_1d = _grpo_iv(rewards)
    return unbatch(reference.grpo(batch), was_1d)


def _ddof_iv(ddof):
    if isinstance(ddof, (bool, np.bool_)) or ddof not in (0, 1):
        raise ValueError(f"`ddof` must be 0 (population sd) or 1 (sample sd), got {ddof!r}.")
    return int(ddof)


def _grpo_z_iv(rewards, eps, ddof):
    ddof = _ddof_iv(ddof)
    batch, was_1d = as_reward_batch(rewards, min_group_size=1 + ddof)
    return batch, was_1d, _eps_iv(eps), ddof


def grpo_z(rewards, *, eps=1e-6, ddof=0):
    """GRPO-Z advantage ``A_i = (r_i − r̄) / (sd + ε)``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
    eps : float, default 1e-6
        ``ε >= 0``.
    ddof : {0, 1}, default 0
        ``sd`` divisor ``m − ddof``: 0 is BASELINES.md's population sd; 1 the sample sd of
        TRL (``eps=1e-4``) and verl (``eps=1e-6``), which need ``m >= 2``.

    Returns
    -------
    ndarray, float64, same shape as ``rewards``

    Notes
    -----
    A group of equal rewards gives zeros (also with ``eps=0``). Scale-invariant only up to
    the ``ε`` term, so it claims shift invariance but not scale invariance. verl gives a
    group of one rollout mean 0 and std 1 (``A = r/(1 + ε)``); here ``ddof=1`` rejects it.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> A = advantages([0.0, 1.0], method="grpo_z", eps=0.0)
    >>> A.tolist()
    [-1.0, 1.0]
    """
    batch, was_1d, eps, ddof = _grpo_z_iv(rewards, eps, ddof)
    return unbatch(reference.grpo_z(batch, eps, ddof), was_1d)


def rloo(rewards):
    """RLOO advantage ``A_i = r_i − mean_{j≠i} r_j = m/(m−1) · (r_i − r̄)``; needs ``m >= 2``.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([1.0, 3.0], method="rloo").tolist()
    [-2.0, 2.0]
    """
    batch, was_1d = _grpo_iv(rewards, min_group_size=2)
    return unbatch(reference.rloo(batch), was_1d)


def bon_max_mean(rewards):
    """BoN-max mean: ``A_{i*} = r_{i*} − r̄`` for ``i* = argmax r``, all other advantages 0.

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
    batch, was_1d = _grpo_iv(rewards)
    return unbatch(reference.bon_max_mean(batch), was_1d)


def _bon_max_second_iv(rewards, normalize, eps):
    batch, was_1d = as_reward_batch(rewards, min_group_size=2)
    return batch, was_1d, _bool_iv(normalize, "normalize"), _eps_iv(eps)


def bon_max_second(rewards, *, normalize=False, eps=1e-6):
    """BoN-max second: ``A_{i*} = r_(m) − r_(m−1)`` at ``i* = argmax r``, all others 0.

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
    batch, was_1d, normalize, eps = _bon_max_second_iv(rewards, normalize, eps)
    return unbatch(reference.bon_max_second(batch, normalize, eps), was_1d)


def _max_at_k_iv(rewards, k):
    batch, was_1d = as_reward_batch(rewards, min_group_size=2)
    return batch, was_1d, _k_iv(k, batch.shape[1])


def _max_at_k(batch, k, leave_one_out, eps=0.0):
    m = batch.shape[1]
    weights = _baseline_kernels.max_at_k_weights(m, k)
    return _baseline_kernels.max_at_k_batch(batch, np.argsort(batch, axis=1), weights.own,
                                            weights.above, leave_one_out, eps, k / m)


def bon_mean(rewards, *, k=4, eps=1e-6):
    r"""BoN mean (max@k transformed reward, Bagirov et al. 2025), z-scored.

    .. math::

        \tilde r_{(i)} = \frac{\binom{i-1}{k-1} r_{(i)} + \sum_{j>i}\binom{j-2}{k-2} r_{(j)}}
        {\binom{m-1}{k-1}},\qquad
        A_i = \frac{\tilde r_i - \overline{\tilde r}}{\operatorname{sd}(\tilde r) + \varepsilon}

    ``r̃_i`` is the expected maximum of a uniformly random ``k``-subset that contains ``i``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
    k : int, default 4
        Subset size, ``2 <= k <= m``. **[choice]** default (the paper's value was lost).
    eps : float, default 1e-6

    Notes
    -----
    O(m log m) per group: one sort, then weights by the stable product form
    ``C(i−2,k−1)/C(i−1,k−1) = (i−k)/(i−1)`` (no overflow for ``m = 4096, k = 2048``; weights
    below ``1e-308`` underflow to 0). Tied rewards get equal ``r̃``; a group of equal rewards
    gives zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> A = advantages(np.array([0.0, 1.0, 2.0, 3.0]), method="bon_mean", k=2)
    >>> bool(abs(A.sum()) < 1e-12 and np.all(np.diff(A) >= 0))
    True
    """
    batch, was_1d, k = _max_at_k_iv(rewards, k)
    eps = _eps_iv(eps)
    return unbatch(_max_at_k(batch, k, leave_one_out=False, eps=eps), was_1d)


def maxk_loo1(rewards, *, k=4):
    r"""Leave-one-out max@k advantage (Walder & Karkhanis 2025), lowest-variance max@k rule.

    .. math::

        A_i = s_i - \frac km\,\hat\rho_{k-1}(r_{-i}),\quad
        s_i = \frac{\binom{i-1}{k-1} r_{(i)} + \sum_{j>i}\binom{j-2}{k-2} r_{(j)}}{\binom mk},
        \quad \hat\rho_k(x) = \sum_{i=k}^{n}\frac{\binom{i-1}{k-1}}{\binom nk}x_{(i)}

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
    k : int, default 4
        ``2 <= k <= m``.

    Notes
    -----
    The sums over ``j > i`` in ``s_i`` and in the leave-one-out estimate cancel, leaving
    ``A_(i) = (k/m) [C(i−1,k−1) r_(i) − Σ_{j<i} C(j−1,k−2) r_(j)] / C(m−1,k−1)``, one O(m)
    sweep after the sort. The advantage of sorted position ``i`` is its weight times
    ``r_(i)`` minus a weighted mean of the lower rewards, so only the ``m − k + 1`` largest
    rewards get non-zero advantages; they need not sum to zero.

    Examples
    --------
    >>> from tailext import advantages
    >>> advantages([0.0, 1.0, 3.0], method="maxk_loo1", k=2).round(6).tolist()
    [0.0, 0.333333, 1.666667]
    """
    batch, was_1d, k = _max_at_k_iv(rewards, k)
    return unbatch(_max_at_k(batch, k, leave_one_out=True), was_1d)


def chow_selection(shape, *, n_select=None, seed=None):
    """Random selection masks of Chow BoN-RL: ``n_select`` ``True`` per row, the rest ``Cor``.

    Parameters
    ----------
    shape : tuple ``(B, m)``
    n_select : int or None, default None
        ``n_sel`` with ``1 <= n_sel <= m − 1``; ``None`` is ``m // 2``.
    seed : None, int or numpy.random.Generator
        Source of the split; a Generator is advanced (so successive calls differ).

    Returns
    -------
    ndarray of bool, shape ``(B, m)``

    Examples
    --------
    >>> from tailext.baselines import chow_selection
    >>> chow_selection((2, 4), seed=0).sum(axis=1).tolist()
    [2, 2]
    """
    n_groups, m = shape
    n_select = _n_select_iv(n_select, m)
    keys = np.random.default_rng(seed).random((n_groups, m))
    # Sel = the n_select smallest keys: a uniformly random subset, found in O(m); the set
    # (not the order argpartition leaves it in) is all that is used.
    chosen = np.argpartition(keys, n_select - 1, axis=1)[:, :n_select]
    selected = np.zeros((n_groups, m), dtype=bool)
    np.put_along_axis(selected, chosen, True, axis=1)
    return selected


def _n_select_iv(n_select, m):
    if n_select is None:
        n_select = m // 2
    n_select = _check_positive_int(n_select, "n_select", 1)
    if n_select > m - 1:
        raise ValueError(f"`n_select` must satisfy 1 <= n_select <= m - 1 (the correction "
                         f"set needs at least one rollout), got n_select={n_select} with "
                         f"m={m}.")
    return n_select


def _chow_bon_rl_iv(rewards, n_select):
    batch, was_1d = as_reward_batch(rewards, min_group_size=2)
    _n_select_iv(n_select, batch.shape[1])
    return batch, was_1d


def chow_bon_rl(rewards, *, n_select=None, seed=None):
    r"""Chow BoN-RL (Chow et al. 2024, Lemma 2, continuous-reward Monte Carlo form).

    A random split into ``Sel`` (``n_sel`` rollouts) and ``Cor`` (``n_c = m − n_sel``);
    ``y*`` = best of ``Sel``, ``r*`` its reward, ``b = r̄``,
    ``F̂ = max(#{j∈Cor: r_j ≤ r*}, 1)/n_c``:

    .. math::

        A_{y^*} = m(r^* - b),\qquad
        A_j = m(r^* - b)\frac{n_{sel}-1}{\hat F n_c}\mathbf 1\{r_j\le r^*\}\ (j\in Cor),

    and 0 for the rest of ``Sel``. The factor ``m`` undoes the trainer's mean over ``m``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= 2``.
    n_select : int or None, default None
        ``n_sel``, ``1 <= n_sel <= m − 1``; ``None`` is ``m // 2`` **[choice]**.
    seed : None, int or numpy.random.Generator
        The split is :func:`chow_selection` with this seed. Pass a Generator during
        training so that every step draws a new split.

    Notes
    -----
    ``y*`` is the first index of the maximum within ``Sel``. Shift invariance and scale
    equivariance (the claimed properties) hold for a fixed seed. With ``n_sel = 1`` the
    ``Cor`` advantages vanish.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> r = np.arange(8.0)
    >>> A1 = advantages(r, method="chow_bon_rl", seed=3)
    >>> bool(np.array_equal(A1, advantages(r, method="chow_bon_rl", seed=3)))
    True
    """
    batch, was_1d = _chow_bon_rl_iv(rewards, n_select)
    selected = chow_selection(batch.shape, n_select=n_select, seed=seed)
    return unbatch(_baseline_kernels.chow_bon_rl_batch(batch, selected), was_1d)


def _cat_bon_iv(rewards, n_target, eps):
    batch, was_1d = as_reward_batch(rewards, min_group_size=2)
    return batch, was_1d, _check_positive_int(n_target, "n_target", 1), _eps_iv(eps)


def cat_bon(rewards, *, n_target=128, eps=1e-4):
    r"""CAT-BoN (Ousherovitch & Tewari 2026): rank weight times the sample-std z-score.

    .. math::

        q_i = \frac{\#\{j: r_j < r_i\} + 1}{m + 1},\quad w_i = N q_i^{N-1},\quad
        A_i = \frac{w_i}{\operatorname{mean}(w)}\cdot
        \frac{r_i - \bar r}{\operatorname{sd}_{m-1}(r) + \varepsilon}

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Needs ``m >= 2``.
    n_target : int, default 128
        ``N``, the best-of-N budget.
    eps : float, default 1e-4

    Notes
    -----
    Tied rewards share a weight (strict ``<``). The weights are normalized in log space,
    so ``q^{N−1}`` never underflows to ``0/0`` for large ``N``.

    Examples
    --------
    >>> from tailext import advantages
    >>> A = advantages([0.0, 1.0, 2.0], method="cat_bon", n_target=2)
    >>> bool(A[0] < 0 < A[2])
    True
    """
    batch, was_1d, n_target, eps = _cat_bon_iv(rewards, n_target, eps)
    return unbatch(_baseline_kernels.cat_bon_batch(batch, np.argsort(batch, axis=1),
                                                    float(n_target - 1), eps), was_1d)


register_rule("grpo", properties={"zero_sum"} | _SHIFT_SCALE | _ORDERED,
              formula="A_i = r_i − r̄")(grpo)
register_rule("grpo_z", properties={"zero_sum", "shift_invariant"} | _ORDERED,
              formula="A_i = (r_i − r̄) / (sd + ε)")(grpo_z)
register_rule("rloo", properties={"zero_sum"} | _SHIFT_SCALE | _ORDERED,
              formula="A_i = r_i − mean_{j≠i} r_j = m/(m−1) (r_i − r̄)")(rloo)
register_rule("bon_max_mean", properties=_SHIFT_SCALE | {"deterministic"},
              formula="A_{i*} = r_{i*} − r̄ at i* = argmax r (first), others 0")(bon_max_mean)
register_rule("bon_max_second", properties=_SHIFT_SCALE | _ORDERED,
              formula="A_{i*} = r_(m) − r_(m−1) at i* = argmax r, others 0")(bon_max_second)
register_rule("bon_mean", properties={"zero_sum", "shift_invariant"} | _ORDERED,
              formula="r̃_(i) = [C(i−1,k−1) r_(i) + Σ_{j>i} C(j−2,k−2) r_(j)] / C(m−1,k−1); "
                      "A = (r̃ − mean r̃)/(sd r̃ + ε)")(bon_mean)
register_rule("maxk_loo1", properties=_SHIFT_SCALE | _ORDERED,
              formula="A_i = s_i − (k/m) ρ̂_{k−1}(r_{−i}), "
                      "s_i = [C(i−1,k−1) r_(i) + Σ_{j>i} C(j−2,k−2) r_(j)] / C(m,k)")(maxk_loo1)
register_rule("chow_bon_rl", properties=_SHIFT_SCALE,
              formula="A_{y*} = m(r*−r̄); A_j = m(r*−r̄)(n_sel−1)/(F̂ n_c) 1{r_j ≤ r*}, j∈Cor")(
    chow_bon_rl)
register_rule("cat_bon", properties={"shift_invariant", "permutation_equivariant",
                                     "deterministic"},
              formula="A_i = (w_i/mean w)(r_i − r̄)/(sd_{m−1} + ε), w_i = N q_i^{N−1}, "
                      "q_i = (#{r_j < r_i} + 1)/(m+1)")(cat_bon)
