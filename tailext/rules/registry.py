"""The advantage-rule registry: one registration per rule, at its definition.

A rule is registered once, by :func:`register_rule` decorating its numpy kernel, with
everything a caller needs: its options and defaults (the kernel's keyword-only parameters),
their validator, the torch implementation, the properties it claims, its minimum group
size, its formula and the label reports print. The numpy entry point
(:func:`tailext.advantages`), the torch adapter, the trainer integrations, the testing kit
and the benchmarks all read the registry, so a rule added here is available to all of them.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .._arguments import did_you_mean, shown

__all__ = ["AdvantageRule", "PROPERTIES", "DERIVED_ATTRIBUTES", "RESERVED_OPTIONS",
           "register_rule", "get_rule", "available_methods", "RENAMED"]

#: Properties a rule may claim. See :func:`tailext.testing.check_rule` for their checks.
PROPERTIES = frozenset({
    "zero_sum",                 # advantages of each group sum to zero
    "shift_invariant",          # A(r + c) = A(r) for a constant c per group
    "scale_equivariant",        # A(a r) = a A(r) for a > 0
    "scale_invariant",          # A(a r) = A(r) for a > 0 (z-scored rules)
    "permutation_equivariant",  # A(r[π]) = A(r)[π]
    "monotone",                 # r_i ≤ r_j ⇒ A_i ≤ A_j within a group
    "deterministic",            # no randomness (or fully determined by a `seed` option)
})

#: Attributes that a rule built from other rules may derive from its options (``derive=``).
DERIVED_ATTRIBUTES = frozenset({"properties", "torch_masks", "tail_fit"})

#: Keyword arguments of the entry points, which a rule's options may not shadow.
RESERVED_OPTIONS = frozenset({"rewards", "method", "valid", "small_groups", "check_finite",
                              "return_info", "group_ids"})

#: Names a rule had before, with the message that replaces them.
RENAMED = {
    "grpo_z": "'grpo_z' is now 'grpo' (z-scored, verl's and TRL's GRPO; ddof=1, eps=1e-6 by "
              "default — pass ddof=0 for the population std the old default used)",
    "tailext_grpo": "'tailext_grpo' is verl's name for tailext's 'grpo'",
    "tailext_rloo": "'tailext_rloo' is verl's name for tailext's 'rloo'",
}


def _no_option_check(**options):
    return options


def _one(**options) -> int:
    return 1


@dataclass(frozen=True)
class AdvantageRule:
    """A registered advantage rule.

    Attributes
    ----------
    name : str
        Registry key, as passed to ``advantages(method=...)``.
    numpy : callable
        ``numpy(rewards[B, m], **options) -> advantages[B, m]``: the kernel, given finite,
        C-contiguous float64 rewards of groups that are all valid and at least
        ``min_group_size`` long, and validated options.
    torch : callable or None
        ``torch(rewards[B, m], valid[B, m] or None, **options) -> advantages[B, m]`` on the
        rewards' device, sync-free, in the rewards' float32/float64 dtype. ``None``: the
        torch adapter computes the rule with ``numpy`` after one host round trip.
    torch_masks : bool
        Whether ``torch`` handles ``valid`` itself: it must then leave invalid rollouts out
        of each group's statistics, for any number of valid rollouts per row (rows below
        ``min_group_size`` may hold anything; the adapter zeroes them). Otherwise ``torch``
        is only given whole valid groups (``valid=None``): the adapter packs the groups by
        their number of valid rollouts, which costs one device sync.
    options : Mapping[str, object]
        Accepted keyword options and their defaults.
    check_options : callable
        ``check_options(**options) -> options``: validates and normalizes a complete option
        set (raising ``TypeError``/``ValueError`` naming the option and the value).
    min_group_size : callable
        ``min_group_size(**options) -> int``, the fewest valid rollouts a group needs.
    properties : frozenset of str
        Claimed properties, a subset of :data:`PROPERTIES`, under the default options
        (under others see :meth:`specialized`).
    formula : str
        The rule as a LaTeX formula.
    label : str
        Name printed in reports and figures (the paper's, e.g. ``"GRPO-Z"``).
    tail_fit : bool
        Whether the rule fits the upper tail (TEA family); such rules warn when a group's
        rewards take too few distinct values for a tail fit.
    derive : callable or None
        ``derive(**options) -> mapping`` of the attributes in :data:`DERIVED_ATTRIBUTES`
        that depend on the options, for a rule built from other rules (e.g. the properties
        of ``weighted_sum`` are those its components share). The registered rule holds
        them under the default options; :meth:`specialized` recomputes them.
    """

    name: str
    numpy: Callable
    options: Mapping[str, object]
    torch: Callable | None = None
    torch_masks: bool = False
    check_options: Callable = _no_option_check
    min_group_size: Callable = _one
    properties: frozenset = field(default_factory=frozenset)
    formula: str = ""
    label: str = ""
    tail_fit: bool = False
    derive: Callable | None = None

    def resolve(self, options: Mapping) -> dict:
        """The complete, validated option set: defaults updated by ``options``.

        Raises ``TypeError`` naming the accepted options (and the closest one) for an option
        the rule does not take, so a trainer can reject a configuration before its first
        step.
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            hint = did_you_mean(unknown[0], self.options)
            raise TypeError(f"method {self.name!r} got unknown option(s) "
                            f"{', '.join(map(repr, unknown))}; accepted options: "
                            f"{allowed}.{hint}")
        return self.check_options(**{**self.options, **options})

    def specialized(self, options: Mapping) -> "AdvantageRule":
        """The rule as it behaves under ``options`` (a :meth:`resolve` result).

        ``self`` for a rule without ``derive``; otherwise a copy whose ``properties``,
        ``torch_masks`` and ``tail_fit`` are those ``derive`` gives for ``options``. The
        entry points, the torch adapter and :func:`tailext.testing.check_rule` use it, so
        a composed rule is computed, and checked, with the attributes of its components.
        """
        if self.derive is None:
            return self
        return dataclasses.replace(self, **_derived_iv(self.name, self.derive(**options)))

    def __call__(self, rewards, **kwargs):
        """``tailext.advantages(rewards, method=self.name, **kwargs)``."""
        from .dispatch import advantages

        return advantages(rewards, self, **kwargs)


_REGISTRY: dict[str, AdvantageRule] = {}


def _derived_iv(name: str, derived: Mapping) -> dict:
    """Validated attributes from a rule's ``derive`` (a bug there names the rule)."""
    unknown = sorted(set(derived) - DERIVED_ATTRIBUTES)
    if unknown:
        raise ValueError(f"rule {name!r}: derive() returned unknown attributes {unknown}; "
                         f"derivable: {sorted(DERIVED_ATTRIBUTES)}.")
    attributes = {key: bool(value) for key, value in derived.items() if key != "properties"}
    if "properties" in derived:
        claimed = frozenset(derived["properties"])
        if not claimed <= PROPERTIES:
            unknown = sorted(claimed - PROPERTIES)
            raise ValueError(f"rule {name!r}: derive() returned unknown properties "
                             f"{unknown}; known: {', '.join(sorted(PROPERTIES))}."
                             f"{did_you_mean(unknown[0], PROPERTIES)}")
        attributes["properties"] = claimed
    return attributes


def register_rule(name: str, *, torch=None, torch_masks: bool = False, check_options=None,
                  min_group_size=None, properties=(), formula: str = "", label: str = "",
                  tail_fit: bool = False, derive=None, replace: bool = False):
    """Decorator registering ``kernel(rewards, **options)`` as advantage rule ``name``.

    The accepted options and their defaults are the kernel's keyword-only parameters. The
    decorator returns the public function ``f(rewards, *, valid=None, small_groups="raise",
    **options)`` — :func:`tailext.advantages` for this rule — with the kernel's docstring.

    Parameters
    ----------
    name : str
        Registry key; must not be taken unless ``replace=True``.
    torch : callable, optional
        ``torch(rewards, valid, **options)``; see :class:`AdvantageRule`. Without it the torch
        adapter computes the rule on the host (one device-to-host and one host-to-device
        copy per call).
    torch_masks : bool
        Whether ``torch`` handles the ``valid`` mask itself (see :class:`AdvantageRule`).
    check_options : callable, optional
        ``check_options(**options) -> options``; default: options pass unchanged.
    min_group_size : callable or int, optional
        The fewest rollouts a group needs (``int``, or a function of the options); default 1.
    properties : iterable of str
        Claimed properties (:data:`PROPERTIES`), checked by :func:`tailext.testing.check_rule`.
    formula, label : str
        LaTeX formula and report label (default: ``name``).
    tail_fit : bool
        Warn when groups have too few distinct rewards for a tail fit.
    derive : callable, optional
        ``derive(**options) -> mapping`` of the attributes in :data:`DERIVED_ATTRIBUTES`
        that depend on the options (they override ``properties``, ``torch_masks`` and
        ``tail_fit``); see :class:`AdvantageRule`. Called at registration with the default
        options.
    replace : bool
        Allow replacing a registered rule of the same name.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import register_rule, advantages
    >>> @register_rule("centred_demo", properties={"zero_sum"}, formula=r"A_i = r_i - \\bar r",
    ...                replace=True)
    ... def centred(rewards):
    ...     return rewards - rewards.mean(axis=-1, keepdims=True)
    >>> advantages([1.0, 3.0], method="centred_demo").tolist()
    [-1.0, 1.0]
    >>> centred([1.0, 5.0]).tolist()
    [-2.0, 2.0]
    """
    from .._arguments import bool_iv

    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {shown(name)}.")
    if not name.isidentifier():
        raise ValueError(f"`name` must be an identifier (letters, digits, '_'), got "
                         f"{shown(name)}.")
    claimed = frozenset([properties] if isinstance(properties, str) else properties)
    if not claimed <= PROPERTIES:
        unknown = sorted(claimed - PROPERTIES)
        raise ValueError(f"`properties` has unknown name(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(sorted(PROPERTIES))}."
                         f"{did_you_mean(unknown[0], PROPERTIES)}")
    replace = bool_iv(replace, "replace")
    if isinstance(min_group_size, int):
        fixed = min_group_size
        min_group_size = lambda **options: fixed  # noqa: E731
    if torch is not None and not callable(torch):
        raise TypeError(f"`torch` must be None or a callable, got {shown(torch)}.")
    if derive is not None and not callable(derive):
        raise TypeError(f"`derive` must be None or a callable, got {shown(derive)}.")

    def decorator(kernel):
        if name in _REGISTRY and not replace:
            raise ValueError(f"an advantage rule named {name!r} is already registered "
                             "(pass replace=True to replace it).")
        parameters = inspect.signature(kernel).parameters.values()
        options = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
        shadowed = sorted(set(options) & RESERVED_OPTIONS)
        if shadowed:
            raise ValueError(f"rule {name!r} may not have options named {shadowed}: they are "
                             "arguments of tailext.advantages.")
        rule = AdvantageRule(name, kernel, options, torch, bool_iv(torch_masks, "torch_masks"),
                             check_options or _no_option_check, min_group_size or _one,
                             claimed, formula, label or name, tail_fit, derive)
        if derive is not None:  # the registered rule holds them under the default options
            rule = rule.specialized(rule.resolve({}))
        _REGISTRY[name] = rule

        def public(rewards, **kwargs):
            return rule(rewards, **kwargs)

        public.__name__ = public.__qualname__ = kernel.__name__
        public.__module__ = kernel.__module__
        public.__doc__ = kernel.__doc__
        signature = inspect.signature(kernel)
        entry = [inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, default=default)
                 for option, default in (("valid", None), ("small_groups", "raise"),
                                         ("return_info", False))]
        public.__signature__ = signature.replace(
            parameters=[*signature.parameters.values(), *entry])
        public.rule = rule
        return public

    return decorator


def get_rule(method) -> AdvantageRule:
    """The registered :class:`AdvantageRule` called ``method`` (or ``method`` itself if it is one).

    Raises
    ------
    ValueError
        For an unknown name, listing the registered ones with a "did you mean".
    TypeError
        For a ``method`` that is neither a string nor an :class:`AdvantageRule`.
    """
    if isinstance(method, AdvantageRule):
        return method
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a rule name (str), got {shown(method)}.")
    rule = _REGISTRY.get(method)
    if rule is None:
        hint = f" {RENAMED[method]}." if method in RENAMED else did_you_mean(method, _REGISTRY)
        raise ValueError(f"unknown advantage method {method!r}.{hint} Available: "
                         f"{', '.join(available_methods())}.")
    return rule


def available_methods() -> list[str]:
    """Names of all registered advantage rules, sorted.

    Examples
    --------
    >>> from tailext import available_methods
    >>> {"tea", "prefix_tea", "grpo", "mean_centred"} <= set(available_methods())
    True
    """
    return sorted(_REGISTRY)
