"""``tailext validate posttrain``: a real (toy) torch post-training run, GRPO vs TEA.

Pipeline, all from one ``--seed``, no downloads:

1. disjoint train / validation / held-out prompts; a random teacher writes a fixed
   "pretraining" corpus; a GRU policy is fitted to it (the base model, diverse but not
   uniform); a frozen random reward model is calibrated on the corpus
   (:mod:`~tailext.validate.posttrain.evaluation`);
2. for each rule (GRPO, GRPO-Z, CAT-BoN — the strongest test-time-aware baseline in the
   paper's Table 2 —, TEA, Prefix-TEA) a copy of the base model is post-trained with
   ``m = 16`` rollouts per prompt (:mod:`~tailext.validate.posttrain.training`), selecting
   the checkpoint on validation prompts;
3. every selected policy (and the base model) draws ``M = 256`` responses per held-out
   prompt; the report gives grouped and unbiased best-of-n for ``n ≤ 256``, the paired
   prompt bootstrap CI of each rule minus GRPO, win/tie/loss, mean response length, the KL
   to the base model, mean reward (with its paired CI against the base model) and how each
   rule's advantages look on base-policy groups (scale, sparsity, correlation with GRPO);
4. with ``--trl``, the same task through ``tailext.integrations.trl`` on a tiny Llama
   (:mod:`~tailext.validate.posttrain.trl_run`).

Cells: ``base`` (pretraining and the base model's evaluation), one per rule, and ``TRL``.
``--out/checkpoints/`` holds the training state (a rule interrupted mid-training resumes
from its last validation) and ``--out/eval/`` the held-out samples. Every piece is placed on
``--device``. Outputs: ``posttrain.json``, ``posttrain.md``, ``posttrain_frontier.png``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..arguments import (MATPLOTLIB, TORCH, TQDM, Requirement, UsageError, add_device,
                         add_out, add_progress, add_quick, add_seed, add_threads,
                         non_negative_float, positive_float, positive_int, use_torch_device)
from ..runner import CellCheck
from .config import QUICK, QUICK_TRAINING, REFERENCE_RULE, RULE_OPTIONS, RULES, PosttrainConfig

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "config_from_args",
           "PosttrainCheck"]

DESCRIPTION = ("A toy torch post-training run (GRU policy, frozen reward model): GRPO, "
               "TEA and other rules by their held-out best-of-n frontier.")

TRL_CELL = "TRL"
_TRL_PACKAGES = [Requirement(name, "pip install -r requirements-integrations.txt")
                 for name in ("trl", "transformers", "datasets")]


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, "a tiny task and 12 training steps, about a minute on 2 CPU cores")
    add_seed(parser, 0)
    add_device(parser, "cpu", "every model and sampler")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES),
                        metavar="RULE",
                        help=f"rules to train, by name: {', '.join(RULES)} (default: all; "
                             f"must include {REFERENCE_RULE})")
    parser.add_argument("--steps", type=positive_int,
                        help="training steps per rule (default 600, or 12 with --quick)")
    parser.add_argument("--kl-coef", type=non_negative_float,
                        help="KL coefficient to the base policy (default 0.05)")
    parser.add_argument("--learning-rate", type=positive_float,
                        help="AdamW learning rate (default 1e-3)")
    parser.add_argument("--normalize-advantages", action="store_true",
                        help="rescale each batch's advantages to unit root-mean-square "
                             "(removes the rules' different advantage scales, which under a "
                             "fixed KL coefficient act as different KL strengths; the "
                             "paper's protocol, and the default, uses the raw advantages)")
    parser.add_argument("--trl", action="store_true",
                        help="also train a tiny Llama on the same task through "
                             "tailext.integrations.trl (needs trl, transformers, datasets)")
    parser.add_argument("--trl-rule", default="TEA", choices=list(RULES), metavar="RULE",
                        help="rule of the TRL run (default TEA)")
    add_threads(parser, 1, "torch CPU")
    add_progress(parser)


def requirements(args):
    return ([TORCH, MATPLOTLIB] + ([TQDM] if args.progress else [])
            + (_TRL_PACKAGES if args.trl else []))


def config_from_args(args) -> PosttrainConfig:
    """The run's configuration; UsageError for a rule set without the reference rule."""
    if REFERENCE_RULE not in args.rules:
        raise UsageError(f"--rules must include the reference rule {REFERENCE_RULE}, got "
                         f"{' '.join(args.rules)}.")
    overrides = dict(QUICK) if args.quick else {}
    training = dict(QUICK_TRAINING) if args.quick else {}
    for flag, key in (("steps", "steps"), ("kl_coef", "kl_coef"),
                      ("learning_rate", "learning_rate")):
        if getattr(args, flag) is not None:
            training[key] = getattr(args, flag)
    if args.normalize_advantages:
        training["normalize_advantages"] = True
    rules = tuple(label for label in RULES if label in args.rules)  # report order
    return PosttrainConfig(
        seed=args.seed, device=args.device, rules=rules, trl=args.trl,
        trl_rule=args.trl_rule,
        training=dataclasses.replace(PosttrainConfig.training, **training), **overrides)


