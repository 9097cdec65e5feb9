"""Report of ``tailext validate posttrain-risky``: the generated verdict, frontier and
difference tables, KL selection, timing, and the difference-to-GRPO figure (all from the
record)."""

from __future__ import annotations

import numpy as np

from ..records import save_figure, write_text
from ..reporting import header, seconds
from .study_config import REFERENCE_RULE, RULES

__all__ = ["verdict", "write_markdown", "write_plot", "HEADLINE_NS"]

#: best-of-n columns of the difference tables (the high-n end is the paper's claim)
HEADLINE_NS = ("1", "16", "64", "128", "256")
RULE = "TEA"


def _ci(e) -> str:
    return f"{e['diff']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]"


def _word(e, label) -> str:
    if e["ci_low"] > 0:
        return f"{label} ahead"
    if e["ci_high"] < 0:
        return "GRPO ahead"
    return "no difference resolved"


def _top(record):
    return str(record["results"]["ns"][-1])


def _statement(record, task, scale, rule=RULE):
    """``(class, text)`` of ``rule − GRPO`` at the largest n, or None if not finished."""
    group = record["results"].get("comparisons", {}).get(f"{task}/{scale}", {})
    if rule not in group:
        return None
    n = _top(record)
    e = group[rule][n]
    seeds = len(e["per_seed"])
    per_seed = ", ".join(f"{d:+.2f}" for d in e["per_seed"])
    text = (f"{_ci(e)} with {scale} advantages ({_word(e, rule)}; W/T/L "
            f"{e['win']}/{e['tie']}/{e['loss']} over {e['win'] + e['tie'] + e['loss']} "
            f"(seed, prompt) pairs; per seed {per_seed}, {rule} ahead in {e['seeds_ahead']} of "
            f"{seeds})")
    ahead = e["ci_low"] > 0 and e["seeds_ahead"] == seeds
    behind = e["ci_high"] < 0
    return ("ahead" if ahead else "behind" if behind else "unresolved"), text


def _gain(record, task, scale, rule=RULE):
    return record["results"]["comparisons"][f"{task}/{scale}"][rule][_top(record)]["diff"]


def _best_rule(record, task, scale):
    cells = record["results"]["cells"]
    n = _top(record)
    best = None
    for rule in record["configuration"]["rules"]:
        cell = cells.get(f"eval/{task}/{scale}/{rule}")
        if cell is None:
            continue
        value = np.mean([s["unbiased_best_of_n"][n] for s in cell["seeds"].values()])
        if best is None or value > best[1]:
            best = (rule, value)
    return best


def verdict(record) -> str:
    """The generated verdict paragraph: does TEA's high-n gain appear in the risky task, is
    it absent in the control — in words, with the numbers, whatever they are."""
    config = record["configuration"]
    n = _top(record)
    parts = []
    risky = {s: _statement(record, "risky", s) for s in config["scales"]}
    control = {s: _statement(record, "control", s) for s in config["scales"]}
    risky = {s: v for s, v in risky.items() if v}
    control = {s: v for s, v in control.items() if v}
    if not risky and not control:
        return ("No verdict yet: no (task, scale) has both TEA and GRPO evaluated.")
    if risky:
        classes = {c for c, _ in risky.values()}
        # γ = 0: the risky tokens only cost mean reward, nothing widens the spread
        regime = ("with γ = 0 (no spread, the risky tokens only cost ρ: a clean control)"
                  if config["gamma"] == 0 else
                  "(the regime where the simulator predicts a gain)")
        if classes == {"ahead"}:
            head = (f"**Risky task {regime}: TEA's high-n gain appears on the "
                    f"autoregressive policy.**")
        elif "ahead" in classes:
            which = [s for s, (c, _) in risky.items() if c == "ahead"]
            head = (f"**Risky task {regime}: TEA's high-n gain appears only with "
                    f"{' and '.join(which)} advantages.**")
        else:
            head = (f"**Risky task {regime}: TEA's high-n gain does not appear on the "
                    f"autoregressive policy.**")
        best = [f"{s}: {b[0]} {b[1]:.2f}" for s in risky
                if (b := _best_rule(record, "risky", s))]
        parts.append(f"{head} TEA − GRPO at bo{n}: "
                     + "; ".join(t for _, t in risky.values())
                     + f". Highest mean bo{n} among the rules: " + ", ".join(best) + ".")
    if control:
        classes = {c for c, _ in control.values()}
        if "ahead" not in classes:
            head = "**Control task: the gain is absent**"
        else:
            which = ("" if classes == {"ahead"} else " with some advantage scales")
            head = (f"**Control task: the gain is not absent — TEA is ahead here too"
                    f"{which}**, so the control does not isolate the risky mechanism")
            sizes = [(_gain(record, "risky", s), _gain(record, "control", s))
                     for s in control if s in risky]
            sizes = [(r, c) for r, c in sizes if c > 0]
            if sizes:
                head += (", though the lead is smaller there (risky / control ratio at bo"
                         f"{n}: " + ", ".join(f"{r / c:.1f}×" for r, c in sizes) + ")")
        parts.append(f"{head} (TEA − GRPO at bo{n}: "
                     + "; ".join(t for _, t in control.values()) + ").")
    parts.append("Pooled paired bootstrap 95% CIs over (seed, prompt) pairs; they hold the "
                 "trained policies fixed, so the per-seed differences are the guide to "
                 "training noise. \"Ahead\" means the CI excludes 0 and every seed agrees.")
    return " ".join(parts)


