"""The advantage rules the checks compare, by the paper's names: the one place that maps a
report label to a tailext method.

Configurations, records and reports name rules by their label ("GRPO", "GRPO-Z", "TEA", …);
only this table knows which registered ``tailext`` method computes each one, and with which
options. Options are pinned where a library default could move a result: GRPO-Z is the
population-sd z-score ``(r − r̄)/(sd + 1e-6)`` (``grpo`` with ``ddof=0``, docs/math.md#grpo)
whatever the library's default ``ddof`` is. When a method is renamed in the library, this
table is the only thing to edit, and recorded results keep their labels and numbers.

The position of a rule in :data:`RULES` is its index in the seeding scheme
(:mod:`tailext.validate.seeding`): add new rules at the end.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Rule", "RULES", "LABELS", "method", "options", "available", "advantages",
           "torch_advantages", "index"]


class Rule(NamedTuple):
    """A tailext method and the options pinned for it (the check adds its own)."""

    method: str
    pinned: dict = {}


#: paper label → rule, in seeding order.
RULES: dict[str, Rule] = {
    "GRPO": Rule("mean_centred"),                       # r − r̄ (the paper's GRPO)
    "GRPO-Z": Rule("grpo", {"ddof": 0, "eps": 1e-6}),   # (r − r̄) / (population sd + ε)
    "RLOO": Rule("rloo"),
    "BoN-max mean": Rule("bon_max_mean"),
    "BoN-max second": Rule("bon_max_second"),
    "BoN mean": Rule("bon_mean"),
    "max@k LOO-1": Rule("maxk_loo1"),
    "Chow BoN-RL": Rule("chow_bon_rl"),
    "CAT-BoN": Rule("cat_bon"),
    "TEA": Rule("tea"),
    "Prefix-TEA": Rule("prefix_tea"),
}
LABELS = tuple(RULES)


def _rule(label: str) -> Rule:
    try:
        return RULES[label]
    except KeyError:
        raise ValueError(f"unknown rule {label!r}; the checks know "
                         f"{', '.join(LABELS)}.") from None


def index(label: str) -> int:
    """The rule's position in :data:`RULES` (its seeding index)."""
    _rule(label)
    return LABELS.index(label)


def method(label: str) -> str:
    """The tailext method computing ``label``."""
    return _rule(label).method


def options(label: str, **extra) -> dict:
    """Pinned options of ``label`` updated by the check's ``extra`` ones, restricted to those
    the method accepts (a check passes ``n_target`` or ``seed`` to every rule; only the rules
    that take them get them)."""
    import tailext

    accepted = tailext.get_rule(method(label)).options
    merged = {**_rule(label).pinned, **extra}
    return {key: value for key, value in merged.items() if key in accepted}


def available(labels) -> tuple[list[str], list[str]]:
    """``(registered, missing)``: the labels whose method this tailext build registers."""
    import tailext

    registered = set(tailext.available_methods())
    have = [label for label in labels if method(label) in registered]
    return have, [label for label in labels if label not in have]


def advantages(rewards, label: str, **extra):
    """numpy advantages of rule ``label`` (``tailext.advantages``)."""
    import tailext

    return tailext.advantages(rewards, method=method(label), **options(label, **extra))


def torch_advantages(rewards, label: str, **extra):
    """torch advantages of rule ``label`` (``tailext.torch.advantages``)."""
    import tailext.torch

    return tailext.torch.advantages(rewards, method=method(label), **options(label, **extra))
