"""Figures of the Monte Carlo checks: bias and variance against m, log-log."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..records import save_figure

__all__ = ["plot_bias_variance"]


def plot_bias_variance(rows: list[dict], path: Path, *, title: str,
                       paper: dict | None = None) -> Path:
    """Bias and variance of each estimator against ``m`` with reference slopes −1 and −3.

    Colours name the estimators; markers say what a point is: ``o`` a resolved bias with
    ±1 SE bars, a hollow ``v`` the upper bound ``bias + 2 SE`` of an unresolved one, ``x``
    the paper's value (``paper``: estimator → m → (bias, variance)). The legend lists only
    the markers that are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, (ax_bias, ax_var) = plt.subplots(1, 2, figsize=(11, 4.4))
    names = list(dict.fromkeys(r["estimator"] for r in rows))
    colours, drawn = [], set()
    for index, name in enumerate(names):
        colour = f"C{index}"
        mine = [r for r in rows if r["estimator"] == name]
        m = np.array([r["m"] for r in mine])
        resolved = np.array([r["resolved"] for r in mine])
        if resolved.any():
            ax_bias.errorbar(m[resolved], [r["bias_estimate"] for r in mine if r["resolved"]],
                             yerr=[r["bias_se"] for r in mine if r["resolved"]],
                             color=colour, marker="o", capsize=3)
            drawn.add("resolved")
        if (~resolved).any():
            ax_bias.scatter(m[~resolved], [r["bias_upper"] for r in mine if not r["resolved"]],
                            marker="v", facecolors="none", edgecolors=colour)
            drawn.add("unresolved")
        ax_var.plot(m, [r["variance"] for r in mine], marker="o", color=colour)
        if paper and name in paper:
            known = [v for v in m if int(v) in paper[name]]
            ax_bias.scatter(known, [paper[name][int(v)][0] for v in known], marker="x",
                            color=colour, alpha=0.6)
            ax_var.scatter(known, [paper[name][int(v)][1] for v in known], marker="x",
                           color=colour, alpha=0.6)
            drawn.add("paper")
        colours.append(Line2D([], [], color=colour, lw=2, label=mine[0]["label"]))
    first = [r for r in rows if r["estimator"] == names[0]]
    grid = np.array([first[0]["m"], first[-1]["m"]], dtype=float)
    m0 = grid[0]
    b0 = first[0]["bias_estimate"]
    ax_bias.plot(grid, b0 * (grid / m0) ** -1.0, "k--", lw=1)
    ax_bias.plot(grid, b0 * (grid / m0) ** -3.0, "k:", lw=1)
    v0 = max(r["variance"] for r in rows if r["m"] == m0)
    ax_var.plot(grid, v0 * (grid / m0) ** -1.0, "k--", lw=1)
    markers = {"resolved": Line2D([], [], color="k", marker="o", ls="none",
                                  label="resolved bias ± 1 SE"),
               "unresolved": Line2D([], [], color="k", marker="v", ls="none", mfc="none",
                                    label="not resolved: bias + 2 SE bound"),
               "paper": Line2D([], [], color="k", marker="x", ls="none",
                               label="paper, Table 15")}
    shown = [markers[k] for k in ("resolved", "unresolved", "paper") if k in drawn]
    slope_1 = Line2D([], [], color="k", ls="--", lw=1, label="slope −1")
    slope_3 = Line2D([], [], color="k", ls=":", lw=1, label="slope −3")
    ax_bias.legend(handles=colours + shown + [slope_1, slope_3], fontsize=7)
    ax_var.legend(handles=colours + [markers["paper"]] * ("paper" in drawn) + [slope_1],
                  fontsize=7)
    for ax, name in ((ax_bias, "bias ‖E ĝ − g*‖"), (ax_var, "variance E‖ĝ − E ĝ‖²")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("group size m")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
