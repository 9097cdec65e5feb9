"""Markdown tables and the frontier plot of ``tailext validate posttrain`` (from its record).

``python -m tailext.validate.posttrain.report RUN_DIR...`` prints the cross-run tables (TEA
minus GRPO per run, and every run's frontier) of several finished runs' ``posttrain.json``.
"""

from __future__ import annotations

from ..records import save_figure, write_text
from ..reporting import header
from .config import REFERENCE_RULE, RULES

__all__ = ["view", "write_markdown", "write_plot", "trl_markdown", "combined_markdown",
           "main"]

#: best-of-n columns of the difference table (the high-n end is the paper's claim)
HEADLINE_NS = ("1", "16", "64", "128", "256")


def _advantage_protocol(training: dict) -> str:
    return ("advantages rescaled to unit RMS per batch" if training.get("normalize_advantages")
            else "raw advantages (paper protocol)")


def _label(results, name):
    return "base (pretrained)" if name == "base" else results["rules"][name]["label"]


def _vs(comparison: dict, reference: str) -> dict:
    return ({f"vs_{reference}": comparison["vs_reference"]}
            if "vs_reference" in comparison else {})


def view(record: dict) -> dict:
    """The record in the layout the report functions read: ``rules`` maps each finished
    rule to its cell merged with its comparisons (``vs_grpo``: against GRPO)."""
    results, config = record["results"], record["configuration"]
    cells, comparisons = results["cells"], results.get("comparisons", {})
    reference = REFERENCE_RULE.lower()
    rules = {label: {**cells[label], **_vs(comparisons.get(label, {}), reference),
                     **{k: v for k, v in comparisons.get(label, {}).items()
                        if k == "mean_reward_vs_base"}}
             for label in config["rules"] if label in cells}
    trl = None
    if "TRL" in cells:
        trl_comparisons = results.get("trl_comparisons", {})
        trl = {**cells["TRL"],
               "summary": {name: {**summary, **_vs(trl_comparisons.get(name, {}), "trl_base")}
                           for name, summary in cells["TRL"]["policies"].items()}}
    base = ({**cells["base"], **_vs(comparisons.get("base", {}), reference)}
            if "base" in cells else None)
    return {"record": record, "config": config, "seed": record["seed"],
            "tailext_version": record["version"], "device": config["device"],
            "ns": results.get("ns", []), "base": base, "rules": rules,
            "advantage_statistics": results.get("advantage_statistics"), "trl": trl}


def _verdicts(results, heads) -> list[str]:
    """TEA (and every other rule) minus GRPO at bo1 and the largest n, in words."""
    lines = []
    for name, e in results["rules"].items():
        if "vs_grpo" not in e:
            continue
        parts = []
        for n in (heads[0], heads[-1]):
            vs = e["vs_grpo"][n]
            if vs["ci_low"] > 0:
                word = f"{e['label']} ahead"
            elif vs["ci_high"] < 0:
                word = "GRPO ahead"
            else:
                word = "no difference resolved (CI contains 0)"
            parts.append(f"bo{n} {vs['diff']:+.3f} [{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}]: "
                         f"{word}")
        last = e["vs_grpo"][heads[-1]]
        lines.append(f"- {e['label']} − GRPO: " + "; ".join(parts)
                     + f"; win/tie/loss over prompts at bo{heads[-1]} "
                       f"{last['win']}/{last['tie']}/{last['loss']}.")
    return lines


