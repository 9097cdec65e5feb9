"""Figures of the Monte Carlo checks: bias/variance against m, and the MSE comparison map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_bias_variance"]


def plot_bias_variance(record: dict, path: Path, paper: dict | None = None) -> None:
    """Bias and variance against m (log-log) with reference slopes −1 and −3.

    Resolved biases are points with ±1 SE bars; unresolved ones are hollow triangles at their
    upper bound ``bias + 2 SE``. ``paper`` (estimator → m → (bias, variance)) adds crosses.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_bias, ax_var) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(dict.fromkeys(r["estimator"] for r in record["rows"]))
    for index, name in enumerate(names):
        color = f"C{index}"
        rows = [r for r in record["rows"] if r["estimator"] == name]
        m = np.array([r["m"] for r in rows])
        resolved = np.array([r["resolved"] for r in rows])
        bias = np.array([r["bias_estimate"] for r in rows])
        se = np.array([r["bias_se"] for r in rows])
        upper = np.array([r["bias_upper"] for r in rows])
        label = rows[0]["label"]
        ax_bias.errorbar(m[resolved], bias[resolved], yerr=se[resolved], color=color,
                         marker="o", capsize=3, label=label)
        if (~resolved).any():
            ax_bias.scatter(m[~resolved], upper[~resolved], marker="v", facecolors="none",
                            edgecolors=color, label=f"{label}: not resolved (< bias + 2SE)")
        var = np.array([r["variance"] for r in rows])
        ax_var.plot(m, var, marker="o", color=color, label=label)
        if paper and name in paper:
            ax_bias.scatter(m, [paper[name][int(v)][0] for v in m], marker="x", color=color,
                            alpha=0.5)
            ax_var.scatter(m, [paper[name][int(v)][1] for v in m], marker="x", color=color,
                           alpha=0.5)
    first = [r for r in record["rows"] if r["estimator"] == names[0]]
    m0 = first[0]["m"]
    grid = np.array([m0, first[-1]["m"]], dtype=float)
    b0 = first[0]["bias_estimate"]
    ax_bias.plot(grid, b0 * (grid / m0) ** -1.0, "k--", lw=1, label="slope −1")
    ax_bias.plot(grid, b0 * (grid / m0) ** -3.0, "k:", lw=1, label="slope −3")
    v0 = max(r["variance"] for r in record["rows"] if r["m"] == m0)
    ax_var.plot(grid, v0 * (grid / m0) ** -1.0, "k--", lw=1, label="slope −1")
    suffix = "  (x: paper Table 15)" if paper else ""
    for ax, title in ((ax_bias, "bias ‖E ĝ − g*‖"), (ax_var, "variance E‖ĝ − E ĝ‖²")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("group size m")
        ax.set_title(title + suffix)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
