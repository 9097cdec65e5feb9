"""What ``tailext validate posttrain-risky`` depends on (torch-free, so the command line stays
light).

Rules are named by their paper labels (:mod:`tailext.validate.rules`); the toy task, base
policy and control reward are those of ``tailext validate posttrain``
(:class:`~tailext.validate.posttrain.config.PosttrainConfig`, one per training seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import RULE_OPTIONS as POSTTRAIN_RULE_OPTIONS
from .config import TrainConfig

__all__ = ["RULES", "RULE_OPTIONS", "REFERENCE_RULE", "TASKS", "SCALES", "StudyConfig",
           "STUDY_TRAINING", "QUICK", "QUICK_TRAINING"]

#: Rules trained, in report order: GRPO (the reference), its z-scored variant, the two
#: test-time-aware baselines, TEA and Prefix-TEA.
RULES = ("GRPO", "GRPO-Z", "max@k LOO-1", "CAT-BoN", "TEA", "Prefix-TEA")
#: Options of each rule (those of ``posttrain``; max@k LOO-1 with k = 4, the library's
#: default, pinned here so that a changed default cannot move a recorded result).
RULE_OPTIONS = {**POSTTRAIN_RULE_OPTIONS, "max@k LOO-1": {"k": 4}}
REFERENCE_RULE = "GRPO"
#: ``control``: the reward model alone (its best responses saturate at high n);
#: ``risky``: ``r₀ + γ c z − ρ c`` (:mod:`tailext.validate.posttrain.risky`).
TASKS = ("control", "risky")
#: ``raw``: the rules' advantages as they are (the paper's protocol); ``unit-rms``: each
#: batch rescaled to unit root-mean-square (the same KL strength for every rule).
SCALES = ("raw", "unit-rms")

#: Training of every run: m = 16, 8 prompts per step, 100 AdamW steps at 3e-3, checkpoint
#: chosen every 20 steps by the paper's top-10-of-32 mean on 16 validation prompts. Sized
#: for the 30-minute budget on 2 cores: an 80-step run measured 7.6–8.2 CPU-s (GRPO, TEA;
#: about 0.1 CPU-s per step of 128 responses), so 216 runs × 100 steps are about 2,200
#: CPU-s, with ~400 CPU-s of pretraining and held-out sampling.
STUDY_TRAINING = dict(steps=100, prompts_per_step=8, learning_rate=3e-3, validate_every=20)


@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines the study (recorded as the run's configuration).

    Every (task, advantage scale, rule, KL coefficient, seed) is one training run from the
    seed's base policy; per (task, scale, rule) the KL coefficient is chosen by the mean
    over seeds of the runs' best validation score (the simulator's paper protocol), and the
    selected run of every seed is evaluated on the seed's held-out prompts.
    """

    seeds: tuple = (0, 1, 2)
    device: str = "cpu"
    tasks: tuple = TASKS
    scales: tuple = SCALES
    rules: tuple = RULES
    kl_coefs: tuple = (0.01, 0.05, 0.2)
    gamma: float = 2.0
    rho: float = 0.5
    n_risky: int = 6
    #: PosttrainConfig fields of each seed's task (prompt counts, corpus, pretraining)
    task: dict = field(default_factory=lambda: dict(n_validation=16))
    training: TrainConfig = TrainConfig(**STUDY_TRAINING)
    eval_samples: int = 256
    #: responses per held-out prompt on which the KL to the base model is computed (a
    #: diagnostic; its forward passes would otherwise cost more than the sampling)
    kl_samples: int = 64
    bootstrap: int = 1000
    tie_tolerance: float = 1e-3


QUICK = dict(seeds=(0,), kl_coefs=(0.05, 0.2), eval_samples=64,
             task=dict(n_train=128, n_validation=8, n_test=8, corpus_size=4000,
                       pretrain_steps=100, pretrain_batch=128))
QUICK_TRAINING = dict(steps=8, prompts_per_step=4, validate_every=4)
