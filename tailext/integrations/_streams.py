"""Random rules inside a trainer: one Generator per configured seed, advanced every step.

A rule with a ``seed`` option (``prefix_tea``'s random prefixes, ``chow_bon_rl``'s split)
given an *int* seed draws the same numbers on every call, which is what reproducibility
asks of one call but not of training: ``prefix_tea`` would then put the same reward ranks
into its prefixes at every step, and its prefixes would no longer be random subsets. A
trainer's configuration can only hold an int (or nothing), so each integration keeps a
:class:`RandomStreams`: the configured seed (or fresh OS entropy for ``None``) starts one
``numpy.random.Generator`` per place a seed is taken, and later calls continue it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["RandomStreams"]


def _takes_seed(method) -> bool:
    from ..rules import get_rule

    return "seed" in get_rule(method).options


class RandomStreams:
    """Persistent Generators for the ``seed`` options of a rule and of its components.

    Parameters
    ----------
    default_seed : int or None
        Seed used where the options give none (e.g. the trainer's own seed); ``None`` is
        fresh OS entropy.
    """

    def __init__(self, default_seed=None):
        self.default_seed = default_seed
        self._generators: dict[tuple, np.random.Generator] = {}

    def _generator(self, path: tuple, seed) -> np.random.Generator:
        if isinstance(seed, np.random.Generator):
            return seed
        seed = self.default_seed if seed is None else seed
        key = (path, seed)
        if key not in self._generators:
            self._generators[key] = np.random.default_rng(seed)
        return self._generators[key]

    def options(self, method, options: Mapping, path: tuple = ()) -> dict:
        """``options`` with the ``seed`` of a random ``method`` (and of each random
        component of a composed rule) replaced by its persistent Generator."""
        out = dict(options)
        if _takes_seed(method):
            out["seed"] = self._generator(path, out.get("seed"))
        components = out.get("components")
        if isinstance(components, Sequence) and not isinstance(components, (str, bytes)):
            out["components"] = [self._component(item, path + ("components", i))
                                 for i, item in enumerate(components)]
        return out

    def _component(self, item, path):
        if isinstance(item, Mapping) and "method" in item:
            inner = item.get("options") or {}
            return {**item, "options": self.options(item["method"], inner, path)}
        if isinstance(item, Sequence) and not isinstance(item, (str, bytes)) \
                and len(item) in (2, 3) and isinstance(item[0], str):
            inner = item[2] if len(item) == 3 and item[2] is not None else {}
            return (item[0], item[1], self.options(item[0], inner, path))
        return item  # not a component: the rule's own validation will say so
