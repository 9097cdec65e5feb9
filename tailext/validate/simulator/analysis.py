"""Paired comparisons of every trained cell with GRPO on the same scenario and ``m``."""

from __future__ import annotations

import numpy as np

from tailext.evaluation import paired_bootstrap, win_tie_loss

from ..seeding import SimulatorStream, generator
from .config import BASELINE

__all__ = ["PROTOCOLS", "analyse", "grid_edge", "kl_selection"]

#: KL-selection protocols compared (see :func:`tailext.validate.simulator.cells.run_cell`).
PROTOCOLS = ("top10of32", "kl_per_n")


def analyse(cells, per_prompt, config) -> dict:
    """Paired prompt bootstrap and win/tie/loss of each training cell against the GRPO cell.

    ``cells`` are the training cells' summaries; ``per_prompt`` maps a cell's
    ``(scenario, rule, m, n_target)`` to its per-prompt values (missing or None: no
    comparison). For each KL-selection protocol (:data:`PROTOCOLS`), per test prompt the
    exact ``V_n`` is averaged over seeds; the bootstrap resamples prompts
    (``config.bootstrap_resamples``, stream ``(BOOTSTRAP,)``: every comparison resamples the
    same prompts). ``seed_se`` is the standard error over seeds of the prompt-mean
    difference: training-seed noise, which the prompt bootstrap does not see.
    """
    comparisons = []
    for cell in cells:
        key = (cell["scenario"], cell["rule"], cell["m"], cell["n_target"])
        base_key = (cell["scenario"], BASELINE, cell["m"], config.n_target)
        if key == base_key or per_prompt.get(key) is None or per_prompt.get(base_key) is None:
            continue
        for protocol in PROTOCOLS:
            comparisons.append(dict(
                scenario=cell["scenario"], rule=cell["rule"], m=cell["m"],
                n_target=cell["n_target"], protocol=protocol, n=list(config.frontier),
                **_compare(per_prompt[key][protocol], per_prompt[base_key][protocol],
                           config)))
    return {"comparisons": comparisons, "kl_selection": kl_selection(cells)}


def grid_edge(kl, grid):
    """``"lower"``/``"upper"`` if ``kl`` is the smallest/largest swept value, else ``None``."""
    return "lower" if kl == min(grid) else "upper" if kl == max(grid) else None


def kl_selection(cells) -> list[dict]:
    """The KL each cell selected under both protocols and whether it is at a grid edge.

    A selection at an edge means the optimum may lie outside the swept range, so the
    comparison at that budget is not settled by the sweep (a lower edge at 0 is the end of
    the range: no penalty at all).
    """
    out = []
    for cell in cells:
        if "error" in cell:
            continue
        grid = cell["kl_coefs"]
        out.append(dict(scenario=cell["scenario"], rule=cell["rule"], m=cell["m"],
                        n_target=cell["n_target"], grid=list(grid),
                        top10of32=cell["selected_kl"],
                        top10of32_edge=grid_edge(cell["selected_kl"], grid),
                        kl_per_n=list(cell["kl_per_n"]),
                        kl_per_n_edge=[grid_edge(k, grid) for k in cell["kl_per_n"]]))
    return out


def _compare(ours, base, config) -> dict:
    """Bootstrap CI, seed SE and win/tie/loss of ``ours − base`` (both ``[S, P, C]``)."""
    boot = paired_bootstrap(ours.mean(axis=0), base.mean(axis=0),
                            n_resamples=config.bootstrap_resamples,
                            seed=generator(config.seed, SimulatorStream.BOOTSTRAP))
    wtl = win_tie_loss(ours.mean(axis=0), base.mean(axis=0), tol=config.tie_tolerance)
    seed_diffs = (ours - base).mean(axis=1)  # [S, C]
    seed_se = (seed_diffs.std(axis=0, ddof=1) / np.sqrt(len(seed_diffs))
               if len(seed_diffs) > 1 else None)  # undefined for one seed
    return dict(difference=boot.mean_difference, ci_low=boot.ci_low, ci_high=boot.ci_high,
                seed_se=seed_se, wins=wtl.wins, ties=wtl.ties, losses=wtl.losses)
