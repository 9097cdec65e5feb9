"""Hypothesis strategy shared by the rule tests: reward batches with ties and degenerate rows."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: (scale, offset) pairs: tiny, unit and huge magnitudes, and a huge offset on unit noise.
ALL_MAGNITUDES = ((1e-8, 0.0), (1.0, 0.0), (1e8, 0.0), (1.0, 1e8))


@st.composite
def reward_batches(draw, min_m=2, max_m=9, max_groups=3, magnitudes=ALL_MAGNITUDES):
    """``[B, m]`` float64 rewards: continuous values, heavy ties (3–4 levels) or all-equal
    rows, scaled and offset by one of ``magnitudes``."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, max_groups)), draw(st.integers(min_m, max_m)))
    kind = draw(st.sampled_from(["normal", "ties", "equal"]))
    if kind == "normal":
        rewards = rng.normal(size=shape)
    elif kind == "ties":
        rewards = rng.integers(0, 4, size=shape).astype(float)
    else:
        rewards = np.full(shape, rng.normal())
    scale, offset = draw(st.sampled_from(magnitudes))
    return rewards * scale + offset