def _mean_seeds(cell, field, n=None):
    values = [s[field] if n is None else s[field][n] for s in cell["seeds"].values()]
    return float(np.mean(values))


def _timing(record) -> list[str]:
    """CPU seconds by kind of cell: the runner's per-cell times (main process) plus, for the
    runs trained in worker processes, the workers' own."""
    timing = record["timing"]
    workers = timing.get("workers", {})
    kinds = {}
    for key, spent in timing.get("cells", {}).items():
        cpu = spent["cpu_s"] + workers.get(key, {}).get("cpu_s", 0.0)
        kinds[key.split("/")[0]] = kinds.get(key.split("/")[0], 0.0) + cpu
    total = sum(kinds.values())
    return [f"CPU seconds of the cells (each measured in the process that computed it, "
            f"{len(workers)} of them in worker processes): {total:.0f} s — "
            + ", ".join(f"{k} {v:.0f} s" for k, v in kinds.items())
            + f". Wall time of all invocations: {seconds(timing['wall_s'])}; CPU of the main "
              f"process: {seconds(timing['cpu_s'])}."]


def write_markdown(record: dict, path):
    """Verdict, per (task, scale) frontier and difference tables, KL selection → ``path``."""
    config, results = record["configuration"], record["results"]
    cells = results["cells"]
    training = config["training"]
    lines = header(
        record, "Post-training study: TEA vs GRPO where the reward spread is the policy's",
        f"device {config['device']}; seeds {', '.join(map(str, config['seeds']))}; tasks "
        f"{', '.join(config['tasks'])} (risky: γ = {config['gamma']}, ρ = {config['rho']}, "
        f"{config['n_risky']} risky tokens); advantage scales {', '.join(config['scales'])}; "
        f"rules {', '.join(config['rules'])}; m = {training['group_size']}, "
        f"{training['steps']} steps × {training['prompts_per_step']} prompts, learning rate "
        f"{training['learning_rate']}, KL coefficients {config['kl_coefs']} (one per task, "
        f"scale and rule, chosen by the mean validation top-{training['validation_top']}-of-"
        f"{training['validation_samples']} score over seeds); held-out "
        f"M = {config['eval_samples']} samples per prompt. Design: "
        f"`tailext/validate/posttrain/risky.py` (the risky reward) and `study.py`.")
    lines += ["## Verdict", "", verdict(record), ""]
    ns = [str(n) for n in results.get("ns", [])]
    heads = [n for n in HEADLINE_NS if n in ns]
    for group, comparisons in results.get("comparisons", {}).items():
        task, scale = group.split("/")
        lines += [f"## {task}, {scale} advantages", "",
                  "Unbiased best-of-n, mean over seeds of the held-out prompt means; selected "
                  "KL coefficient; mean reward, risky share c(y) and KL to the base model of "
                  "the selected policies (mean over seeds).", "",
                  "| policy | KL coef | " + " | ".join(f"bo{n}" for n in heads)
                  + " | mean reward | risky share | KL to base |",
                  "|---|---|" + "---|" * len(heads) + "---|---|---|"]
        seeds = [str(s) for s in config["seeds"]]
        base_cells = [cells.get(f"base/seed={s}") for s in seeds]
        if all(base_cells):
            values = [np.mean([b[task]["unbiased_best_of_n"][n] for b in base_cells])
                      for n in heads]
            lines.append("| base (pretrained) | – | " + " | ".join(f"{v:.3f}" for v in values)
                         + f" | {np.mean([b[task]['mean_reward'] for b in base_cells]):.3f} | "
                           f"{np.mean([b[task]['risky_share'] for b in base_cells]):.3f} | 0 |")
        for rule in config["rules"]:
            cell = cells.get(f"eval/{task}/{scale}/{rule}")
            if cell is None:
                continue
            lines.append(f"| {rule} | {cell['selected_kl']} | "
                         + " | ".join(f"{_mean_seeds(cell, 'unbiased_best_of_n', n):.3f}"
                                      for n in heads)
                         + f" | {_mean_seeds(cell, 'mean_reward'):.3f} | "
                           f"{_mean_seeds(cell, 'risky_share'):.3f} | "
                           f"{_mean_seeds(cell, 'kl_to_base'):.1f} |")
        lines += ["", "Difference to GRPO (paired bootstrap 95% CI over (seed, prompt) pairs; "
                  f"W/T/L and per-seed differences at bo{heads[-1]}):", "",
                  "| policy | " + " | ".join(f"Δbo{n}" for n in heads)
                  + f" | W/T/L bo{heads[-1]} | per seed bo{heads[-1]} |",
                  "|---|" + "---|" * (len(heads) + 2)]
        for name, vs in comparisons.items():
            last = vs[heads[-1]]
            label = "base (pretrained)" if name == "base" else name
            lines.append(f"| {label} | " + " | ".join(_ci(vs[n]) for n in heads)
                         + f" | {last['win']}/{last['tie']}/{last['loss']} | "
                         + ", ".join(f"{d:+.3f}" for d in last["per_seed"]) + " |")
        lines.append("")
    lines += ["## KL selection (mean over seeds of the best validation score)", "",
              "| task | scale | rule | " + " | ".join(f"KL {k}" for k in config["kl_coefs"])
              + " | selected | selected steps (per seed) |",
              "|---|---|---|" + "---|" * len(config["kl_coefs"]) + "---|---|"]
    for key, cell in cells.items():
        if not key.startswith("eval/"):
            continue
        _, task, scale, rule = key.split("/")
        steps = ", ".join(str(s["best_step"]) for s in cell["seeds"].values())
        lines.append(f"| {task} | {scale} | {rule} | "
                     + " | ".join(f"{v:.3f}" for v in cell["mean_val_score_by_kl"])
                     + f" | {cell['selected_kl']} | {steps} |")
    lines += ["", "## Timing", ""] + _timing(record)
    return write_text(path, "\n".join(lines) + "\n")


