"""What a post-training run depends on (torch-free, so the command line stays light).

Rules are named by their paper labels (:mod:`tailext.validate.rules`); :data:`RULE_OPTIONS`
adds this task's options to each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RULES", "RULE_OPTIONS", "REFERENCE_RULE", "TrainConfig", "PosttrainConfig",
           "QUICK", "QUICK_TRAINING"]

#: Rules trained, in report order; CAT-BoN stands in for the test-time-aware baselines (the
#: strongest of them in the paper's Table 2).
RULES = ("GRPO", "GRPO-Z", "CAT-BoN", "TEA", "Prefix-TEA")
#: This task's options of each rule (on top of those pinned in tailext.validate.rules).
RULE_OPTIONS = {
    "GRPO": {},
    "GRPO-Z": {},
    "CAT-BoN": {"n_target": 128},
    "TEA": {"tail_fraction": 0.25, "n_target": 128},
    "Prefix-TEA": {"tail_fraction": 0.25, "n_target": 128, "order": 2, "n_prefixes": 3},
}
REFERENCE_RULE = "GRPO"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one post-training run (all recorded in the result file; field
    names as in the simulator's :class:`tailext.validate.simulator.config.TrainConfig`).

    The defaults are those of ``tailext validate posttrain``: ``m = 16`` rollouts for each of
    16 prompts per step, 600 AdamW steps at learning rate 1e-3, KL coefficient 0.05 to the
    initial policy, the paper's checkpoint rule (mean of the top 10 of 32 validation samples
    per prompt, every 25 steps), raw advantages (the paper's protocol).

    600 steps at 1e-3 (previously 200 at 5e-4, where every rule was still improving at the
    last step): in a pilot (seed 0, KL 0.05) TEA's validation score peaked at step 350 and
    CAT-BoN's flattened from step 125, GRPO's rose by only ~0.1 over the last 200 steps; the
    five rules cost about 5 CPU-minutes (one thread).

    ``normalize_advantages`` rescales each batch's advantages to unit root-mean-square before
    the loss (:func:`tailext.validate.posttrain.training.unit_rms`): under a fixed
    ``kl_coef`` a rule with larger advantages otherwise gets a relatively weaker KL penalty.
    """

    rule: str = "GRPO"
    rule_options: dict = field(default_factory=dict)
    steps: int = 600
    prompts_per_step: int = 16
    group_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    kl_coef: float = 0.05
    grad_clip: float = 1.0
    normalize_advantages: bool = False
    max_len: int = 12
    validate_every: int = 25
    validation_samples: int = 32
    validation_top: int = 10
    #: torch seeds of the training sampler and of the validation sampler (every rule gets
    #: the same two: paired comparisons); set from the run seed by the command.
    seed: int = 0
    validation_seed: int = 1


@dataclass(frozen=True)
class PosttrainConfig:
    """Everything that determines the run (recorded as the run's configuration).

    ``training`` is the template of every rule's :class:`TrainConfig`; its ``rule``,
    ``rule_options`` and ``seed`` are filled in per rule. ``device`` is part of it: a CUDA
    generator draws other numbers than a CPU one.
    """

    seed: int = 0
    device: str = "cpu"
    prompt_len: int = 4
    n_train: int = 512
    n_validation: int = 32
    n_test: int = 64
    corpus_size: int = 20000
    pretrain_steps: int = 600
    pretrain_batch: int = 256
    pretrain_lr: float = 3e-3
    rules: tuple = RULES
    training: TrainConfig = TrainConfig()
    eval_samples: int = 256
    bootstrap: int = 1000
    tie_tolerance: float = 1e-3
    trl: bool = False
    trl_rule: str = "TEA"
    trl_steps: int = 60
    trl_prompts_per_step: int = 4


QUICK = dict(n_train=128, n_validation=8, n_test=8, corpus_size=4000,
             pretrain_steps=100, pretrain_batch=128, trl_steps=8, trl_prompts_per_step=2)
QUICK_TRAINING = dict(steps=12, prompts_per_step=4, validate_every=6)