class PosttrainCheck(CellCheck):
    """Cells ``base``, one per rule, and ``TRL``; comparisons derived from the held-out
    samples in ``--out/eval``."""

    name, record_name = "posttrain", "posttrain.json"
    #: the checkpoints in --out exist before the first cell: the record claims the
    #: directory first, so that another configuration cannot pick them up
    claims_directory = True

    def __init__(self, config: PosttrainConfig, *, mode: str, out, progress: bool):
        self.config, self.mode, self.seed, self.progress = config, mode, config.seed, progress
        self.out = str(out)
        self.configuration = dataclasses.asdict(config)
        self.cells = ["base", *config.rules] + ([TRL_CELL] if config.trl else [])
        self.task = None

    def _bar(self, total, desc):
        from ..progress import bar

        return bar(total=total, desc=desc, enabled=self.progress)

    def cell_bar(self, todo):  # each cell shows its own bars
        from ..progress import bar

        return bar(total=len(todo), desc="posttrain", enabled=False)

    def prepare(self):
        from .evaluation import build_task

        os.makedirs(os.path.join(self.out, "checkpoints"), exist_ok=True)
        self.task = build_task(self.config, self.out, self._bar)

    def _evaluation_path(self, name):
        return os.path.join(self.out, "eval", f"{name}.npz")

    def evaluate(self, name, policy, reference=None):
        """Held-out samples of ``policy`` (cached in ``eval/<name>.npz``)."""
        from ..records import load_arrays, save_arrays
        from ..seeding import PosttrainStream, torch_seed
        from .evaluation import evaluate_policy

        path = self._evaluation_path(name)
        if os.path.exists(path):
            return load_arrays(path)
        with self._bar(self.config.n_test, f"evaluate {name}") as bar:
            result = evaluate_policy(
                policy, self.task.base if reference is None else reference,
                self.task.reward_model, self.task.splits["test"],
                samples=self.config.eval_samples, max_len=self.config.training.max_len,
                seed=torch_seed(self.config.seed, PosttrainStream.EVALUATION), progress=bar)
        save_arrays(path, **result)
        return result

    def compute(self, key, record):
        from .evaluation import best_of_n_sizes, per_policy_summary

        ns = best_of_n_sizes(self.config.eval_samples)
        if key == "base":
            return {"pretrain": self.task.info,
                    **per_policy_summary(self.evaluate("base", self.task.base), ns)}
        if key == TRL_CELL:
            return self._trl(ns)
        return self._train(key, ns)

    def _train(self, label, ns):
        from .. import rules
        from ..seeding import PosttrainStream, torch_seed
        from .evaluation import per_policy_summary
        from .training import train

        config = self.config
        options = dict(RULE_OPTIONS[label])
        train_config = dataclasses.replace(
            config.training, rule=label, rule_options=options,
            seed=torch_seed(config.seed, PosttrainStream.TRAINING),
            validation_seed=torch_seed(config.seed, PosttrainStream.VALIDATION))
        checkpoint = os.path.join(self.out, "checkpoints", f"{label}.pt")
        with self._bar(train_config.steps, f"train {label}") as bar:
            result = train(train_config, self.task.base, self.task.reward_model,
                           self.task.splits["train"], self.task.splits["validation"],
                           checkpoint=checkpoint, progress=bar)
        return {"label": label, "method": rules.method(label),
                "options": rules.options(label, **options), "best_step": result.best_step,
                "best_val_score": result.best_score, "history": result.history,
                **per_policy_summary(self.evaluate(label, result.policy), ns)}

    def _trl(self, ns):
        from .evaluation import per_policy_summary
        from .trl_run import run_trl

        label = self.config.trl_rule
        trained = f"trl_{label}"
        run = run_trl(label=label, options=dict(RULE_OPTIONS[label]), task=self.task,
                      config=self.config, out=self.out, evaluate=self.evaluate)
        return {**run, "policies": {name: per_policy_summary(self.evaluate(name, None), ns)
                                    for name in ("trl_base", trained)}}

    def _evaluations(self, record, names):
        from ..records import load_arrays

        found = {}
        for name in names:
            path = self._evaluation_path(name)
            if os.path.exists(path):
                found[name] = load_arrays(path)
        return found

    def derive(self, record):
        from .evaluation import advantage_statistics, best_of_n_sizes, summarize

        cells = record["results"]["cells"]
        finished = [key for key in cells if key not in (TRL_CELL,)]
        evaluations = self._evaluations(record, finished)
        derived = {"ns": best_of_n_sizes(self.config.eval_samples),
                   "comparisons": summarize(evaluations, self.config)}
        if "base" in evaluations:
            derived["advantage_statistics"] = advantage_statistics(
                evaluations["base"]["rewards"], self.config)
        if TRL_CELL in cells:
            names = ("trl_base", f"trl_{self.config.trl_rule}")
            derived["trl_comparisons"] = summarize(self._evaluations(record, names),
                                                   self.config, reference="trl_base",
                                                   base="trl_base")
        return derived

    def outputs(self, record, out):
        from .report import view, write_markdown, write_plot

        results = view(record)
        written = [write_markdown(results, out / "posttrain.md")]
        if results["rules"]:
            written.append(write_plot(results, out / "posttrain_frontier.png"))
        return written


def run(args) -> int:
    from ..arguments import overrides
    from ..runner import run_check

    config = config_from_args(args)
    use_torch_device(args.device, args.threads)
    check = PosttrainCheck(config, mode="quick" if args.quick else "full", out=args.out,
                           progress=args.progress)
    return run_check(check, Path(args.out), overrides=overrides(args))
