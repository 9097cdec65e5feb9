"""``tailext validate posttrain``: a real (toy) torch post-training run, GRPO vs TEA.

Pipeline, all from one ``--seed``, no downloads:

1. disjoint train / validation / held-out prompts; a random teacher writes a fixed
   "pretraining" corpus; a GRU policy is fitted to it (the base model, diverse but not
   uniform); a frozen random reward model is calibrated on the corpus;
2. for each rule (GRPO, GRPO-Z, CAT-BoN — the strongest test-time-aware baseline in the
   paper's Table 2 —, TEA, Prefix-TEA) a copy of the base model is post-trained with
   ``m = 16`` rollouts per prompt (:mod:`validation.posttrain_train`), selecting the
   checkpoint on validation prompts;
3. every selected policy (and the base model) draws ``M = 256`` responses per held-out
   prompt; the report gives grouped and unbiased best-of-n for ``n ≤ 256``, the paired
   prompt bootstrap CI of each rule minus GRPO, win/tie/loss, mean response length, the KL
   to the base model, mean reward (with its paired CI against the base model) and how each
   rule's advantages look on base-policy groups (scale, sparsity, correlation with GRPO);
4. with ``--trl``, the same task through ``tailext.integrations.trl`` on a tiny Llama
   (:mod:`validation.posttrain_trl`).

Every piece is placed on ``--device`` (no hard-coded CPU); only the CPU path has been run.

Outputs in ``--out``: ``posttrain.json`` (config, tailext version, seed, all numbers),
``posttrain.md`` (tables), ``posttrain_frontier.png``; ``checkpoints/`` and ``eval/`` hold
the resumable state: rerunning the same command continues an interrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .posttrain_config import TrainConfig
from .results_io import write_json

#: rule name → (label, options); CAT-BoN stands in for the test-time-aware baselines
RULES = {
    "grpo": ("GRPO", {}),
    "grpo_z": ("GRPO-Z", {}),
    "cat_bon": ("CAT-BoN", {"n_target": 128}),
    "tea": ("TEA", {"tail_fraction": 0.25, "n_target": 128}),
    "prefix_tea": ("Prefix-TEA", {"tail_fraction": 0.25, "n_target": 128, "order": 2,
                                  "n_prefixes": 3}),
}
REFERENCE_RULE = "grpo"


@dataclass(frozen=True)
class PosttrainConfig:
    """Everything that determines the run (recorded in the result file).

    ``training`` is the template of every rule's :class:`TrainConfig`; its ``rule``,
    ``rule_options`` and ``seed`` are filled in per rule.
    """

    seed: int = 0
    prompt_len: int = 4
    n_train_prompts: int = 512
    n_val_prompts: int = 32
    n_test_prompts: int = 64
    corpus_size: int = 20000
    pretrain_steps: int = 600
    pretrain_batch: int = 256
    pretrain_lr: float = 3e-3
    rules: tuple = tuple(RULES)
    training: TrainConfig = TrainConfig()
    eval_samples: int = 256
    bootstrap: int = 1000
    tie_tolerance: float = 1e-3
    trl: bool = False
    trl_rule: str = "tea"
    trl_steps: int = 60
    trl_prompts_per_step: int = 4


QUICK = dict(n_train_prompts=128, n_val_prompts=8, n_test_prompts=8, corpus_size=4000,
             pretrain_steps=100, pretrain_batch=128, trl_steps=8, trl_prompts_per_step=2)
QUICK_TRAINING = dict(steps=12, prompts_per_step=4, validate_every=6)


def configure_parser(parser):
    parser.add_argument("--out", required=True, help="output directory (created; reused to resume)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny configuration for CI (about a minute on 2 CPU cores)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES),
                        help=f"rules to train (must include {REFERENCE_RULE!r})")
    parser.add_argument("--steps", type=int, help="override the number of training steps")
    parser.add_argument("--kl-coef", type=float,
                        help="override the KL coefficient to the initial policy")
    parser.add_argument("--lr", type=float, help="override the AdamW learning rate")
    parser.add_argument("--normalize-advantages", action="store_true",
                        help="rescale each batch's advantages to unit root-mean-square "
                             "(removes the rules' different advantage scales, which under a "
                             "fixed KL coefficient act as different KL strengths; the "
                             "paper's protocol, and the default, uses the raw advantages)")
    parser.add_argument("--trl", action="store_true",
                        help="also train a tiny Llama on the same task through "
                             "tailext.integrations.trl (needs trl, transformers, datasets)")
    parser.add_argument("--trl-rule", default="tea", choices=list(RULES),
                        help="rule for the TRL run")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a shared 2-core machine)")


def config_from_args(args) -> PosttrainConfig:
    overrides = dict(QUICK) if args.quick else {}
    training = dict(QUICK_TRAINING) if args.quick else {}
    if args.steps is not None:
        training["steps"] = args.steps
    if args.kl_coef is not None:
        training["kl_coef"] = args.kl_coef
    if args.lr is not None:
        training["lr"] = args.lr
    if args.normalize_advantages:
        training["normalize_advantages"] = True
    if REFERENCE_RULE not in args.rules:
        raise SystemExit(f"--rules must include the reference rule {REFERENCE_RULE!r}.")
    return PosttrainConfig(
        seed=args.seed, rules=tuple(args.rules), trl=args.trl, trl_rule=args.trl_rule,
        training=dataclasses.replace(PosttrainConfig.training, **training), **overrides)


def child_seed(seed: int, tag: str) -> int:
    """A 63-bit seed for one component, derived from the run seed and a component name."""
    words = [seed] + list(tag.encode())
    return int(np.random.SeedSequence(words).generate_state(2, dtype=np.uint64)[0] >> 1)


def best_of_n_sizes(samples: int) -> list[int]:
    """Powers of two up to ``samples`` (they divide ``M = 256`` for the grouped estimate)."""
    return [2 ** j for j in range(int(np.log2(samples)) + 1)]


def evaluate_policy(policy, reference, reward_model, prompts, *, samples: int, max_len: int,
                    seed: int, progress=None) -> dict:
    """``samples`` responses per prompt: rewards, lengths and KL to ``reference``, ``[P, M]``.

    The sampler is seeded identically for every policy (common random numbers), so the
    paired comparisons across rules carry less sampling noise.
    """
    import torch

    from .posttrain_model import sample, sequence_kl

    generator = torch.Generator(device=prompts.device).manual_seed(seed)
    out = {"rewards": [], "lengths": [], "kl": []}
    for p in prompts.split(max(1, 4096 // samples)):
        repeated = p.repeat_interleave(samples, dim=0)
        rollouts = sample(policy, repeated, max_len=max_len, generator=generator)
        shape = (p.shape[0], samples)
        out["rewards"].append(reward_model(repeated, rollouts.responses).view(shape))
        out["lengths"].append(rollouts.lengths.view(shape))
        out["kl"].append(sequence_kl(policy, reference, repeated, rollouts.responses).view(shape))
        if progress is not None:
            progress.update(p.shape[0])
    return {k: torch.cat(v).double().cpu().numpy() for k, v in out.items()}


def summarize(evaluations: dict, config: PosttrainConfig, reference: str = REFERENCE_RULE,
              base: str = "base") -> dict:
    """Best-of-n frontier; paired bootstrap and win/tie/loss against ``reference``.

    Also the paired prompt-bootstrap CI of each policy's mean reward minus that of ``base``
    (the untrained policy): did training move the reward?
    """
    from tailext.evaluation import best_of_n, paired_bootstrap, win_tie_loss

    ns = best_of_n_sizes(config.eval_samples)
    unbiased = {name: best_of_n(ev["rewards"], ns) for name, ev in evaluations.items()}
    against = unbiased[reference].per_prompt
    summary = {}
    for name, ev in evaluations.items():
        grouped = best_of_n(ev["rewards"], ns, method="grouped")
        entry = {
            "mean_reward": float(ev["rewards"].mean()),
            "mean_length": float(ev["lengths"].mean()),
            "kl_to_base": float(ev["kl"].mean()),
            "unbiased_best_of_n": dict(zip(map(str, ns), unbiased[name].mean.tolist())),
            "unbiased_best_of_n_se": dict(zip(map(str, ns),
                                              unbiased[name].standard_error.tolist())),
            "grouped_best_of_n": dict(zip(map(str, ns), grouped.mean.tolist())),
        }
        if name != base:
            moved = paired_bootstrap(ev["rewards"].mean(1), evaluations[base]["rewards"].mean(1),
                                     n_resamples=config.bootstrap,
                                     seed=child_seed(config.seed, "bootstrap base"))
            entry["mean_reward_vs_base"] = {"diff": moved.mean_difference,
                                            "ci_low": moved.ci_low, "ci_high": moved.ci_high}
        if name != reference:
            boot = paired_bootstrap(unbiased[name].per_prompt, against,
                                    n_resamples=config.bootstrap,
                                    seed=child_seed(config.seed, "bootstrap"))
            wtl = win_tie_loss(unbiased[name].per_prompt, against, tol=config.tie_tolerance)
            entry[f"vs_{reference}"] = {
                str(n): {"diff": float(boot.mean_difference[j]),
                         "ci_low": float(boot.ci_low[j]), "ci_high": float(boot.ci_high[j]),
                         "win": int(wtl.wins[j]), "tie": int(wtl.ties[j]),
                         "loss": int(wtl.losses[j])}
                for j, n in enumerate(ns)}
        summary[name] = entry
    return summary


def advantage_statistics(rewards, config: PosttrainConfig) -> dict:
    """How each rule weights groups of ``m`` base-policy rewards (held-out samples).

    Per rule: root-mean-square advantage, share of non-zero advantages, and the mean
    within-group correlation with GRPO's ``r − r̄`` — a large scale with a low correlation
    means a noisy gradient at this ``m``.
    """
    import tailext

    from .rule_names import rule_call

    m = config.training.group_size
    groups = rewards[:, : rewards.shape[1] // m * m].reshape(-1, m)
    grpo = tailext.advantages(groups, **rule_call(REFERENCE_RULE))
    stats = {}
    for rule in config.rules:
        A = tailext.advantages(groups, **rule_call(rule, **RULES[rule][1]))
        varying = (A.std(axis=1) > 0) & (grpo.std(axis=1) > 0)
        corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(A[varying], grpo[varying])]
        stats[rule] = {"rms": float(np.sqrt((A ** 2).mean())),
                       "nonzero_share": float((A != 0).mean()),
                       "corr_with_grpo": float(np.mean(corr)) if corr else float("nan")}
    return stats


class Task(NamedTuple):
    """Prompts (on the device), corpus, frozen reward model and pretrained base policy."""

    splits: dict
    corpus_prompts: object
    corpus: object
    reward_model: object
    base: object
    info: dict


def build_task(config: PosttrainConfig, device, out: str, progress_factory) -> Task:
    """Prompts, frozen reward model and the pretrained base policy (cached in ``out``)."""
    import torch

    from .posttrain_corpus import make_prompts, make_teacher, pretrain, teacher_corpus
    from .posttrain_model import build_policy, build_reward_model, response_lengths

    seed = config.seed
    splits = make_prompts(config.n_train_prompts, config.n_val_prompts, config.n_test_prompts,
                          prompt_len=config.prompt_len, seed=child_seed(seed, "prompts"))
    teacher = make_teacher(child_seed(seed, "teacher"))
    pick = torch.Generator().manual_seed(child_seed(seed, "corpus prompts"))
    corpus_prompts = splits.train[torch.randint(0, config.n_train_prompts,
                                                (config.corpus_size,), generator=pick)]
    corpus = teacher_corpus(teacher, corpus_prompts, max_len=config.training.max_len,
                            seed=child_seed(seed, "corpus"))
    reward_model = build_reward_model(child_seed(seed, "reward model"), device)
    reward_model.calibrate(corpus_prompts.to(device), corpus.to(device))

    base = build_policy(child_seed(seed, "policy init"), device)
    path = os.path.join(out, "checkpoints", "base.pt")
    if os.path.exists(path):
        state = torch.load(path, map_location=device, weights_only=False)
        base.load_state_dict(state["policy"])
        losses = state["losses"]
    else:
        with progress_factory(total=config.pretrain_steps, desc="pretrain") as bar:
            losses = pretrain(base, corpus_prompts, corpus, steps=config.pretrain_steps,
                              batch_size=config.pretrain_batch, lr=config.pretrain_lr,
                              seed=child_seed(seed, "pretrain"), progress=bar)
        torch.save({"policy": base.state_dict(), "losses": losses}, path)
    base.eval().requires_grad_(False)
    info = {"corpus_mean_length": float(response_lengths(corpus).double().mean()),
            "pretrain_loss_first": losses[0], "pretrain_loss_last": float(np.mean(losses[-20:]))}
    on_device = {k: v.to(device) for k, v in splits._asdict().items()}
    return Task(on_device, corpus_prompts, corpus, reward_model, base, info)


def _check_run_directory(out: str, config: PosttrainConfig):
    """Create ``out``; refuse to mix results of different configurations in it."""
    os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(out, "eval"), exist_ok=True)
    manifest = os.path.join(out, "config.json")
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))
    if os.path.exists(manifest):
        with open(manifest) as f:
            found = json.load(f)
        if found != wanted:
            raise SystemExit(f"{out} holds a run with a different configuration ({found}); "
                             f"use another --out.")
    else:
        write_json(manifest, wanted, indent=1)


def _cached_evaluation(path, compute):
    if os.path.exists(path):
        with np.load(path) as data:
            return dict(data)
    result = compute()
    np.savez(path, **result)
    return result


def run(args) -> int:
    import torch
    from tqdm import tqdm

    import tailext

    from .posttrain_train import train

    config = config_from_args(args)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    out = args.out
    _check_run_directory(out, config)
    clock = {"start": time.perf_counter(), "cpu_start": time.process_time()}
    timings = {}

    task = build_task(config, device, out, tqdm)
    splits, reward_model, base = task.splits, task.reward_model, task.base
    timings["setup_and_pretrain_s"] = time.perf_counter() - clock["start"]
    eval_seed = child_seed(config.seed, "evaluation")

    def evaluate(name, policy, reference=base):
        def compute():
            with tqdm(total=config.n_test_prompts, desc=f"evaluate {name}") as bar:
                return evaluate_policy(policy, reference, reward_model, splits["test"],
                                       samples=config.eval_samples,
                                       max_len=config.training.max_len,
                                       seed=eval_seed, progress=bar)
        return _cached_evaluation(os.path.join(out, "eval", f"{name}.npz"), compute)

    evaluations = {"base": evaluate("base", base)}
    training = {}
    for rule in config.rules:
        t0 = time.perf_counter()
        train_config = dataclasses.replace(config.training, rule=rule,
                                           rule_options=dict(RULES[rule][1]),
                                           seed=child_seed(config.seed, "train"))
        with tqdm(total=train_config.steps, desc=f"train {rule}") as bar:
            result = train(train_config, base, reward_model, splits["train"],
                           splits["validation"],
                           checkpoint=os.path.join(out, "checkpoints", f"{rule}.pt"),
                           progress=bar)
        evaluations[rule] = evaluate(rule, result.policy)
        training[rule] = {"label": RULES[rule][0], "options": RULES[rule][1],
                          "best_step": result.best_step, "best_val_score": result.best_score,
                          "history": result.history}
        timings[f"{rule}_s"] = time.perf_counter() - t0

    summary = summarize(evaluations, config)
    trl_section = None
    if config.trl:
        from .posttrain_trl import run_trl
        t0 = time.perf_counter()
        cached = os.path.join(out, "trl", "log.json")    # TRL training is not resumable:
        if os.path.exists(cached):                       # keep its log once it finished
            with open(cached) as f:
                trl_section = json.load(f)
            # its evaluations were cached before the log was written
            evaluations_trl = {}
            for name in ("trl_base", f"trl_{config.trl_rule}"):
                with np.load(os.path.join(out, "eval", f"{name}.npz")) as data:
                    evaluations_trl[name] = dict(data)
        else:
            trl_run = run_trl(rule=config.trl_rule, options=dict(RULES[config.trl_rule][1]),
                              splits=splits, corpus_prompts=task.corpus_prompts,
                              corpus=task.corpus, reward_model=reward_model, config=config,
                              out=out, device=device, evaluate=evaluate)
            evaluations_trl = trl_run.pop("evaluations")
            trl_section = trl_run
            write_json(cached, trl_section, indent=None)
        trl_section["summary"] = summarize(evaluations_trl, config, reference="trl_base",
                                           base="trl_base")
        timings["trl_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - clock["start"]
    timings["cpu_total_s"] = time.process_time() - clock["cpu_start"]
    results = {
        "check": "posttrain", "tailext_version": tailext.__version__, "seed": config.seed,
        "config": dataclasses.asdict(config), "device": str(device),
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "numpy": np.__version__, "platform": platform.platform(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_1m": os.getloadavg()[0]},
        "wall_time_s": timings, "pretrain": task.info,
        "ns": best_of_n_sizes(config.eval_samples),
        "base": summary["base"],
        "advantage_statistics": advantage_statistics(evaluations["base"]["rewards"], config),
        "rules": {rule: {**training[rule], **summary[rule]} for rule in config.rules},
        "trl": trl_section,
    }
    write_json(os.path.join(out, "posttrain.json"), results, indent=1)
    from .posttrain_report import write_markdown, write_plot
    write_markdown(results, os.path.join(out, "posttrain.md"))
    write_plot(results, os.path.join(out, "posttrain_frontier.png"))
    print(open(os.path.join(out, "posttrain.md")).read())
    return 0
