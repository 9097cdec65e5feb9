"""tailext advantage rules as verl advantage estimators.

After :func:`register`, every tailext rule is a verl advantage estimator: set
``algorithm.adv_estimator=tea`` (or ``prefix_tea``, ``bon_mean``, ...) in the verl trainer
config. The estimator follows verl's contract for outcome rewards
(``verl.trainer.ppo.core_algos``)::

    estimator(token_level_rewards [bs, T], response_mask [bs, T], index [bs], config)
        -> (advantages [bs, T], returns [bs, T])

with the sequence score ``s = token_level_rewards.sum(-1)`` grouped by ``index`` (verl's
``uid``: one id per prompt, shared by its rollouts), ``A = rule(s)`` within each group, and
``advantages = returns = A[:, None] * response_mask`` — the same broadcast as verl's ``grpo``.
The advantages are computed on the rewards' device by :mod:`tailext.torch`, with no host
copy of the rewards.

Options
-------
The rule's keyword options are read from the ``tailext`` block of the algorithm config
(``config.tailext``, a mapping; absent means the rule's defaults), e.g. on verl's Hydra
command line::

    algorithm.adv_estimator=tea +algorithm.tailext.tail_fraction=0.25 \\
        +algorithm.tailext.n_target=128

An option the chosen rule does not accept is a ``TypeError`` naming the accepted ones
(``tailext.get_rule(name).options`` lists them). verl's ``norm_adv_by_std_in_grpo`` and
``epsilon`` do not apply: each rule defines its own scaling (e.g. ``grpo_z`` has ``eps`` and
``ddof``).

Names
-----
A rule keeps its tailext name unless verl has a built-in estimator of that name, in which
case it is registered as ``tailext_<name>`` (with verl 0.9: ``grpo`` → ``tailext_grpo``,
``rloo`` → ``tailext_rloo``); :func:`estimator_name` gives the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..rules import available_methods, get_rule

__all__ = ["CONFIG_KEY", "estimator_name", "register"]

#: Key of the algorithm-config block holding the rule's keyword options.
CONFIG_KEY = "tailext"

# One estimator function per rule, created once: verl's registry accepts a re-registration
# only of the identical function object, which makes :func:`register` idempotent.
_ESTIMATORS: dict[str, object] = {}


def _core_algos():
    # Imported on use: importing verl pulls in ray and transformers (seconds).
    from verl.trainer.ppo import core_algos

    return core_algos


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
            group_advantages = tailext_torch.advantages_from_groups(
                scores, index, method=method, **options)
            advantages = group_advantages.unsqueeze(-1) * response_mask
        return advantages, advantages

    rule = get_rule(method)
    estimator.__name__ = estimator.__qualname__ = f"tailext_{method}_estimator"
    estimator.__doc__ = (f"verl advantage estimator for tailext rule {method!r}: "
                         f"{rule.formula or method}. Options from config.{CONFIG_KEY}: "
                         f"{dict(rule.options)}.")
    return estimator


def register(methods=None) -> dict[str, str]:
    """Register tailext rules as verl advantage estimators.

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
    was. verl's trainer runs in Ray worker processes: call ``register()`` in the driver
    script that builds the trainer (before ``compute_advantage`` runs there).

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
