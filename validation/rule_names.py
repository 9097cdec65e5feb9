"""The validation records' rule keys (the paper's rules) and the tailext methods they run.

The records and reports keep the keys they were written with; ``grpo`` there is the paper's
mean-centred GRPO (tailext's ``mean_centred``) and ``grpo_z`` its z-scored GRPO with the
population std (tailext's ``grpo`` with ``ddof=0``). Every call of a rule by key goes
through :func:`rule_call`.
"""

from __future__ import annotations

__all__ = ["RULES", "rule_call", "method_of"]

#: key → (tailext method, options that reproduce the key's rule exactly)
RULES = {"grpo": ("mean_centred", {}), "grpo_z": ("grpo", {"ddof": 0})}


def method_of(key: str) -> str:
    """The tailext method behind record key ``key``."""
    return RULES.get(key, (key, {}))[0]


def rule_call(key: str, **options) -> dict:
    """``dict(method=..., **options)`` for ``tailext.advantages(rewards, **rule_call(key))``."""
    method, fixed = RULES.get(key, (key, {}))
    return {"method": method, **fixed, **options}
