"""tailext advantage rules as verl advantage estimators (tested with verl 0.9.1).

After :func:`register`, every tailext rule is a verl advantage estimator: set
``algorithm.adv_estimator=tea`` (or ``prefix_tea``, ``bon_mean``, ...) in the verl trainer
config. What registers them in a real run is the ``verl.plugins`` entry point that installing
tailext declares (:mod:`tailext.integrations.verl_plugin`): verl loads it in every process
that imports verl, including the ``TaskRunner`` Ray actor where the trainer calls
``compute_advantage``. A :func:`register` call in the driver script registers the driver's
process only.

The estimator follows verl's contract for outcome rewards
(``verl.trainer.ppo.core_algos``)::

    estimator(token_level_rewards [bs, T], response_mask [bs, T], index [bs], config)
        -> (advantages [bs, T], returns [bs, T])

with the sequence score ``s = token_level_rewards.sum(-1)`` grouped by ``index`` (verl's
``uid``: one id per prompt, shared by its rollouts), ``A = rule(s)`` within each group, and
``advantages = returns = A[:, None] * response_mask`` — the same broadcast as verl's ``grpo``.
The advantages are computed on the rewards' device by :mod:`tailext.torch`, with no host
copy of the rewards.

Rows verl hands over that a rule cannot use (the trainer policy of :mod:`tailext.rules.policy`):

- a row whose ``response_mask`` is all zero (the v1 trainer's synthetic padding rows, empty
  responses) is an invalid rollout: left out of its group's statistics, advantage 0;
- a group with fewer valid rows than the rule's minimum (the padding group of 1–4 rows,
  groups shrunk by failed agent loops) gets advantage 0 (``small_groups="zero"``).

A verl estimator returns tensors only, so the counts are made visible three ways: a Python
warning the first time (:class:`tailext.SmallGroupWarning`, :class:`tailext.DiscreteRewardWarning`),
a line through the ``tailext.integrations.verl`` logger (WARNING the first time in a
process, INFO after that; level from ``VERL_LOGGING_LEVEL`` as verl's own loggers), and
:func:`consume_counts`, which the ``tailext_sync`` trainer
(:mod:`tailext.integrations.verl_trainer`) adds to each step's metrics.

Options
-------
The rule's keyword options are read from the ``tailext`` block of the algorithm config
(``config.tailext``, a mapping; absent means the rule's defaults), e.g. on verl's Hydra
command line::

    algorithm.adv_estimator=tea +algorithm.tailext.tail_fraction=0.25 \\
        +algorithm.tailext.n_target=128

An option the chosen rule does not accept is a ``TypeError`` naming the accepted ones
(``tailext.get_rule(name).options`` lists them). verl's ``norm_adv_by_std_in_grpo`` and
``epsilon`` do not apply: each rule defines its own scaling (e.g. ``grpo`` has ``eps`` and
``ddof``).

Names
-----
A rule keeps its tailext name unless verl has a built-in estimator of that name, in which
case it is registered as ``tailext_<name>`` (with verl 0.9: ``grpo`` → ``tailext_grpo``,
``rloo`` → ``tailext_rloo``); :func:`estimator_name` gives the mapping.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping

from ..rules import available_methods, get_rule

__all__ = ["CONFIG_KEY", "COUNT_KEYS", "consume_counts", "estimator_name", "register",
           "unbiased_val_metrics"]

#: Key of the algorithm-config block holding the rule's keyword options.
CONFIG_KEY = "tailext"

#: Metric names of the counts (:func:`consume_counts`), as in the TRL integration.
COUNT_KEYS = ("tailext/small_groups", "tailext/invalid_rollouts", "tailext/tied_tail_groups")

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

# One estimator function per rule, created once: verl's registry accepts a re-registration
# only of the identical function object, which makes :func:`register` idempotent.
_ESTIMATORS: dict[str, object] = {}

# Counts summed over estimator calls since the last consume_counts(); whether this process
# has logged its first (WARNING) line.
_COUNTS = dict.fromkeys(COUNT_KEYS, 0)
_STATE = {"calls": 0, "logged": False}


def _core_algos():
    # Imported on use: importing verl pulls in ray and transformers (seconds). import_module
    # also works while the plugin's import hook runs, before the parent package has the
    # attribute.
    return importlib.import_module("verl.trainer.ppo.core_algos")


def estimator_name(method: str) -> str:
    """The verl estimator name of tailext rule ``method``.

    ``method`` itself, or ``"tailext_" + method`` when verl has a built-in estimator called
    ``method`` (an :class:`verl.trainer.ppo.core_algos.AdvantageEstimator` value).

    Examples
    --------
    >>> from tailext.integrations.verl import estimator_name  # doctest: +SKIP
    >>> estimator_name("tea"), estimator_name("grpo")  # doctest: +SKIP
    ('tea', 'tailext_grpo')
    """
    get_rule(method)  # unknown method -> ValueError listing the available ones
    builtin = {member.value for member in _core_algos().AdvantageEstimator}
    return f"tailext_{method}" if method in builtin else method


def _options_from_config(config) -> dict:
    block = None if config is None else config.get(CONFIG_KEY, None)
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise TypeError(f"algorithm config `{CONFIG_KEY}` must be a mapping of the rule's "
                        f"options, got {type(block).__name__}.")
    return {str(key): block[key] for key in block}


def consume_counts() -> dict[str, int]:
    """The counts of all estimator calls in this process since the last call, then reset.

    Returns
    -------
    dict
        ``tailext/small_groups`` (groups with fewer valid rows than the rule's minimum, given
        advantage 0), ``tailext/invalid_rollouts`` (rows with an all-zero ``response_mask``:
        verl's padding rows, empty responses) and ``tailext/tied_tail_groups`` (groups whose
        top rewards are tied, TEA family); empty when no tailext estimator ran since the
        last call (e.g. verl's own ``grpo`` was chosen).
    """
    counts = dict(_COUNTS) if _STATE["calls"] else {}
    _COUNTS.update(dict.fromkeys(COUNT_KEYS, 0))
    _STATE["calls"] = 0
    return counts


def _record(name, result) -> None:
    import torch

    counts = torch.stack([result.small_groups, result.invalid, result.discrete_groups])
    values = counts.tolist()  # one device sync, after the adapter's own
    _STATE["calls"] += 1
    for key, value in zip(COUNT_KEYS, values):
        _COUNTS[key] += value
    if any(values):
        level = logging.INFO if _STATE["logged"] else logging.WARNING
        _STATE["logged"] = True
        logger.log(level, "tailext estimator %r: %d group(s) with fewer valid rows than the "
                   "rule needs got advantage 0; %d row(s) with an all-zero response_mask "
                   "(verl's padding rows, empty responses) were left out of their groups "
                   "with advantage 0; %d group(s) have tied top rewards (later calls log "
                   "at INFO; the tailext_sync trainer logs these counts as metrics).",
                   name, *values)


def _make_estimator(method: str):
    import torch

    from .. import torch as tailext_torch

    # **unused: what verl passes for other estimators (reward_baselines, ...); not used here.
    def estimator(token_level_rewards, response_mask, index=None, config=None, **unused):
        if index is None:
            raise ValueError(f"verl estimator {estimator_name(method)!r} needs the group "
                             "index (`uid` in data.non_tensor_batch): tailext rules are "
                             "computed within each prompt's group of rollouts.")
        options = _options_from_config(config)
        with torch.no_grad():
            scores = token_level_rewards.sum(dim=-1)
            valid = (response_mask != 0).any(dim=-1)
            result = tailext_torch.advantages_from_groups(
                scores, index, method=method, valid=valid, small_groups="zero",
                return_info=True, **options)
            advantages = result.advantages.unsqueeze(-1) * response_mask
        _record(estimator.__name__, result)
        return advantages, advantages

    rule = get_rule(method)
    estimator.__name__ = estimator.__qualname__ = f"tailext_{method}_estimator"
    estimator.__doc__ = (f"verl advantage estimator for tailext rule {method!r}: "
                         f"{rule.formula or method}. Options from config.{CONFIG_KEY}: "
                         f"{dict(rule.options)}.")
    return estimator


def register(methods=None) -> dict[str, str]:
    """Register tailext rules as verl advantage estimators in this process.

    Parameters
    ----------
    methods : iterable of str, optional
        Rules to register; default all of :func:`tailext.available_methods` (call again
        after registering a new rule with :func:`tailext.register_rule`).

    Returns
    -------
    dict
        tailext rule name → verl estimator name (see :func:`estimator_name`).

    Raises
    ------
    ValueError
        For an unknown rule, or when another estimator already holds a name tailext needs.

    Notes
    -----
    Idempotent: registering again returns the same mapping and leaves verl's registry as it
    was. verl computes advantages in its ``TaskRunner`` Ray actor, not in the driver script:
    there the ``verl.plugins`` entry point (:mod:`tailext.integrations.verl_plugin`) is what
    calls this function. Call it yourself only in a process you control that computes
    advantages (tests, a custom trainer), or for a rule registered after verl was imported.

    Examples
    --------
    >>> from tailext.integrations.verl import register  # doctest: +SKIP
    >>> from verl.trainer.ppo.core_algos import get_adv_estimator_fn  # doctest: +SKIP
    >>> names = register()  # doctest: +SKIP
    >>> get_adv_estimator_fn(names["tea"]).__name__  # doctest: +SKIP
    'tailext_tea_estimator'
    """
    core_algos = _core_algos()
    methods = available_methods() if methods is None else list(methods)
    names = {method: estimator_name(method) for method in methods}
    for method, name in names.items():
        if method not in _ESTIMATORS:
            _ESTIMATORS[method] = _make_estimator(method)
        held = core_algos.ADV_ESTIMATOR_REGISTRY.get(name)
        if held is not None and held is not _ESTIMATORS[method]:
            raise ValueError(f"verl already has an advantage estimator named {name!r} "
                             f"({getattr(held, '__module__', '?')}."
                             f"{getattr(held, '__qualname__', held)}); tailext will not "
                             "replace it.")
        core_algos.register_adv_est(name)(_ESTIMATORS[method])
    return names


def _numeric(values):
    """``values`` as floats (``None`` → NaN), or ``None`` if some value is not a number."""
    out = []
    for value in values:
        if value is None:
            out.append(float("nan"))
            continue
        if isinstance(value, (str, bytes)):
            return None
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            return None
    return out


def unbiased_val_metrics(data_sources, sample_uids, infos_dict) -> dict[str, float]:
    """Unbiased best@k (and pass@k for 0/1 values) of verl's validation samples.

    For each data source and each numeric variable of ``infos_dict`` (verl's
    ``reward_extra_infos_dict``: ``reward``, ``acc``, ...), each prompt's values (grouped by
    ``uid``) give the unbiased best-of-k of :mod:`tailext.integrations._metrics`, averaged
    over the prompts with at least ``k`` values, for verl's budgets ``k = 2, 4, 8, …, n``.

    Parameters
    ----------
    data_sources, sample_uids : sequence
        One data source and one prompt uid per validation sample.
    infos_dict : mapping of str to sequence
        One value per sample for each variable; ``None`` values are left out, non-numeric
        variables skipped (as verl's ``process_validation_metrics`` does).

    Returns
    -------
    dict
        ``"{section}/{data_source}/{variable}/best@{k}/unbiased"`` and, when every value of
        the variable in that data source is 0 or 1, ``".../pass@{k}"``; ``section`` is
        ``val-core`` for the largest ``k`` of the core variable (``acc`` if present, else
        ``reward``) and ``val-aux`` otherwise — where verl puts its ``best@k/mean``.

    Examples
    --------
    >>> from tailext.integrations.verl import unbiased_val_metrics
    >>> m = unbiased_val_metrics(["ds"] * 4, ["p"] * 4, {"reward": [1.0, 0.0, 0.0, 0.0]})
    >>> m["val-core/ds/reward/pass@4"], m["val-aux/ds/reward/best@2/unbiased"]
    (1.0, 0.5)
    """
    from ._metrics import best_of_by_prompt, doubling_budgets

    sources = [str(source) for source in data_sources]
    metrics: dict[str, float] = {}
    for source in dict.fromkeys(sources):
        rows = [i for i, s in enumerate(sources) if s == source]
        core = "acc" if "acc" in infos_dict else "reward"
        uids = [sample_uids[i] for i in rows]
        for variable, values in infos_dict.items():
            scores = _numeric([values[i] for i in rows])
            if scores is None:
                continue
            pool_sizes: dict = {}
            for uid, score in zip(uids, scores):
                pool_sizes[uid] = pool_sizes.get(uid, 0) + (score == score)
            n_max = max(pool_sizes.values(), default=0)
            budgets = doubling_budgets(n_max)
            estimate = best_of_by_prompt(scores, uids, budgets)
            for k in budgets:
                section = "val-core" if variable == core and k == n_max else "val-aux"
                prefix = f"{section}/{source}/{variable}"
                values_k = estimate.values[k]
                metrics[f"{prefix}/best@{k}/unbiased"] = float(values_k.mean())
                if estimate.binary[k].all():
                    metrics[f"{prefix}/pass@{k}"] = float(values_k.mean())
    return metrics
