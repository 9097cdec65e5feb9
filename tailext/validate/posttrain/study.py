"""``tailext validate posttrain-risky``: the high-n claim on a real autoregressive policy, in
the regime where the exact simulator predicts it (a policy that can widen the spread of its
rewards), next to the saturating control task.

For every training seed (its own prompts, teacher corpus, frozen reward model and pretrained
GRU base policy, exactly as ``tailext validate posttrain`` builds them), every task
(``control``: the reward model; ``risky``: the reward model plus a spread the policy sets
through its tokens, :mod:`~tailext.validate.posttrain.risky`), both advantage scales (raw,
unit-RMS), every rule of :data:`~tailext.validate.posttrain.study_config.RULES` and every KL
coefficient, a copy of the base policy is post-trained with ``m = 16`` rollouts per prompt
(:func:`~tailext.validate.posttrain.training.train`: checkpoint chosen on validation prompts
by the top-10-of-32 mean). Per (task, scale, rule) the KL coefficient with the best mean
validation score over seeds is selected — the same protocol for every rule — and each
seed's selected policy draws ``M = 256`` responses per held-out prompt. The report gives the
unbiased best-of-n frontier (n ≤ 256), every rule minus GRPO by the paired bootstrap over
(seed, prompt) pairs with win/tie/loss, per-seed differences, and a generated verdict.

Cells: ``base/seed=S`` (pretraining and the base model's held-out samples), one
``train/TASK/SCALE/RULE/kl=K/seed=S`` per run and one ``eval/TASK/SCALE/RULE`` per selection.
``--workers 2`` trains in two processes (the record and its numbers are the same: every run
draws only from its own seeded streams). ``--out/seed=S/checkpoints/`` holds the base model
and every run's training state (an interrupted run resumes from its last validation);
``--out/eval/`` the held-out samples. Outputs: ``posttrain_risky.json``,
``posttrain_risky.md``, ``posttrain_risky_frontier.png``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

from ..arguments import (MATPLOTLIB, TORCH, TQDM, UsageError, add_device, add_out,
                         add_progress, add_quick, add_threads, use_torch_device,
                         non_negative_float, non_negative_int, positive_int)
from ..runner import CellCheck
from .study_config import (QUICK, QUICK_TRAINING, REFERENCE_RULE, RULE_OPTIONS, RULES, SCALES,
                           TASKS, StudyConfig)

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "config_from_args",
           "StudyCheck", "train_key", "eval_key", "base_key"]

DESCRIPTION = ("TEA, GRPO and four other rules post-training a toy GRU policy on a task "
               "whose reward spread the policy controls (risky) and on the saturating "
               "control task: held-out best-of-n up to n = 256.")


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, "one seed, two KL values, 8 training steps, well under a minute")
    add_device(parser, "cpu", "every model and sampler")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, metavar="SEED",
                        help="training seeds, each with its own task and base policy "
                             "(default 0 1 2, or 0 with --quick)")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES),
                        metavar="RULE",
                        help=f"rules to train, by name: {', '.join(RULES)} (default: all; "
                             f"must include {REFERENCE_RULE})")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS),
                        metavar="TASK", help="tasks: control, risky (default: both)")
    parser.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES),
                        metavar="SCALE", help="advantage scales: raw (the paper's "
                                              "protocol), unit-rms (default: both)")
    parser.add_argument("--steps", type=positive_int,
                        help="training steps per run (default 100, or 8 with --quick)")
    parser.add_argument("--gamma", type=non_negative_float,
                        help="spread γ of the risky task (default 2.0)")
    parser.add_argument("--rho", type=non_negative_float,
                        help="mean cost ρ of the risky task (default 0.5)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="training processes (default 1); does not change any number")
    add_threads(parser, 1, "torch CPU (per process)")
    add_progress(parser)


def requirements(args):
    return [TORCH, MATPLOTLIB] + ([TQDM] if args.progress else [])


def config_from_args(args) -> StudyConfig:
    """The study's configuration; UsageError for a rule set without the reference rule."""
    if REFERENCE_RULE not in args.rules:
        raise UsageError(f"--rules must include the reference rule {REFERENCE_RULE}, got "
                         f"{' '.join(args.rules)}.")
    base = StudyConfig()
    fields = dict(QUICK) if args.quick else {}
    training = dict(QUICK_TRAINING) if args.quick else {}
    if args.steps is not None:
        training["steps"] = args.steps
    if args.seeds is not None:
        if len(set(args.seeds)) != len(args.seeds):
            raise UsageError(f"--seeds must be distinct, got {' '.join(map(str, args.seeds))}.")
        fields["seeds"] = tuple(args.seeds)
    for flag in ("gamma", "rho"):
        if getattr(args, flag) is not None:
            fields[flag] = getattr(args, flag)
    order = lambda chosen, every: tuple(x for x in every if x in chosen)  # noqa: E731
    return dataclasses.replace(
        base, device=args.device, rules=order(args.rules, RULES),
        tasks=order(args.tasks, TASKS), scales=order(args.scales, SCALES),
        training=dataclasses.replace(base.training, **training), **fields)


