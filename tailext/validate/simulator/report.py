"""Markdown report and plots of a simulator run, from its record.

The report functions read a *view* of the record (:func:`view`): the training cells'
summaries, the scenario facts, self-checks, alignment tables and the derived comparisons.
A partial record (an interrupted run) gives the same report over the cells that finished.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..records import save_figure, write_text
from ..reporting import header
from .config import BASELINE

__all__ = ["view", "write_report"]

TEA, PREFIX_TEA = "TEA", "Prefix-TEA"

HIGHLIGHT_N = (1, 32, 128, 512)

#: The paper's claim compared in the headline (its Figure 1(b) and Table 4).
PAPER_CLAIM = ("TEA improves on matched GRPO in every cell m ∈ {16, 32, 64} at bo128, bo256 "
               "and bo512, with paired-bootstrap 95% CIs above zero (paper, Figure 1(b) and "
               "Table 4; real LLM post-training, KL and checkpoint chosen on validation "
               "top-10-of-32)")


def _fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(comp, j):
    return (f"{comp['difference'][j]:+.3f} [{comp['ci_low'][j]:+.3f}, "
            f"{comp['ci_high'][j]:+.3f}]")


def _seed_se(comp, j):
    return "–" if comp["seed_se"] is None else f"{comp['seed_se'][j]:.3f}"


def _columns(config):
    return [config.frontier.index(n) for n in HIGHLIGHT_N if n in config.frontier]


def _frontier_tables(record, config, lines):
    ns = list(config.frontier)
    for scenario in config.scenarios:
        env = record["scenarios"].get(scenario.name)
        if env is None:
            continue
        lines += [f"### Scenario `{scenario.name}` "
                  f"(γ={scenario.gamma}, ρ={scenario.rho}, σ_ε={scenario.noise_sd}, "
                  f"K={scenario.n_candidates}, d={scenario.n_features})", "",
                  f"Initial policy: QQ linearity of the upper 25% (R² over test prompts) "
                  f"median {env['qq_median']:.3f}, mean {env['qq_mean']:.3f}, 10th pct "
                  f"{env['qq_p10']:.3f}, share ≥ 0.9 {env['qq_share_linear']:.2f}.", ""]
        cols = _columns(config)[1:]
        lines += ["Tail-extrapolated prediction `μ̂_t + κ_N ŝ` (β=¼) of the initial policy's "
                  "exact V_N from m sampled rewards per prompt: mean error (RMSE)", "",
                  "| m | " + " | ".join(f"N={config.frontier[j]}" for j in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for m, pred in env["tail_prediction"].items():
            idx = [list(pred["n"]).index(config.frontier[j]) for j in cols]
            lines.append(f"| {m} | " + " | ".join(
                f"{pred['mean_error'][i]:+.3f} ({pred['rmse'][i]:.3f})" for i in idx) + " |")
        lines.append("")
        for m in config.group_sizes:
            cells = [c for c in record["cells"] if c["scenario"] == scenario.name
                     and c["m"] == m and c["n_target"] == config.n_target]
            lines += [f"**m = {m}** — exact held-out best-of-n (mean over test prompts and "
                      f"seeds; KL and checkpoint selected on validation)", "",
                      "| rule | KL | " + " | ".join(f"n={n}" for n in ns) + " |",
                      "|---|---|" + "---|" * len(ns),
                      "| initial policy | – | " + " | ".join(
                          _fmt(v) for v in env["initial_frontier"]) + " |"]
            for c in cells:
                if "error" in c:
                    lines.append(f"| {c['rule']} | – | cannot run: {c['error'][:80]} |")
                else:
                    lines.append(f"| {c['rule']} | {c['selected_kl']} | " + " | ".join(
                        _fmt(v) for v in c["frontier"]) + " |")
            lines.append("")


def _comparison_table(record, config, lines, scenarios, n_target, title,
                      protocol="top10of32"):
    cols = _columns(config)
    lines += [title, "",
              "| scenario | m | rule | " + " | ".join(
                  f"Δ n={config.frontier[j]} [95% CI]" for j in cols)
              + f" | seed SE (n={config.frontier[cols[-1]]}) | W/T/L (n={config.frontier[cols[-1]]}) |",
              "|---|---|---|" + "---|" * len(cols) + "---|---|"]
    for comp in record["comparisons"]:
        if comp["scenario"] in scenarios and comp["n_target"] == n_target \
                and comp["protocol"] == protocol:
            j = cols[-1]
            lines.append(f"| {comp['scenario']} | {comp['m']} | {comp['rule']} | "
                         + " | ".join(_ci(comp, c) for c in cols)
                         + f" | {_seed_se(comp, j)} | {comp['wins'][j]}/{comp['ties'][j]}/"
                         f"{comp['losses'][j]} |")
    lines.append("")


def _verdict(comp, j, tol):
    """Claim holds / is reversed (CI excludes 0 and ``|Δ| ≥ tol``), is negligible (CI excludes
    0, ``|Δ| < tol``, the win/tie/loss tie tolerance) or vanishes (CI contains 0)."""
    diff, low, high = comp["difference"][j], comp["ci_low"][j], comp["ci_high"][j]
    if low <= 0 <= high:
        return "vanishes: CI contains 0"
    if abs(diff) < tol:
        return f"negligible: CI excludes 0, Δ within ±{tol}"
    return "holds: TEA > GRPO" if diff > 0 else "reversed: GRPO > TEA"


def _crossover(comp):
    """Smallest n from which every larger n has a CI above zero ("none" if n_max does not)."""
    above = np.asarray(comp["ci_low"]) > 0
    if not above[-1]:
        return "none"
    first = len(above) - int(np.argmin(above[::-1])) if not above.all() else 0
    return str(comp["n"][first])


def _edge_mark(edge):
    return {"lower": " (lower edge)", "upper": " (upper edge)", None: ""}[edge]


def _headline(record, config, lines):
    """TEA − GRPO at the largest n, every scenario and m, both protocols, with selected KLs."""
    selection = {(s["scenario"], s["rule"], s["m"], s["n_target"]): s
                 for s in record["kl_selection"]}
    n_max, j = config.frontier[-1], len(config.frontier) - 1
    lines += ["## Headline: does TEA beat GRPO at high n here?", "",
              f"**Paper's claim.** {PAPER_CLAIM}.", "",
              f"**Here** (exact held-out values, 95% CI from the paired prompt bootstrap; "
              f"seed SE = training-seed noise the bootstrap does not see). Protocol "
              f"`top10of32`: one KL per (rule, m) chosen on validation top-10-of-32, as in "
              f"the paper; `kl_per_n`: each rule's KL chosen for each n by its exact "
              f"validation V_n. KL grid {list(config.train.kl_coefs)}; a selection at its "
              f"smallest or largest value is marked as an edge. 'From n' is the smallest n "
              f"from which every larger n has a CI above zero. 'Initial' is the untrained "
              f"policy, the limit of a KL coefficient → ∞. 'Δ, test-best KL' picks each "
              f"rule's KL by its held-out V_{n_max} itself (an optimistic bound on tuning, "
              f"no CI; the same for both protocols).", "",
              f"| scenario | m | protocol | initial V_{n_max} | GRPO V_{n_max} | "
              f"TEA − GRPO at n={n_max} [95% CI] | seed SE | W/T/L | verdict | from n | "
              f"KL TEA | KL GRPO | Δ, test-best KL |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts, weak = [], []
    for comp in record["comparisons"]:
        if comp["rule"] != TEA or comp["n_target"] != config.n_target:
            continue
        key = (comp["scenario"], TEA, comp["m"], comp["n_target"])
        base = (comp["scenario"], BASELINE, comp["m"], config.n_target)
        kls = []
        for k in (key, base):
            sel = selection[k]
            if comp["protocol"] == "top10of32":
                kls.append(f"{sel['top10of32']}{_edge_mark(sel['top10of32_edge'])}")
            else:
                kls.append(f"{sel['kl_per_n'][j]}{_edge_mark(sel['kl_per_n_edge'][j])}")
        tea_cell, grpo_cell = (next(c for c in record["cells"] if (
            c["scenario"], c["rule"], c["m"], c["n_target"]) == k) for k in (key, base))
        test_best = [np.asarray(c["frontier_by_kl"])[:, :, j].mean(axis=0).max()
                     for c in (tea_cell, grpo_cell)]
        value = (grpo_cell["frontier"] if comp["protocol"] == "top10of32"
                 else grpo_cell["frontier_kl_per_n"])[j]
        verdict = _verdict(comp, j, config.tie_tolerance)
        verdicts.append(verdict.split(":")[0])
        if not verdict.startswith("holds"):
            weak.append(f"{comp['scenario']} m={comp['m']} `{comp['protocol']}` "
                        f"({comp['difference'][j]:+.3f}, {verdict.split(':')[0]})")
        facts = record["scenarios"].get(comp["scenario"])
        initial = facts["initial_frontier"][j] if facts else float("nan")
        lines.append(f"| {comp['scenario']} | {comp['m']} | {comp['protocol']} | "
                     f"{initial:.3f} | {value:.3f} | {_ci(comp, j)} | {_seed_se(comp, j)} | "
                     f"{comp['wins'][j]}/{comp['ties'][j]}/{comp['losses'][j]} | {verdict} | "
                     f"{_crossover(comp)} | {kls[0]} | {kls[1]} | "
                     f"{test_best[0] - test_best[1]:+.3f} |")
    counts = {v: verdicts.count(v) for v in ("holds", "negligible", "vanishes", "reversed")}
    lines += ["", f"Of {len(verdicts)} (scenario, m, protocol) rows the claim holds in "
              f"{counts['holds']}, is negligible in {counts['negligible']}, vanishes in "
              f"{counts['vanishes']} and is reversed in {counts['reversed']}"
              + (f"; it does not hold in: {'; '.join(weak)}" if weak else "") + ". "
              + _small_n_summary(record, config), ""]
    _edge_summary(record, config, lines)


def _small_n_summary(record, config) -> str:
    """At n = 1 (the mean reward): in how many TEA rows GRPO is ahead beyond the CI."""
    rows = [c for c in record["comparisons"] if c["rule"] == TEA
            and c["n_target"] == config.n_target and c["n"][0] == 1]
    if not rows:
        return ""
    behind = [c for c in rows if c["ci_high"][0] < 0]
    ahead = [c for c in rows if c["ci_low"][0] > 0]
    gaps = [c["difference"][0] for c in behind]
    text = (f"At n = 1 (mean reward) GRPO is ahead of TEA beyond the CI in {len(behind)} of "
            f"{len(rows)} rows")
    if gaps:
        text += f" (by {-max(gaps):.3f} to {-min(gaps):.3f})"
    return text + f" and behind it in {len(ahead)}."


def _edge_summary(record, config, lines):
    """Every selection at an edge of the KL grid, for every rule (nothing hidden)."""
    grid = list(config.train.kl_coefs)
    lines += ["### KL selections at an edge of the grid", "",
              f"Grid {grid}. A lower edge at 0 is the end of the range (no penalty; only "
              f"checkpoint selection regularizes): the optimum cannot lie below it. At an "
              f"upper edge ({grid[-1]}) a stronger KL might do better still; its limit, "
              f"KL → ∞, is the initial policy, whose V_n the headline table gives.", ""]
    upper = sorted({f"{s['scenario']}/{s['rule']}/m={s['m']}" for s in record["kl_selection"]
                    if "upper" in [s["top10of32_edge"]] + s["kl_per_n_edge"]})
    lines += [f"Upper-edge selections (any protocol, any n): "
              f"{', '.join(upper) if upper else 'none'}. Lower-edge (KL = 0) selections are "
              f"listed with them below.", ""]
    rows = []
    for sel in record["kl_selection"]:
        where = f"{sel['scenario']}, {sel['rule']}, m={sel['m']}, N={sel['n_target']}"
        if sel["top10of32_edge"]:
            rows.append(f"- {where}: `top10of32` selects {sel['top10of32']} "
                        f"({sel['top10of32_edge']} edge)")
        edge_ns = [(n, k, e) for n, k, e in zip(config.frontier, sel["kl_per_n"],
                                                sel["kl_per_n_edge"]) if e]
        if edge_ns:
            rows.append(f"- {where}: `kl_per_n` at an edge for n = " + ", ".join(
                f"{n} ({k}, {e})" for n, k, e in edge_ns))
    lines += (rows or ["None: every selected KL is interior to the grid."]) + [""]


def _ablation_table(record, config, lines):
    if not config.ablation_targets:
        return
    cols = _columns(config)
    lines += ["## n_target ablation", "",
              "| scenario | m | rule | N | KL | " + " | ".join(
                  f"n={config.frontier[j]}" for j in cols) + " |",
              "|---|---|---|---|---|" + "---|" * len(cols)]
    targets = (config.n_target,) + tuple(config.ablation_targets)
    for c in record["cells"]:
        if c["rule"] in config.ablation_rules and c["n_target"] in targets \
                and c["m"] in config.ablation_group_sizes \
                and c["scenario"] in [s.name for s in config.scenarios] and "error" not in c:
            lines.append(f"| {c['scenario']} | {c['m']} | {c['rule']} | {c['n_target']} | "
                         f"{c['selected_kl']} | "
                         + " | ".join(_fmt(c["frontier"][j]) for j in cols) + " |")
    lines.append("")


def _kl_table(record, config, lines):
    cols = _columns(config)
    lines += ["## Per-KL frontier (no KL selection; checkpoint still selected on validation)",
              "", "| scenario | m | rule | KL | |θ| | θ_mean | θ_risky | exp(entropy) | "
              + " | ".join(f"n={config.frontier[j]}" for j in cols) + " |",
              "|---|---|---|---|---|---|---|---|" + "---|" * len(cols)]
    for c in record["cells"]:
        if "error" in c or c["n_target"] != config.n_target or c["rule"] not in (
                BASELINE, TEA, PREFIX_TEA):
            continue
        for li, kl in enumerate(c["kl_coefs"]):
            by_kl = np.asarray(c["frontier_by_kl"])[:, li].mean(axis=0)
            lines.append(
                f"| {c['scenario']} | {c['m']} | {c['rule']} | {kl} | "
                f"{np.mean(np.asarray(c['theta_norm'])[:, li]):.2f} | "
                f"{np.mean(np.asarray(c['theta_mean_feature'])[:, li]):+.2f} | "
                f"{np.mean(np.asarray(c['theta_risky_feature'])[:, li]):+.2f} | "
                f"{np.mean(np.asarray(c['effective_candidates'])[:, li]):.0f} | "
                + " | ".join(_fmt(by_kl[j]) for j in cols) + " |")
    lines.append("")


def _alignment_tables(record, lines):
    for name, table in record["alignment"].items():
        ms = list(next(iter(table["cosine"].values())).keys())
        lines += [f"### Oracle alignment, scenario `{name}` (policy: {table['policy']}; "
                  f"N={table['n_target']}, {table['prompts']} prompts per update, "
                  f"{table['repeats']} repeats; mean cosine ± SE)", "",
                  "| rule | " + " | ".join(f"m={m}" for m in ms) + " |",
                  "|---|" + "---|" * len(ms)]
        for rule, row in table["cosine"].items():
            lines.append(f"| {rule} | " + " | ".join(
                "n/a" if v is None else f"{v['mean']:.3f} ± {v['se']:.3f}"
                for v in row.values()) + " |")
        if table["errors"]:
            lines.append("")
            lines.append("Not runnable: " + "; ".join(
                f"{k}: {v[:90]}" for k, v in sorted(table["errors"].items())))
        lines.append("")


def view(record: dict) -> dict:
    """The record's results in the layout the report functions read."""
    results = record["results"]
    cells = results["cells"]

    def picked(prefix):
        return {key[len(prefix):]: value for key, value in cells.items()
                if key.startswith(prefix)}

    return {"record": record, "cells": list(picked("train/").values()),
            "scenarios": picked("scenario/"), "alignment": picked("alignment/"),
            "checks": cells.get("self-checks", {}),
            "comparisons": results.get("comparisons", []),
            "kl_selection": results.get("kl_selection", []),
            "missing_rules": results.get("missing_rules", []),
            "missing_values": results.get("missing_values", [])}


