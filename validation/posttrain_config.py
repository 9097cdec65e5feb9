"""Configuration of one post-training run (torch-free, so the CLI parser stays light)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one post-training run (all recorded in the result file).

    The defaults are those of ``tailext validate posttrain``: ``m = 16`` rollouts for each of
    16 prompts per step, 600 AdamW steps at learning rate 1e-3, KL coefficient 0.05 to the
    initial policy, the paper's checkpoint rule (mean of the top 10 of 32 validation samples
    per prompt, every 25 steps), raw advantages (the paper's protocol).

    600 steps at 1e-3 (previously 200 at 5e-4, where every rule was still improving at the
    last step): in a pilot (seed 0, KL 0.05) TEA's validation score peaked at step 350 and
    CAT-BoN's flattened from step 125, GRPO's rose by only ~0.1 over the last 200 steps; the
    five rules cost about 5 CPU-minutes (one thread), well inside the 20-minute budget.

    ``normalize_advantages`` rescales each batch's advantages to unit root-mean-square before
    the loss (:func:`validation.posttrain_train.unit_rms`): under a fixed ``kl_coef`` a rule
    with larger advantages otherwise gets a relatively weaker KL penalty.
    """

    rule: str = "grpo"
    rule_options: dict = field(default_factory=dict)
    steps: int = 600
    prompts_per_step: int = 16
    group_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    kl_coef: float = 0.05
    grad_clip: float = 1.0
    normalize_advantages: bool = False
    max_len: int = 12
    validate_every: int = 25
    val_samples: int = 32
    val_top: int = 10
    seed: int = 0