def write_plot(record: dict, path):
    """One panel per (task, scale): every rule minus GRPO with its pooled bootstrap CI."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = record["results"]
    ns = results["ns"]
    groups = list(results["comparisons"].items())
    fig, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), 4.0), squeeze=False)
    for ax, (group, comparisons) in zip(axes[0], groups):
        for name, vs in comparisons.items():
            style = (dict(linestyle=":", color="grey") if name == "base"
                     else dict(color=f"C{list(RULES).index(name)}"))
            ax.plot(ns, [vs[str(n)]["diff"] for n in ns], marker="o", ms=3,
                    label="base" if name == "base" else name, **style)
            ax.fill_between(ns, [vs[str(n)]["ci_low"] for n in ns],
                            [vs[str(n)]["ci_high"] for n in ns], alpha=0.15,
                            color=style["color"])
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (best-of-n at deployment)")
        ax.set_title(group.replace("/", ", ") + " advantages", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"difference to {REFERENCE_RULE} (95% paired bootstrap CI)")
    axes[0][0].legend(fontsize=7)
    mode = "quick run" if record["completeness"]["mode"] == "quick" else "full run"
    fig.suptitle(f"toy post-training study ({mode}), m = "
                 f"{record['configuration']['training']['group_size']}, seeds "
                 f"{record['configuration']['seeds']}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