def _configuration_text(config) -> str:
    train = config.train
    scenarios = ", ".join(s.name for s in config.scenarios + config.sweep_scenarios)
    return (f"scenarios {scenarios}; rules {', '.join(config.rules)}; m ∈ "
            f"{list(config.group_sizes)}; {train.steps} Adam steps (learning rate "
            f"{train.learning_rate}), {train.prompts_per_step} prompts per step, KL "
            f"coefficients {list(train.kl_coefs)}, training seeds {list(config.seeds)}; "
            f"{config.n_train} train / {config.n_validation} validation / {config.n_test} "
            f"test prompts; rules use n_target = {config.n_target} unless stated. Design: "
            f"`tailext/validate/simulator/bandit.py` (the generative model) and "
            f"`training.py` (training).")


def write_report(record, config, out: Path) -> list[Path]:
    """``simulator.md``, ``frontier_<scenario>.png`` and ``kl_curves.png`` in ``out``."""
    record = view(record)
    lines = header(record["record"], "Exact bandit simulator: best-of-n frontier of every rule",
                   _configuration_text(config))
    if record["missing_rules"]:
        lines += [f"Rules not registered in this build (skipped): "
                  f"{', '.join(record['missing_rules'])}.", ""]
    if record["missing_values"]:
        lines += [f"Per-prompt values missing for {len(record['missing_values'])} finished "
                  f"cell(s) (their comparisons are left out): "
                  f"{', '.join(record['missing_values'][:5])}.", ""]
    if record["comparisons"]:
        _headline(record, config, lines)
    if record["checks"]:
        lines += ["## Checks", "", "| check | passed | detail |", "|---|---|---|"]
        for name, check in record["checks"].items():
            detail = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in check.items() if k in ("max_abs_z", "relative_error",
                                                                  "cosine", "limit"))
            lines.append(f"| {name} | {'yes' if check['passed'] else 'NO'} | {detail} |")
        lines.append("")
    lines += ["## Held-out exact best-of-n frontier", ""]
    _frontier_tables(record, config, lines)
    main = [s.name for s in config.scenarios]
    _comparison_table(record, config, lines, main, config.n_target,
                      "## Difference to GRPO (paired prompt bootstrap over test prompts, "
                      "seed-averaged; tie tolerance "
                      f"{config.tie_tolerance})")
    if config.sweep_scenarios:
        _comparison_table(record, config, lines, [s.name for s in config.sweep_scenarios],
                          config.n_target, "## Scenario sweep: where TEA vs GRPO differs "
                          f"(m={config.sweep_group_size})")
        lines += ["| scenario | γ | ρ | σ_ε |", "|---|---|---|---|"] + [
            f"| {s.name} | {s.gamma} | {s.rho} | {s.noise_sd} |"
            for s in config.sweep_scenarios] + [""]
    _comparison_table(record, config, lines,
                      main + [s.name for s in config.sweep_scenarios], config.n_target,
                      "## Difference to GRPO with the KL tuned for each budget n (each rule's "
                      "KL chosen by its exact validation V_n; same bootstrap)",
                      protocol="kl_per_n")
    _ablation_table(record, config, lines)
    for target in config.ablation_targets:
        _comparison_table(record, config, lines, main, target,
                          f"### Ablation N={target} vs GRPO")
    _kl_table(record, config, lines)
    if record["alignment"]:
        lines += ["## Oracle alignment (analogue of the paper's Table 13)", ""]
        _alignment_tables(record, lines)
    written = [write_text(out / "simulator.md", "\n".join(lines) + "\n")]
    return written + _plot(record, config, out)