def base_key(seed) -> str:
    return f"base/seed={seed}"


def train_key(task, scale, rule, kl, seed) -> str:
    return f"train/{task}/{scale}/{rule}/kl={kl}/seed={seed}"


def eval_key(task, scale, rule) -> str:
    return f"eval/{task}/{scale}/{rule}"


def _parse_train_key(key):
    _, task, scale, rule, kl, seed = key.split("/")
    return task, scale, rule, float(kl[3:]), int(seed[5:])


def _file_name(key: str, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", key) + suffix


def plan_cells(config: StudyConfig) -> list[str]:
    """Every cell key, in run order: the bases, then per (task, scale, rule) its training
    runs followed by its selection and evaluation."""
    cells = [base_key(seed) for seed in config.seeds]
    for task in config.tasks:
        for scale in config.scales:
            for rule in config.rules:
                cells += [train_key(task, scale, rule, kl, seed)
                          for kl in config.kl_coefs for seed in config.seeds]
                cells.append(eval_key(task, scale, rule))
    return cells


# ----------------------------------------------------------------- work (main or worker process)

#: Per process: (out, seed) → (PosttrainConfig, Task, {task name: reward}). The corpus and
#: reward calibration take seconds; every run of a seed in a process reuses them.
_TASKS: dict = {}


def _task_config(config: StudyConfig, seed: int):
    from .config import PosttrainConfig

    return PosttrainConfig(seed=seed, device=config.device, training=config.training,
                           **config.task)


def _seed_directory(out, seed) -> str:
    return os.path.join(str(out), f"seed={seed}")


def _base_path(out, seed) -> str:
    return os.path.join(_seed_directory(out, seed), "checkpoints", "base.pt")


def seed_task(config: StudyConfig, out, seed: int, *, wait: bool = False):
    """``(PosttrainConfig, Task, rewards)`` of ``seed``; ``wait``: the base model is being
    pretrained by another process, wait for its checkpoint instead of pretraining it too."""
    from contextlib import nullcontext

    from ..seeding import PosttrainStream, torch_seed
    from .evaluation import build_task
    from .risky import build_risky_reward

    key = (str(out), seed)
    if key not in _TASKS:
        while wait and not os.path.exists(_base_path(out, seed)):
            time.sleep(0.5)
        task_config = _task_config(config, seed)
        directory = _seed_directory(out, seed)
        os.makedirs(os.path.join(directory, "checkpoints"), exist_ok=True)
        task = build_task(task_config, directory, lambda total, desc: nullcontext(None))
        risky = build_risky_reward(task.reward_model, gamma=config.gamma, rho=config.rho,
                                   n_risky=config.n_risky,
                                   seed=torch_seed(seed, PosttrainStream.RISKY))
        _TASKS[key] = (task_config, task, {"control": task.reward_model, "risky": risky})
    return _TASKS[key]


def pretrain_job(config: StudyConfig, out, seed: int) -> dict:
    """Build (pretrain and cache) the base model of ``seed``; the seconds it took."""
    started, cpu = time.perf_counter(), time.process_time()
    seed_task(config, out, seed)
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - started}


def _checkpoint(out, key) -> str:
    seed = _parse_train_key(key)[4]
    return os.path.join(_seed_directory(out, seed), "checkpoints", _file_name(key, ".pt"))


def _run_config(config: StudyConfig, key):
    from ..seeding import PosttrainStream, torch_seed

    task, scale, rule, kl, seed = _parse_train_key(key)
    return dataclasses.replace(
        config.training, rule=rule, rule_options=dict(RULE_OPTIONS[rule]), kl_coef=kl,
        normalize_advantages=scale == "unit-rms",
        seed=torch_seed(seed, PosttrainStream.TRAINING),
        validation_seed=torch_seed(seed, PosttrainStream.VALIDATION))


