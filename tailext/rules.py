"""Name → advantage-rule registry and the :func:`advantages` entry point.

A rule maps rewards ``[B, m]`` (or one group ``[m]``) to advantages of the same shape. Each
rule is registered once with the keyword options it accepts (and their defaults), the
algebraic properties it claims (checked for every rule by :mod:`tailext.testing` and the
test-suite), and a one-line formula. Other modules add rules with :func:`register_rule`
without touching this file.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

from . import estimators

__all__ = ["AdvantageRule", "PROPERTIES", "register_rule", "get_rule", "available_methods",
           "advantages"]

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


@dataclass(frozen=True)
class AdvantageRule:
    """A registered advantage rule.

    Attributes
    ----------
    name : str
        Registry key, as passed to ``advantages(method=...)``.
    function : callable
        ``function(rewards, **options) -> advantages``; validates its own input.
    options : Mapping[str, object]
        Accepted keyword options and their defaults (read from the function signature).
    properties : frozenset of str
        Claimed properties, a subset of :data:`PROPERTIES`, under the default options.
    formula : str
        One-line statement of the rule.
    """

    name: str
    function: Callable
    options: Mapping[str, object]
    properties: frozenset = field(default_factory=frozenset)
    formula: str = ""

    def check_options(self, options) -> None:
        """Raise ``TypeError`` naming the accepted options if ``options`` has a key the rule
        does not accept (lets a trainer reject a bad configuration before the first step)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise TypeError(f"method {self.name!r} got unknown option(s) {unknown}; "
                            f"accepted options: {allowed}.")

    def __call__(self, rewards, **options):
        self.check_options(options)
        return self.function(rewards, **options)


_REGISTRY: dict[str, AdvantageRule] = {}


def register_rule(name: str, *, properties=(), formula: str = "", replace: bool = False):
    """Decorator registering ``function(rewards, **options)`` as advantage rule ``name``.

    The accepted options and their defaults are the function's keyword-only parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import register_rule, advantages
    >>> @register_rule("centred_demo", properties={"zero_sum"}, formula="A = r - mean(r)",
    ...                replace=True)
    ... def centred(rewards):
    ...     r = np.asarray(rewards, dtype=float)
    ...     return r - r.mean(axis=-1, keepdims=True)
    >>> advantages([1.0, 3.0], method="centred_demo").tolist()
    [-1.0, 1.0]
    """
    claimed = frozenset(properties)
    if not claimed <= PROPERTIES:
        raise ValueError(f"unknown properties {sorted(claimed - PROPERTIES)}; "
                         f"known: {sorted(PROPERTIES)}.")

    def decorator(function):
        if name in _REGISTRY and not replace:
            raise ValueError(f"an advantage rule named {name!r} is already registered.")
        parameters = inspect.signature(function).parameters.values()
        options = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
        _REGISTRY[name] = AdvantageRule(name, function, options, claimed, formula)
        return function

    return decorator


def get_rule(method: str) -> AdvantageRule:
    """The registered :class:`AdvantageRule` called ``method``."""
    try:
        return _REGISTRY[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown advantage method {method!r}; available: "
                         f"{', '.join(available_methods())}.") from None


def available_methods() -> list[str]:
    """Names of all registered advantage rules, sorted.

    Examples
    --------
    >>> from tailext import available_methods
    >>> {"tea", "prefix_tea", "tea_raw"} <= set(available_methods())
    True
    """
    return sorted(_REGISTRY)


def advantages(rewards, method="tea", **options):
    """Advantages of every rollout under the rule ``method``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Finite rewards, ``B`` groups (prompts) of ``m`` rollouts.
    method : str, default "tea"
        A name from :func:`available_methods`.
    **options
        The rule's keyword options (e.g. ``tail_fraction``, ``n_target`` for TEA); an
        option the rule does not accept is a ``TypeError``.

    Returns
    -------
    ndarray, float64, same shape as ``rewards``

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> rewards = np.random.default_rng(0).normal(size=(4, 16))
    >>> A = advantages(rewards, method="tea", tail_fraction=0.25, n_target=128)
    >>> A.shape
    (4, 16)
    """
    return get_rule(method)(rewards, **options)


register_rule(
    "tea", properties={"zero_sum", "shift_invariant", "scale_equivariant",
                       "permutation_equivariant", "monotone", "deterministic"},
    formula="A_i = ψ₊(r_i; τ̂) − mean_j ψ₊(r_j; τ̂)")(estimators.tea_advantages)
register_rule(
    "tea_raw", properties={"shift_invariant", "scale_equivariant", "permutation_equivariant",
                           "deterministic"},
    formula="A_i = ψ(r_i; τ̂)")(estimators.tea_raw_advantages)
register_rule(
    "prefix_tea", properties={"zero_sum", "shift_invariant", "scale_equivariant",
                              "deterministic"},
    formula="c_i = Σ_j w_j (m/n_j) 1{i ≤ n_j} ψ₊(r_i; τ̂(r_{1:n_j})); A_i = c_i − mean c")(
    estimators.prefix_tea_advantages)
