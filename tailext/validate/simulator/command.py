"""``tailext validate simulator``: every rule on the exact contextual bandit.

Trains every rule of :data:`~tailext.validate.simulator.config.RULES` (GRPO, GRPO-Z, the
test-time-aware baselines, TEA, Prefix-TEA) at ``m ∈ {16, 32, 64}`` with several seeds and a
swept KL coefficient on two main scenarios of :mod:`~tailext.validate.simulator.bandit`
(homoscedastic: the prototype; risky: a feature that widens the reward noise at a cost in
mean). Per run the checkpoint is chosen on validation prompts (exact top-10-of-32 mean); the
KL coefficient per (rule, m) either by the same metric (the paper's protocol) or, per
deployment budget ``n``, by the exact validation ``V_n``. The exact best-of-n frontier
``n = 1, 2, 4, …, 512`` on held-out prompts is compared with GRPO by a paired prompt
bootstrap and win/tie/loss under both protocols. Also: the ``n_target`` ablation, a
scenario sweep (TEA vs GRPO where the effect is large and where it vanishes) and the
oracle-alignment table (cosine of each rule's update with the exact best-of-128 gradient).

Every piece is a resumable cell (:mod:`~tailext.validate.simulator.cells`); a training
cell's per-prompt test values, which the comparisons need, are kept in ``--out/cells/``.
Writes ``simulator.json``, ``simulator.md``, ``frontier_<scenario>.png`` and
``kl_curves.png`` to ``--out``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..arguments import (MATPLOTLIB, TQDM, add_out, add_progress, add_quick, add_seed,
                         add_threads, positive_int)
from ..runner import CellCheck
from .config import SimulatorConfig, quick_config

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "config_from_args",
           "SimulatorCheck"]

DESCRIPTION = ("Every rule trained on an exact contextual bandit: held-out best-of-n "
               "frontier, paired-bootstrap CIs against GRPO, and oracle alignment.")


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, "one scenario, m = 16, one training seed, 40 steps, seconds")
    add_seed(parser, 0)
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="training steps per run (default 120, or 40 with --quick)")
    add_threads(parser, 1, "numba")
    add_progress(parser)


def requirements(args):
    return [MATPLOTLIB] + ([TQDM] if args.progress else [])


def config_from_args(args) -> SimulatorConfig:
    config = quick_config(args.seed) if args.quick else SimulatorConfig(seed=args.seed)
    if args.steps is not None:
        config = replace(config, train=replace(config.train, steps=args.steps))
    return config


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", key) + ".npz"


class SimulatorCheck(CellCheck):
    """The simulator as cells: scenario facts, self-checks, training cells, alignment."""

    name, record_name = "simulator", "simulator.json"

    def __init__(self, config: SimulatorConfig, *, mode: str, out: Path, progress: bool):
        from .. import rules
        from .cells import plan_cells

        self.config, self.mode, self.seed, self.progress = config, mode, config.seed, progress
        self.out = Path(out)
        self.available, self.missing = rules.available(config.rules)
        self.configuration = config.as_dict()
        self.cells = plan_cells(config, self.available)
        self._worlds = {}

    def world(self, name):
        from .cells import make_world

        if name not in self._worlds:
            self._worlds[name] = make_world(self.config.scenario(name), self.config)
        return self._worlds[name]

    def values_path(self, key: str) -> Path:
        return self.out / "cells" / _file_name(key)

    def cell_bar(self, todo):
        self._bar = super().cell_bar(todo)
        return self._bar

    def compute(self, key, record):
        from ..records import save_arrays
        from .cells import alignment_table, run_cell, scenario_facts, training_cell
        from .selfchecks import run_checks

        self._bar.set_postfix_str(key)
        kind, _, rest = key.partition("/")
        if kind == "scenario":
            return scenario_facts(self.world(rest), self.config)
        if kind == "self-checks":
            return run_checks(self.world(self.config.scenarios[0].name), self.config)
        if kind == "alignment":
            return alignment_table(self.world(rest), self.config, self.available)
        cell = training_cell(key)
        summary, values = run_cell(cell, self.world(cell["scenario"]), self.config)
        if values is not None:
            save_arrays(self.values_path(key), **values)
        return summary

    def derive(self, record):
        from ..records import load_arrays
        from .analysis import analyse
        from .cells import training_cell

        cells = record["results"]["cells"]
        summaries, per_prompt, missing = [], {}, []
        for key, summary in cells.items():
            if not key.startswith("train/"):
                continue
            summaries.append(summary)
            if "error" in summary:
                continue
            cell = training_cell(key)
            path = self.values_path(key)
            if path.exists():
                per_prompt[tuple(cell.values())] = load_arrays(path)
            else:
                missing.append(key)
        return {**analyse(summaries, per_prompt, self.config), "missing_rules": self.missing,
                "missing_values": missing}

    def status(self, record):
        checks = record["results"]["cells"].get("self-checks", {})
        failed = [name for name, check in checks.items() if not check["passed"]]
        if failed:
            print(f"FAILED self-checks: {', '.join(failed)}")
        return 1 if failed else 0

    def outputs(self, record, out):
        from .report import write_report

        return write_report(record, self.config, out)


def run(args) -> int:
    import numba

    from ..arguments import overrides
    from ..runner import run_check

    # Groups are small (B·m ≤ a few thousand rewards): numba's thread pool costs more than
    # it gains (default --threads 1).
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    config = config_from_args(args)
    check = SimulatorCheck(config, mode="quick" if args.quick else "full", out=args.out,
                           progress=args.progress)
    return run_check(check, Path(args.out), overrides=overrides(args))
