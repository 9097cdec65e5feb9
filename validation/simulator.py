"""``tailext validate simulator``: every rule on the exact contextual bandit (issue 5).

Trains every registered rule of :data:`RULES` (GRPO, GRPO-Z, the test-time-aware baselines,
TEA, Prefix-TEA) at ``m ∈ {16, 32, 64}`` with several seeds and a swept KL coefficient
(``TrainConfig.kl_coefs``: 0 and half-decade steps 0.01 … 10; selections at an edge of
that grid are listed in the report) on
two main scenarios of :mod:`validation.bandit` (homoscedastic: the issue's prototype; risky:
a feature that widens the reward noise at a cost in mean). Per run the checkpoint is chosen
on validation prompts (exact top-10-of-32 mean); the KL coefficient per (rule, m) either by
the same metric (the paper's protocol) or, per deployment budget ``n``, by the exact
validation ``V_n``. The exact best-of-n frontier ``n = 1, 2, 4, …, 512`` on held-out prompts
is compared with GRPO by a paired prompt bootstrap and win/tie/loss under both protocols. Also: the ``n_target`` ablation, a scenario
sweep (TEA vs GRPO where the effect is large and where it vanishes) and the
oracle-alignment table (cosine of each rule's update with the exact best-of-128 gradient).
Writes ``simulator.json``, ``simulator.md``, ``frontier_<scenario>.png`` and ``kl_curves.png``
to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .bandit import Scenario, make_prompts
from .bandit_training import TrainConfig
from .results_io import write_json
from .rule_names import method_of

#: Rules compared, in report order; those not registered are listed as missing.
RULES = ("grpo", "grpo_z", "rloo", "bon_max_mean", "bon_max_second", "bon_mean",
         "maxk_loo1", "chow_bon_rl", "cat_bon", "tea", "prefix_tea")
BASELINE = "grpo"

MAIN_SCENARIOS = (
    Scenario("homoscedastic"),                      # the prototype (K=1024, σ_ε=1)
    Scenario("risky", gamma=0.5, rho=0.5),
)
#: Extra scenarios for the TEA-vs-GRPO sweep (at one m): heteroscedasticity, its mean cost
#: and the noise level.
SWEEP_SCENARIOS = (
    Scenario("risky_g0.25", gamma=0.25, rho=0.5),
    Scenario("risky_g0.75", gamma=0.75, rho=0.5),
    Scenario("risky_free", gamma=0.5, rho=0.0),
    Scenario("homoscedastic_sd0.5", noise_sd=0.5),
    Scenario("homoscedastic_sd2", noise_sd=2.0),
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything a simulator run depends on (recorded in the JSON)."""

    seed: int = 0
    scenarios: tuple = MAIN_SCENARIOS
    sweep_scenarios: tuple = SWEEP_SCENARIOS
    sweep_rules: tuple = ("grpo", "tea")
    sweep_group_size: int = 32
    rules: tuple = RULES
    group_sizes: tuple = (16, 32, 64)
    seeds: tuple = (0, 1, 2)
    n_train: int = 512
    n_validation: int = 64
    n_test: int = 256
    frontier: tuple = tuple(2 ** i for i in range(10))
    n_target: int = 128
    ablation_targets: tuple = (256, 512)
    ablation_rules: tuple = ("tea", "prefix_tea")
    ablation_group_sizes: tuple = (32,)
    alignment_group_sizes: tuple = (8, 16, 32, 64, 128, 256)
    alignment_target: int = 128
    alignment_prompts: int = 32
    alignment_repeats: int = 20
    bootstrap_resamples: int = 1000
    tie_tolerance: float = 0.01
    mc_draws: int = 4000
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self):
        out = asdict(self)
        out["scenarios"] = [s.as_dict() for s in self.scenarios]
        out["sweep_scenarios"] = [s.as_dict() for s in self.sweep_scenarios]
        return out