def _plot(record, config, out: Path) -> list[Path]:
    """One frontier figure per main scenario (each rule minus GRPO against n, one panel per
    m) and the KL curves; a figure is skipped while it would be empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ns = np.array(config.frontier)
    for scenario in config.scenarios:
        comps = [c for c in record["comparisons"] if c["scenario"] == scenario.name
                 and c["n_target"] == config.n_target and c["protocol"] == "top10of32"]
        if not comps:
            continue
        fig, axes = plt.subplots(1, len(config.group_sizes), figsize=(
            4.5 * len(config.group_sizes), 4.4), squeeze=False, sharey=True)
        rules = list(dict.fromkeys(c["rule"] for c in comps))
        for ax, m in zip(axes[0], config.group_sizes):
            for comp in (c for c in comps if c["m"] == m):
                diff = np.asarray(comp["difference"])
                err = [diff - np.asarray(comp["ci_low"]), np.asarray(comp["ci_high"]) - diff]
                ours = comp["rule"] in (TEA, PREFIX_TEA)
                ax.errorbar(ns, diff, yerr=err, label=comp["rule"], ls="-" if ours else ":",
                            capsize=2, lw=2 if ours else 1,
                            color=f"C{rules.index(comp['rule']) % 10}")
            ax.axhline(0.0, color="k", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{scenario.name}, m={m}")
            ax.set_xlabel("n (best-of-n at deployment)")
        axes[0, 0].set_ylabel("V_n(rule) − V_n(GRPO), 95% CI")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        written.append(save_figure(fig, out / f"frontier_{scenario.name}.png"))
    return written + _plot_kl_curves(record, config, out, plt)


def _plot_kl_curves(record, config, out: Path, plt) -> list[Path]:
    """``kl_curves.png``: held-out V_1 and V_{n_max} against the KL coefficient for GRPO and
    TEA at m = ``sweep_group_size`` in every scenario (is the optimum inside the grid?).

    Colour names the rule, line style the budget; one legend for every panel."""
    from matplotlib.lines import Line2D

    m = config.sweep_group_size
    scenarios = [s.name for s in list(config.scenarios) + list(config.sweep_scenarios)
                 if any(c["scenario"] == s.name and c["m"] == m and "error" not in c
                        for c in record["cells"])]
    if not scenarios:
        return []
    n_max = config.frontier[-1]
    colours = {BASELINE: "C0", TEA: "C3"}
    cols = min(4, len(scenarios))
    rows = -(-len(scenarios) // cols)
    ncol = {1: 2, 2: 3}.get(cols, 5)  # legend columns that fit the figure's width
    legend_height = 0.3 * -(-5 // ncol) + 0.3  # inches below the panels
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 3.3 * rows + legend_height),
                             squeeze=False)
    for ax in axes.ravel()[len(scenarios):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), scenarios):
        for cell in record["cells"]:
            if cell["scenario"] != name or cell["m"] != m or "error" in cell \
                    or cell["rule"] not in colours or cell["n_target"] != config.n_target:
                continue
            by_kl = np.asarray(cell["frontier_by_kl"]).mean(axis=0)  # [L, C]
            for j, style in ((len(config.frontier) - 1, "-"), (0, "--")):
                ax.plot(cell["kl_coefs"], by_kl[:, j], style, marker="o", ms=3,
                        color=colours[cell["rule"]])
        facts = record["scenarios"].get(name)
        if facts:
            ax.axhline(facts["initial_frontier"][-1], color="gray", lw=0.8, ls=":")
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlim(left=-0.002)  # 0 (no penalty) is a grid point; nothing lies below it
        ax.set_title(f"{name}, m={m}", fontsize=9)
        ax.set_xlabel("KL coefficient")
        ax.set_ylabel("held-out exact V_n")
    handles = [Line2D([], [], color=colours[BASELINE], lw=2, label=BASELINE),
               Line2D([], [], color=colours[TEA], lw=2, label=TEA),
               Line2D([], [], color="k", ls="-", marker="o", ms=3, label=f"V_{n_max}"),
               Line2D([], [], color="k", ls="--", marker="o", ms=3, label="V_1 (mean reward)"),
               Line2D([], [], color="gray", ls=":", label=f"initial policy V_{n_max}")]
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, legend_height / (3.3 * rows + legend_height), 1, 1))
    return [save_figure(fig, out / "kl_curves.png")]
