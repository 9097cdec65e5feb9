"""The exact bandit simulator's prediction for ``tailext validate posttrain-risky``.

``python -m tailext.validate.simulator.posttrain_prediction`` trains the six rules of the
post-training study (``tailext validate posttrain-risky``, :data:`RULES`) on two scenarios
of the simulator (:mod:`tailext.validate.simulator.bandit`) at the study's group size
``m = 16``, with three training seeds, the simulator's KL grid and its paper protocol (one KL
per rule, chosen by the mean validation top-10-of-32 score over seeds), and prints each
rule's exact held-out best-of-n minus GRPO's for ``n ≤ 256`` with the paired prompt bootstrap
CI and win/tie/loss:

- ``risky`` (γ = 0.5, ρ = 0.5): a feature widens the reward noise at a cost in mean reward —
  the mechanism of the study's risky task;
- ``homoscedastic``: no feature changes the spread — the regime of the study's control.

The printout is the prediction recorded in ``docs/results/posttrain/PREDICTION.md``.
"""

from __future__ import annotations

import time
from dataclasses import replace

__all__ = ["RULES", "prediction", "main"]

#: The post-training study's rules (its ``study_config.RULES``; the jobs of
#: tailext.validate do not import each other, so the list is repeated here).
RULES = ("GRPO", "GRPO-Z", "max@k LOO-1", "CAT-BoN", "TEA", "Prefix-TEA")

#: best-of-n sizes printed (the study's evaluation goes up to n = 256)
NS = (1, 16, 64, 128, 256)


def prediction(seed: int = 0) -> dict:
    """``{scenario: {rule: {n: (diff, ci_low, ci_high, wins, ties, losses)}}}`` against GRPO."""
    from .analysis import analyse
    from .cells import make_world, run_cell
    from .config import SCENARIOS, SimulatorConfig

    scenarios = tuple(s for s in SCENARIOS if s.name in ("risky", "homoscedastic"))
    config = SimulatorConfig(seed=seed, scenarios=scenarios, sweep_scenarios=(),
                             rules=RULES, group_sizes=(16,), seeds=(0, 1, 2),
                             frontier=tuple(2 ** i for i in range(9)))
    out = {}
    for scenario in scenarios:
        world = make_world(scenario, config)
        cells, values = [], {}
        for rule in RULES:
            cell = dict(scenario=scenario.name, rule=rule, m=16, n_target=config.n_target)
            summary, per_prompt = run_cell(cell, world, config)
            cells.append(summary)
            values[(scenario.name, rule, 16, config.n_target)] = per_prompt
        table = {}
        for c in analyse(cells, values, config)["comparisons"]:
            if c["protocol"] != "top10of32":
                continue
            table[c["rule"]] = {n: (float(c["difference"][j]), float(c["ci_low"][j]),
                                    float(c["ci_high"][j]), int(c["wins"][j]),
                                    int(c["ties"][j]), int(c["losses"][j]))
                                for j, n in enumerate(config.frontier) if n in NS}
        out[scenario.name] = table
    return out


def main() -> int:
    started = time.process_time()
    result = prediction()
    for scenario, table in result.items():
        print(f"## {scenario} (m = 16, 3 seeds, top-10-of-32 KL selection; rule − GRPO, "
              f"exact best-of-n on 256 held-out prompts, paired bootstrap 95% CI, W/T/L)")
        for rule, row in table.items():
            print(f"- {rule}: " + "; ".join(
                f"bo{n} {d:+.3f} [{lo:+.3f}, {hi:+.3f}] {w}/{t}/{l}"
                for n, (d, lo, hi, w, t, l) in row.items()))
    print(f"CPU {time.process_time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