def train_job(config: StudyConfig, out, key: str, wait: bool = False) -> dict:
    """Train run ``key`` (resuming its checkpoint); its record entry plus the ``cpu_s`` and
    ``wall_s`` this process spent on it."""
    from .training import train

    started, cpu = time.perf_counter(), time.process_time()
    task, scale, rule, kl, seed = _parse_train_key(key)
    _, seeded, rewards = seed_task(config, out, seed, wait=wait)
    result = train(_run_config(config, key), seeded.base, rewards[task],
                   seeded.splits["train"], seeded.splits["validation"],
                   checkpoint=_checkpoint(out, key))
    return {"best_step": result.best_step, "best_val_score": result.best_score,
            "history": result.history, "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - started}


def _init_worker(threads: int) -> None:
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    torch.set_num_threads(threads)


def _selected_policy(config, out, key):
    """The validation-selected weights of run ``key`` on its seed's base architecture."""
    import copy

    import torch

    _, seeded, _ = seed_task(config, out, _parse_train_key(key)[4])
    state = torch.load(_checkpoint(out, key), map_location=config.device, weights_only=False)
    policy = copy.deepcopy(seeded.base)
    policy.load_state_dict(state["best"]["policy"])
    return policy.eval()


# ------------------------------------------------------------------------------------ the check


class StudyCheck(CellCheck):
    """Cells ``base/seed=S``, ``train/…`` and ``eval/…`` (:func:`plan_cells`); comparisons
    derived from the held-out samples in ``--out/eval``."""

    name, record_name = "posttrain-risky", "posttrain_risky.json"
    claims_directory = True

    def __init__(self, config: StudyConfig, *, mode: str, out, progress: bool,
                 workers: int = 1, threads: int = 1):
        self.config, self.mode, self.progress = config, mode, progress
        self.seed = config.seeds[0]
        self.out, self.workers, self.threads = str(out), workers, threads
        self.configuration = dataclasses.asdict(config)
        self.cells = plan_cells(config)
        self._pool, self._pending = None, {}

    def cell_bar(self, todo):
        from ..progress import bar

        return bar(total=len(todo), desc=self.name, enabled=self.progress, unit="cell")

    def prepare(self):
        """With ``workers > 1``: a process pool gets the missing base models first, then
        every missing training run, in cell order (the main loop collects them in order)."""
        if self.workers <= 1:
            return
        import atexit
        import multiprocessing

        from ..records import read_record

        record = read_record(Path(self.out) / self.record_name) or {"results": {"cells": {}}}
        done = record["results"]["cells"]
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(self.workers, initializer=_init_worker,
                                  initargs=(self.threads,))
        atexit.register(self._pool.terminate)  # Ctrl-C: stop the workers with the run
        for seed in self.config.seeds:
            if not os.path.exists(_base_path(self.out, seed)):
                self._pending[base_key(seed)] = self._pool.apply_async(
                    pretrain_job, (self.config, self.out, seed))
        for key in self.cells:
            if key.startswith("train/") and key not in done:
                self._pending[key] = self._pool.apply_async(
                    train_job, (self.config, self.out, key, True))

    def compute(self, key, record):
        if key.startswith("base/"):
            pretrained = self._pending.pop(key, None)
            if pretrained is not None:
                record["timing"].setdefault("workers", {})[key] = pretrained.get()
            result = self._base(int(key.split("=")[1]))
        elif key.startswith("train/"):
            pending = self._pending.pop(key, None)
            result = (pending.get() if pending is not None
                      else train_job(self.config, self.out, key))
            # the times are not results (a resumed run equals an uninterrupted one); a run
            # trained in a worker has its times kept next to the runner's per-cell times
            spent = {name: result.pop(name) for name in ("cpu_s", "wall_s")}
            if pending is not None:
                record["timing"].setdefault("workers", {})[key] = spent
        else:
            result = self._evaluate(key, record)
        if key == self.cells[-1] and self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        return result

    def _evaluation_path(self, name):
        return os.path.join(self.out, "eval", _file_name(name, ".npz"))

    def _sample(self, name, seed, policy, reward, statistics):
        from ..records import load_arrays, save_arrays
        from ..seeding import PosttrainStream, torch_seed
        from .evaluation import evaluate_policy

        path = self._evaluation_path(name)
        if os.path.exists(path):
            return load_arrays(path)
        task_config, seeded, _ = seed_task(self.config, self.out, seed,
                                           wait=self._pool is not None)
        result = evaluate_policy(seeded.base if policy is None else policy, seeded.base, reward,
                                 seeded.splits["test"], samples=self.config.eval_samples,
                                 max_len=self.config.training.max_len,
                                 seed=torch_seed(seed, PosttrainStream.EVALUATION),
                                 statistics=statistics, kl_samples=self.config.kl_samples)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_arrays(path, **result)
        return result

    def _summary(self, evaluation, rewards="rewards"):
        from .evaluation import best_of_n_sizes, per_policy_summary

        ns = best_of_n_sizes(self.config.eval_samples)
        summary = per_policy_summary({**evaluation, "rewards": evaluation[rewards]}, ns)
        summary["risky_share"] = float(evaluation["risky_share"].mean())
        return summary

    def _base(self, seed):
        """The base model's held-out samples, scored by both tasks' rewards."""
        _, seeded, rewards = seed_task(self.config, self.out, seed,
                                       wait=self._pool is not None)
        risky = rewards["risky"]
        evaluation = self._sample(
            f"base/seed={seed}", seed, None, rewards["control"],
            {"risky_rewards": risky,
             "risky_share": lambda p, r: risky.parts(p, r)["share"]})
        return {"pretrain": seeded.info, "risky_tokens": risky.risky.nonzero().flatten().tolist(),
                "control": self._summary(evaluation),
                "risky": self._summary(evaluation, "risky_rewards")}

    def _evaluate(self, key, record):
        """KL selection (mean validation score over seeds), then every seed's held-out
        samples of the selected run."""
        import numpy as np

        _, task, scale, rule = key.split("/")
        cells = record["results"]["cells"]
        scores = {kl: [cells[train_key(task, scale, rule, kl, seed)]["best_val_score"]
                       for seed in self.config.seeds] for kl in self.config.kl_coefs}
        mean_scores = [float(np.mean(scores[kl])) for kl in self.config.kl_coefs]
        selected = self.config.kl_coefs[int(np.argmax(mean_scores))]
        per_seed = {}
        for seed in self.config.seeds:
            run = train_key(task, scale, rule, selected, seed)
            _, _, rewards = seed_task(self.config, self.out, seed, wait=self._pool is not None)
            reward = rewards[task]
            risky = rewards["risky"]
            statistics = {"risky_share": lambda p, r: risky.parts(p, r)["share"],
                          "base_rewards": rewards["control"]}
            evaluation = self._sample(run, seed, _selected_policy(self.config, self.out, run),
                                      reward, statistics)
            per_seed[str(seed)] = {**self._summary(evaluation),
                                   "base_reward": float(evaluation["base_rewards"].mean()),
                                   "best_step": cells[run]["best_step"],
                                   "best_val_score": cells[run]["best_val_score"]}
        return {"selected_kl": selected, "mean_val_score_by_kl": mean_scores,
                "seeds": per_seed}

    def evaluations(self, task, scale, rule, record):
        """Per seed, the held-out rewards of the selected run (None if not evaluated)."""
        from ..records import load_arrays

        cell = record["results"]["cells"].get(eval_key(task, scale, rule))
        if cell is None:
            return None
        return {seed: load_arrays(self._evaluation_path(
                    train_key(task, scale, rule, cell["selected_kl"], seed)))["rewards"]
                for seed in self.config.seeds}

    def base_evaluations(self, task, record):
        from ..records import load_arrays

        found = {}
        for seed in self.config.seeds:
            if base_key(seed) in record["results"]["cells"]:
                arrays = load_arrays(self._evaluation_path(base_key(seed)))
                found[seed] = arrays["rewards" if task == "control" else "risky_rewards"]
        return found if len(found) == len(self.config.seeds) else None

    def derive(self, record):
        from .study_analysis import compare

        return compare(self, record)

    def outputs(self, record, out):
        from .study_report import write_markdown, write_plot

        written = [write_markdown(record, out / "posttrain_risky.md")]
        if record["results"].get("comparisons"):
            written.append(write_plot(record, out / "posttrain_risky_frontier.png"))
        return written


def run(args) -> int:
    from ..arguments import overrides
    from ..runner import run_check

    config = config_from_args(args)
    use_torch_device(args.device, args.threads)
    check = StudyCheck(config, mode="quick" if args.quick else "full", out=args.out,
                       progress=args.progress, workers=args.workers, threads=args.threads)
    return run_check(check, Path(args.out), overrides=overrides(args))
