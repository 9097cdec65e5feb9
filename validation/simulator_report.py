"""Markdown report and frontier plots of a simulator run."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from .simulator import BASELINE

HIGHLIGHT_N = (1, 32, 128, 512)


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
        env = record["environment"][scenario.name]
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
                BASELINE, "tea", "prefix_tea"):
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


def write_report(record, config, out: Path) -> None:
    """``simulator.md`` and ``frontier_<scenario>.png`` in ``out``."""
    lines = ["# Exact bandit simulator: best-of-n frontier of every rule", "",
             f"tailext {record['version']}, seed {record['seed']}, quick={record['quick']}; "
             f"wall {record['wall_seconds']:.0f} s, CPU {record['cpu_seconds']:.0f} s on "
             f"{platform.machine()} (2 cores shared with ~7 other jobs: wall times are "
             f"inflated); numpy {np.__version__}.", "",
             "Design: see `validation/bandit.py` (generative model) and "
             "`validation/bandit_training.py` (training). Training: "
             f"{config.train.steps} Adam steps (lr {config.train.learning_rate}), "
             f"{config.train.batch_prompts} prompts per step, KL coefficients "
             f"{list(config.train.kl_coefs)}, seeds {list(config.seeds)}; {config.n_train} "
             f"train / {config.n_validation} validation / {config.n_test} test prompts. "
             f"Rules use n_target={config.n_target} unless stated.", ""]
    if record["missing_rules"]:
        lines += [f"Rules not registered in this build (skipped): "
                  f"{', '.join(record['missing_rules'])}.", ""]
    lines += ["## Checks", "", "| check | passed | detail |", "|---|---|---|"]
    for name, check in record["checks"].items():
        detail = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in check.items() if k in ("max_abs_z", "relative_error",
                                                              "cosine", "limit"))
        lines.append(f"| {name} | {check['passed']} | {detail} |")
    lines += ["", "## Held-out exact best-of-n frontier", ""]
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
    lines += ["## Oracle alignment (analogue of the paper's Table 13)", ""]
    _alignment_tables(record, lines)
    (out / "simulator.md").write_text("\n".join(lines) + "\n")
    _plot(record, config, out)


def _plot(record, config, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = np.array(config.frontier)
    for scenario in config.scenarios:
        fig, axes = plt.subplots(1, len(config.group_sizes), figsize=(
            4.5 * len(config.group_sizes), 3.8), squeeze=False, sharey=True)
        for ax, m in zip(axes[0], config.group_sizes):
            for comp in record["comparisons"]:
                if comp["scenario"] == scenario.name and comp["m"] == m \
                        and comp["n_target"] == config.n_target \
                        and comp["protocol"] == "top10of32":
                    diff = np.asarray(comp["difference"])
                    err = [diff - np.asarray(comp["ci_low"]), np.asarray(comp["ci_high"]) - diff]
                    style = "-" if comp["rule"] in ("tea", "prefix_tea") else ":"
                    ax.errorbar(ns, diff, yerr=err, label=comp["rule"], ls=style, capsize=2,
                                lw=2 if style == "-" else 1)
            ax.axhline(0.0, color="k", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{scenario.name}, m={m}")
            ax.set_xlabel("n (best-of-n)")
        axes[0, 0].set_ylabel("V_n(rule) − V_n(GRPO), 95% CI")
        axes[0, -1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"frontier_{scenario.name}.png", dpi=110)
        plt.close(fig)