def write_markdown(results: dict, path):
    """Verdicts, frontier, difference-vs-GRPO and diagnostics tables → ``path``."""
    ns = [str(n) for n in results["ns"]]
    entries = {"base": results["base"], **results["rules"]} if results["base"] else {}
    cfg = results["config"]
    training = cfg["training"]
    lines = header(
        results["record"], "Post-training validation: toy GRU policy, frozen reward model",
        f"device {cfg['device']}; rules {', '.join(cfg['rules'])}; m = "
        f"{training['group_size']}, {training['steps']} steps × "
        f"{training['prompts_per_step']} prompts, KL coefficient {training['kl_coef']}, "
        f"learning rate {training['learning_rate']}, {_advantage_protocol(training)}; "
        f"{cfg['n_test']} held-out prompts × M = {cfg['eval_samples']} samples.")
    heads = [n for n in HEADLINE_NS if n in ns]
    verdicts = _verdicts(results, heads)
    if verdicts:
        lines += [f"## Verdicts against GRPO (unbiased best-of-n, paired prompt bootstrap "
                  f"95% CI over {cfg['n_test']} held-out prompts)", ""] + verdicts + [""]
    if not entries:
        lines += trl_markdown(results)
        return write_text(path, "\n".join(lines) + "\n")
    lines += [
        "## Unbiased best-of-n (mean over held-out prompts)",
        "",
        "| policy | step | " + " | ".join(f"bo{n}" for n in ns) + " |",
        "|---|---|" + "---|" * len(ns),
    ]
    for name, e in entries.items():
        step = "–" if name == "base" else str(e["best_step"])
        lines.append(f"| {_label(results, name)} | {step} | "
                     + " | ".join(f"{e['unbiased_best_of_n'][n]:.3f}" for n in ns) + " |")
    lines += ["", "## Grouped best-of-n (consecutive groups of the M samples)", "",
              "| policy | " + " | ".join(f"bo{n}" for n in ns) + " |",
              "|---|" + "---|" * len(ns)]
    for name, e in entries.items():
        lines.append(f"| {_label(results, name)} | "
                     + " | ".join(f"{e['grouped_best_of_n'][n]:.3f}" for n in ns) + " |")
    lines += ["", "## Difference to GRPO (unbiased best-of-n; paired prompt bootstrap 95% CI; "
              "win/tie/loss over prompts)", "",
              "| policy | " + " | ".join(f"Δbo{n} [CI]" for n in heads)
              + f" | W/T/L bo{heads[-1]} |",
              "|---|" + "---|" * (len(heads) + 1)]
    for name, e in entries.items():
        if "vs_grpo" not in e:
            continue
        vs = e["vs_grpo"]
        cells = [f"{vs[n]['diff']:+.3f} [{vs[n]['ci_low']:+.3f}, {vs[n]['ci_high']:+.3f}]"
                 for n in heads]
        last = vs[heads[-1]]
        lines.append(f"| {_label(results, name)} | " + " | ".join(cells)
                     + f" | {last['win']}/{last['tie']}/{last['loss']} |")
    lines += ["", "## Diagnostics", "",
              "| policy | mean reward | mean length | KL to base (nats/seq) | val score |",
              "|---|---|---|---|---|"]
    for name, e in entries.items():
        val = "–" if name == "base" else f"{e['best_val_score']:.3f}"
        lines.append(f"| {_label(results, name)} | {e['mean_reward']:.3f} | "
                     f"{e['mean_length']:.2f} | {e['kl_to_base']:.3f} | {val} |")
    stats = results.get("advantage_statistics")
    if stats:
        lines += ["", f"## Advantages on base-policy groups of m = {training['group_size']} "
                  "(held-out samples)", "",
                  "| rule | rms advantage | non-zero share | corr. with GRPO |",
                  "|---|---|---|---|"]
        for rule, st in stats.items():
            corr = "–" if st["corr_with_grpo"] is None else f"{st['corr_with_grpo']:.2f}"
            lines.append(f"| {rule} | {st['rms']:.3f} | {st['nonzero_share']:.2f} | {corr} |")
    lines += trl_markdown(results)
    return write_text(path, "\n".join(lines) + "\n")