def quick_config(seed=0) -> SimulatorConfig:
    """A CI-sized run (well under 90 s on 2 shared cores): one scenario, m = 16, one seed."""
    return SimulatorConfig(
        seed=seed, scenarios=(MAIN_SCENARIOS[1],), sweep_scenarios=(),
        rules=("grpo", "tea", "prefix_tea"), group_sizes=(16,), sweep_group_size=16,
        seeds=(0,), n_train=128,
        n_validation=16, n_test=64, ablation_targets=(256,), ablation_rules=("tea",), ablation_group_sizes=(16,),
        alignment_group_sizes=(16, 64), alignment_prompts=16, alignment_repeats=4,
        mc_draws=2000, train=TrainConfig(steps=40, eval_every=10, kl_coefs=(0.1, 1.0)))


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--quick", action="store_true",
                        help="CI-sized run (one scenario, m=16, one seed, 40 steps)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--steps", type=int, default=None, help="override training steps")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def config_from_args(args) -> SimulatorConfig:
    config = quick_config(args.seed) if args.quick else SimulatorConfig(seed=args.seed)
    if args.steps is not None:
        config = replace(config, train=replace(config.train, steps=args.steps))
    return config


def run(args) -> int:
    import numba
    import tailext
    from tqdm.auto import tqdm

    from .simulator_analysis import analyse
    from .simulator_checks import run_checks
    from .simulator_report import write_report
    from .simulator_runs import alignment_table, environment_summary, plan_cells, run_cell

    # Groups are small (B·m ≤ a few thousand rewards): numba's thread pool costs more than
    # it gains, badly so on a shared machine.
    numba.set_num_threads(1)
    config = config_from_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    available = {key for key in config.rules if method_of(key) in tailext.available_methods()}
    record = {"tool": "tailext validate simulator", "version": tailext.__version__,
              "seed": config.seed, "quick": bool(args.quick), "config": config.as_dict(),
              "missing_rules": [r for r in config.rules if r not in available],
              "complete": False, "cells": [], "environment": {}, "alignment": {}}
    json_path = out / "simulator.json"
    worlds = {}
    status = 0
    try:
        for scenario in list(config.scenarios) + list(config.sweep_scenarios):
            rng = np.random.default_rng([config.seed, 0, _scenario_key(scenario)])
            worlds[scenario.name] = (scenario, make_prompts(scenario, config.n_train, rng),
                                     make_prompts(scenario, config.n_validation, rng),
                                     make_prompts(scenario, config.n_test, rng))
            record["environment"][scenario.name] = environment_summary(
                scenario, worlds[scenario.name][3], config)
        record["checks"] = run_checks(worlds[config.scenarios[0].name], config)
        cells = plan_cells(config, available)
        with tqdm(total=len(cells), unit="cell", disable=args.no_progress) as bar:
            per_prompt = {}
            for cell in cells:
                bar.set_postfix_str(f"{cell['scenario']}:{cell['rule']}:m={cell['m']}")
                summary, values = run_cell(cell, worlds[cell["scenario"]], config)
                record["cells"].append(summary)
                per_prompt[_cell_key(summary)] = values
                write_json(json_path, record)
                bar.update()
        for scenario in config.scenarios:
            record["alignment"][scenario.name] = alignment_table(
                worlds[scenario.name], config, available)
        record.update(analyse(record, per_prompt, config))
        record["complete"] = True
    except KeyboardInterrupt:
        status = 130
        print(f"interrupted: kept {len(record['cells'])} finished cell(s) in {json_path}")
    record["wall_seconds"] = time.perf_counter() - started
    record["cpu_seconds"] = time.process_time() - cpu_started
    write_json(json_path, record)
    if record["complete"]:
        write_report(record, config, out)
    failed = [name for name, check in record.get("checks", {}).items() if not check["passed"]]
    if failed:
        print(f"FAILED checks: {', '.join(failed)}")
        status = status or 1
    print(f"wrote {json_path} (wall {record['wall_seconds']:.0f} s)")
    return status


def _scenario_key(scenario: Scenario) -> int:
    import zlib
    return zlib.crc32(json.dumps(scenario.as_dict(), sort_keys=True).encode())


def _cell_key(summary) -> tuple:
    return (summary["scenario"], summary["rule"], summary["m"], summary["n_target"])
