"""tailext advantage rules as SkyRL advantage estimators.

After :func:`register`, every tailext rule is a SkyRL advantage estimator: set
``trainer.algorithm.advantage_estimator=tea`` (or ``prefix_tea``, ``weighted_sum``, ...). The
estimator follows SkyRL's contract (``skyrl.backends.skyrl_train.utils.ppo_utils``, the same
from 0.1.0 to 0.4.0)::

    estimator(token_level_rewards [B, T], response_mask [B, T], index [B], config, values,
              grpo_norm_by_std, gamma, lambd) -> (advantages [B, T], returns [B, T])

with the sequence score ``s = token_level_rewards.sum(-1)`` grouped by ``index`` (SkyRL's
``uids``: one id per prompt, shared by its samples), ``A = rule(s)`` within each group, and
``advantages = returns = A[:, None] * response_mask`` — the broadcast of SkyRL's ``grpo``.
The advantages are computed on the rewards' device by :mod:`tailext.torch`.

Options
-------
SkyRL builds ``trainer.algorithm`` as a dataclass that rejects keys it does not know, so a
rule's options cannot travel in the config: they are fixed at registration,
``register(options={"tea": {"n_target": 64}})``, or given to a named variant,
``register_variant("tea_n256", "tea", {"n_target": 256})``. They are validated there (an
error names the option, with a "did you mean"). SkyRL's ``grpo_norm_by_std`` does not
apply (each rule has its own scaling, e.g. ``mean_centred`` is GRPO without the std): a
``False`` there is reported by a warning.

Where to register
-----------------
SkyRL checks the estimator name (``validate_cfg``) before Ray starts, then
``initialize_ray`` copies the registry into a named Ray actor from which every worker
reads it. Register in the launch script, at import, before SkyRL's ``main()`` runs; see
``docs/integrations/skyrl.md``. An estimator is pickled with its rule, so a rule of your
own registered in the launch script reaches the workers too; one used as a *component* of
``weighted_sum`` must be registered in the worker process as well (it is looked up by
name there).

Names
-----
A rule keeps its tailext name unless SkyRL has a built-in estimator of that name, in which
case it is registered as ``tailext_<name>`` (SkyRL 0.1–0.4: ``grpo`` → ``tailext_grpo``,
``rloo`` → ``tailext_rloo``); :func:`estimator_name` gives the mapping.

Small groups
------------
SkyRL pads a batch to a multiple of the data-parallel size with copies of real rows under
fresh ids ``pad0, pad1, …``: groups of one sample whose response mask is not zero (their
loss mask is). They get advantage 0 under the small-group policy
(:class:`tailext.SmallGroupWarning`, counted in :attr:`TailextEstimator.last_info`), like any
group with fewer samples than the rule needs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

from .._arguments import did_you_mean, shown
from ..rules import available_methods, get_rule
from ..rules.compose import plain_options

__all__ = ["TailextEstimator", "estimator_name", "register", "register_variant"]


def _ppo_utils():
    # Imported on use: SkyRL's registry module imports ray and torch.
    from skyrl.backends.skyrl_train.utils import ppo_utils

    return ppo_utils


def _builtin_names() -> set[str]:
    return {member.value for member in _ppo_utils().AdvantageEstimator}


def estimator_name(method: str) -> str:
    """The SkyRL estimator name of tailext rule ``method``.

    ``method`` itself, or ``"tailext_" + method`` when SkyRL has a built-in estimator called
    ``method`` (a ``ppo_utils.AdvantageEstimator`` value).

    Examples
    --------
    >>> from tailext.integrations.skyrl import estimator_name  # doctest: +SKIP
    >>> estimator_name("tea"), estimator_name("grpo")  # doctest: +SKIP
    ('tea', 'tailext_grpo')
    """
    name = get_rule(method).name  # unknown method -> ValueError listing the available ones
    return f"tailext_{name}" if name in _builtin_names() else name


class TailextEstimator:
    r"""SkyRL advantage estimator: tailext rule ``method`` under fixed ``options``.

    Called by SkyRL as ``estimator(token_level_rewards, response_mask, index, config, ...)``;
    returns ``(A[:, None] * response_mask,)`` twice (advantages, returns), with
    ``A = tailext.torch.advantages_from_groups(token_level_rewards.sum(-1), index, method,
    **options)``.

    Parameters
    ----------
    method : str or AdvantageRule
        A registered rule (the rule itself travels with the estimator to Ray workers).
    options : mapping, optional
        The rule's keyword options, validated here; kept as plain data (OmegaConf
        containers become ``dict``/``list``).

    Attributes
    ----------
    last_info : tailext.AdvantageResult or None
        The counts of the last call in this process (groups given 0 because they were too
        small, e.g. SkyRL's padding; tied-tail groups), as 0-d tensors.

    Notes
    -----
    Two estimators are equal when their rule names and options are, so registering the
    same thing twice, in any process, is recognised.
    """

    def __init__(self, method, options=None):
        rule = get_rule(method)
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options of {rule.name!r} must be a mapping of its options, got "
                            f"{shown(options)}.")
        plain = plain_options(options or {})
        rule.resolve(plain)  # errors now, at registration, not at the first training step
        self.rule, self.options, self.last_info = rule, plain, None

    def __call__(self, token_level_rewards, response_mask, index, config=None,
                 grpo_norm_by_std=True, **unused):
        # **unused: values, gamma, lambd, ... that SkyRL passes to every estimator.
        import torch

        from .. import torch as tailext_torch

        if grpo_norm_by_std is False:
            warnings.warn("SkyRL's trainer.algorithm.grpo_norm_by_std=False does not apply "
                          "to tailext estimators (each rule has its own scaling; "
                          "mean_centred is GRPO without the std); it is ignored.",
                          UserWarning, stacklevel=2)
        with torch.no_grad():
            scores = token_level_rewards.sum(dim=-1)
            info = tailext_torch.advantages_from_groups(
                scores, index, method=self.rule, return_info=True, **self.options)
            advantages = info.advantages.unsqueeze(-1) * response_mask
        self.last_info = info
        return advantages, advantages

    def __eq__(self, other):
        if not isinstance(other, TailextEstimator):
            return NotImplemented
        return (self.rule.name, self.options) == (other.rule.name, other.options)

    __hash__ = None  # mutable (last_info); equality is by rule name and options

    def __getstate__(self):
        return {"rule": self.rule, "options": self.options}  # not last_info's tensors

    def __setstate__(self, state):
        self.rule, self.options, self.last_info = state["rule"], state["options"], None

    def __repr__(self):
        return f"TailextEstimator({self.rule.name!r}, {self.options!r})"


def _methods_iv(methods) -> list[str]:
    if methods is None:
        return available_methods()
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, Iterable):
        raise TypeError(f"`methods` must be None or rule names, got {shown(methods)}.")
    return [get_rule(method).name for method in methods]


def _options_iv(options, methods) -> dict:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError("`options` must map rule names to their options, e.g. "
                        f"{{'tea': {{'n_target': 64}}}}, got {shown(options)}.")
    for method in options:
        if method not in methods:
            raise ValueError(f"`options` has options for {method!r}, which is not being "
                             f"registered (methods: {', '.join(methods)})."
                             f"{did_you_mean(method, methods)}")
    return dict(options)


def _held(registry, name):
    """The estimator SkyRL holds under ``name`` (its actor's too, once Ray is up), or None."""
    return registry.get(name) if name in registry.list_available() else None


def _conflict(name, held, wanted) -> str | None:
    """Why ``wanted`` cannot be registered as ``name`` (``None``: it can, or it is there)."""
    if held is None or held == wanted:
        return None
    if isinstance(held, TailextEstimator):
        return (f"SkyRL's advantage estimator {name!r} is already {held!r}, not {wanted!r}; "
                f"to change it, AdvantageEstimatorRegistry.unregister({name!r}) first, or "
                "register the new options under another name with register_variant().")
    return (f"SkyRL already has an advantage estimator named {name!r} "
            f"({getattr(held, '__module__', '?')}.{getattr(held, '__qualname__', held)}); "
            "tailext will not replace it.")


def _register_all(estimators: dict) -> None:
    """Register ``{name: estimator}`` after checking all of them (all or none)."""
    registry = _ppo_utils().AdvantageEstimatorRegistry
    held = {name: _held(registry, name) for name in estimators}
    for name, estimator in estimators.items():
        problem = _conflict(name, held[name], estimator)
        if problem:
            raise ValueError(problem)
    for name, estimator in estimators.items():
        if held[name] is None:
            registry.register(name, estimator)


def register(methods=None, *, options=None) -> dict[str, str]:
    """Register tailext rules as SkyRL advantage estimators.

    Parameters
    ----------
    methods : str or iterable of str, optional
        Rules to register; default all of :func:`tailext.available_methods`.
    options : mapping, optional
        ``{method: {option: value}}``: the options each rule is computed with (default:
        its defaults), fixed here because SkyRL's config does not carry them.

    Returns
    -------
    dict
        tailext rule name → SkyRL estimator name (see :func:`estimator_name`).

    Raises
    ------
    ValueError
        An unknown rule; options for a rule not being registered; a bad option value; a
        name SkyRL already holds for another estimator (SkyRL's own, or tailext's with
        other options). Nothing is registered then.
    TypeError
        An option the rule does not accept (with the accepted ones).

    Notes
    -----
    Call it in the launch script before SkyRL's ``main()`` (which checks the name, then
    starts Ray and copies the registry to the workers); after ``ray.init`` it registers in
    SkyRL's registry actor directly. Idempotent: registering the same rules with the same
    options again changes nothing.

    Examples
    --------
    >>> from tailext.integrations.skyrl import register  # doctest: +SKIP
    >>> names = register(options={"tea": {"n_target": 64}})  # doctest: +SKIP
    >>> names["tea"], names["grpo"]  # doctest: +SKIP
    ('tea', 'tailext_grpo')
    """
    methods = _methods_iv(methods)
    options = _options_iv(options, methods)
    names = {method: estimator_name(method) for method in methods}
    _register_all({names[method]: TailextEstimator(method, options.get(method))
                   for method in methods})
    return names


def register_variant(name: str, method, options=None) -> str:
    """Register tailext rule ``method`` with ``options`` as SkyRL estimator ``name``.

    For several option sets of one rule side by side (``"tea_n256"``), or a composed rule
    (``register_variant("grpo_tea", "weighted_sum", {"components": [...]})``).

    Parameters
    ----------
    name : str
        The SkyRL estimator name; not one of SkyRL's built-ins.
    method : str
        A registered tailext rule.
    options : mapping, optional
        Its options, validated here.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ValueError
        A name that is empty, a SkyRL built-in, or held by another estimator; an unknown
        rule or a bad option value.
    TypeError
        A name that is not a string; an option the rule does not accept.
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {shown(name)}.")
    if not name.strip() or name != name.strip():
        raise ValueError(f"`name` must be a non-empty name without surrounding spaces, got "
                         f"{shown(name)}.")
    if name in _builtin_names():
        raise ValueError(f"`name` {name!r} is a SkyRL built-in estimator; choose another "
                         "name for the variant.")
    _register_all({name: TailextEstimator(method, options)})
    return name