def write_plot(results: dict, path):
    """Left: unbiased best-of-n frontier; right: difference to GRPO with its bootstrap CI."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = results["ns"]
    entries = {"base": results["base"], **results["rules"]}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, e in entries.items():
        # one colour per rule in both panels and across runs with different rule sets
        style = dict(linestyle=":", color="grey") if name == "base" else dict(
            color=f"C{list(RULES).index(name)}")
        left.plot(ns, [e["unbiased_best_of_n"][str(n)] for n in ns], marker="o", ms=3,
                  label=_label(results, name), **style)
        if "vs_grpo" in e:
            vs = e["vs_grpo"]
            right.plot(ns, [vs[str(n)]["diff"] for n in ns], marker="o", ms=3,
                       label=_label(results, name), **style)
            right.fill_between(ns, [vs[str(n)]["ci_low"] for n in ns],
                               [vs[str(n)]["ci_high"] for n in ns], alpha=0.15,
                               color=style["color"])
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (best-of-n at deployment)")
        ax.grid(alpha=0.3)
    left.set_ylabel("expected best-of-n reward")
    right.set_ylabel("difference to GRPO (95% paired bootstrap CI)")
    right.axhline(0.0, color="black", lw=0.8)
    left.legend(fontsize=8)
    if right.get_legend_handles_labels()[0]:  # no rule but GRPO has finished yet
        right.legend(fontsize=8)
    training = results["config"]["training"]
    mode = "quick run" if results["record"]["completeness"]["mode"] == "quick" else "full run"
    fig.suptitle(f"toy post-training ({mode}), m = {training['group_size']}, seed "
                 f"{results['seed']}, KL coef {training['kl_coef']}, "
                 f"{_advantage_protocol(training)}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def trl_markdown(results: dict) -> list[str]:
    """Lines of the TRL section: base vs trained tiny Llama, and the per-step TRL log."""
    trl = results.get("trl")
    if not trl:
        return []
    summary = trl["summary"]
    trained = summary[f"trl_{trl['rule']}"]
    if "vs_trl_base" not in trained:
        return []
    ns = [n for n in HEADLINE_NS if n in trained["vs_trl_base"]]
    lines = ["", f"## TRL integration: tiny Llama, `TailextGRPOTrainer(advantage_method="
             f"{trl['method']!r})` ({trl['rule']}), {trl['steps']} steps (trl "
             f"{trl['trl_version']}, transformers {trl['transformers_version']})", "",
             "| policy | mean reward | mean length | KL to base | "
             + " | ".join(f"bo{n}" for n in ns) + " |",
             "|---|---|---|---|" + "---|" * len(ns)]
    for name, e in summary.items():
        lines.append(f"| {name} | {e['mean_reward']:.3f} | {e['mean_length']:.2f} | "
                     f"{e['kl_to_base']:.3f} | "
                     + " | ".join(f"{e['unbiased_best_of_n'][n]:.3f}" for n in ns) + " |")
    vs = trained["vs_trl_base"]
    lines += ["", "Trained minus base (paired bootstrap 95% CI): "
              + "; ".join(f"bo{n} {vs[n]['diff']:+.3f} [{vs[n]['ci_low']:+.3f}, "
                          f"{vs[n]['ci_high']:+.3f}]" for n in ns) + "."]
    if trl["log"]:
        first, last = trl["log"][0], trl["log"][-1]
        lines.append(f"TRL's logged batch reward: step {first.get('step', 1)} "
                     f"{first['reward']:.3f} → step {last.get('step', len(trl['log']))} "
                     f"{last['reward']:.3f}.")
    return lines


#: columns of the cross-run tables
SUMMARY_NS = ("16", "128", "256")


def _ci(entry: dict) -> str:
    return f"{entry['diff']:+.3f} [{entry['ci_low']:+.3f}, {entry['ci_high']:+.3f}]"


def _run_setting(results: dict) -> str:
    training = results["config"]["training"]
    scale = "unit-RMS" if training.get("normalize_advantages") else "raw"
    return f"{results['seed']} | {training['kl_coef']} | {scale}"


def combined_markdown(runs: dict, *, rule: str = "TEA") -> str:
    """Cross-run tables: ``rule`` minus GRPO per run, then every run's frontier.

    ``runs`` maps a run name (its folder) to the :func:`view` of its record.
    """
    label = next(iter(runs.values()))["rules"][rule]["label"]
    heads = SUMMARY_NS
    lines = [f"### {label} − GRPO (unbiased best-of-n, paired prompt bootstrap 95% CI)", "",
             "| run | seed | KL coef | advantages | " + " | ".join(f"Δbo{n}" for n in heads)
             + f" | W/T/L bo{heads[-1]} | KL to base {label} / GRPO | selected step "
             f"{label} / GRPO |",
             "|---|---|---|---|" + "---|" * len(heads) + "---|---|---|"]
    for name, res in runs.items():
        mine, grpo = res["rules"][rule], res["rules"][REFERENCE_RULE]
        vs = mine["vs_grpo"]
        last = vs[heads[-1]]
        lines.append(f"| `{name}` | {_run_setting(res)} | "
                     + " | ".join(_ci(vs[n]) for n in heads)
                     + f" | {last['win']}/{last['tie']}/{last['loss']} | "
                     f"{mine['kl_to_base']:.1f} / {grpo['kl_to_base']:.1f} | "
                     f"{mine['best_step']} / {grpo['best_step']} |")
    lines += ["", "### Frontier of every run (unbiased best-of-n; Δ to GRPO at "
              f"bo{heads[-1]} with its CI)", "",
              "| run | policy | selected step / steps | bo1 | " + " | ".join(
                  f"bo{n}" for n in heads) + f" | KL to base | Δbo{heads[-1]} vs GRPO |",
              "|---|---|---|---|" + "---|" * len(heads) + "---|---|"]
    for name, res in runs.items():
        steps = res["config"]["training"]["steps"]
        for policy, e in {"base": res["base"], **res["rules"]}.items():
            step = "–" if policy == "base" else f"{e['best_step']} / {steps}"
            delta = _ci(e["vs_grpo"][heads[-1]]) if "vs_grpo" in e else "–"
            lines.append(f"| `{name}` | {_label(res, policy)} | {step} | "
                         f"{e['unbiased_best_of_n']['1']:.3f} | "
                         + " | ".join(f"{e['unbiased_best_of_n'][n]:.3f}" for n in heads)
                         + f" | {e['kl_to_base']:.1f} | {delta} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import argparse
    import os

    from ..records import read_record

    parser = argparse.ArgumentParser(description=combined_markdown.__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories holding posttrain.json")
    parser.add_argument("--rule", default="TEA", choices=RULES, help="rule compared with GRPO")
    args = parser.parse_args(argv)
    runs = {}
    for directory in args.runs:
        record = read_record(os.path.join(directory, "posttrain.json"))
        if record is None:
            parser.error(f"{directory} holds no posttrain.json")
        runs[os.path.basename(os.path.normpath(directory))] = view(record)
    print(combined_markdown(runs, rule=args.rule), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
