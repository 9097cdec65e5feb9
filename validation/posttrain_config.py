"""Configuration of one post-training run (torch-free, so the CLI parser stays light)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one post-training run (all recorded in the result file).

    The defaults are those of ``tailext validate posttrain``: ``m = 16`` rollouts for each of
    16 prompts per step, 200 AdamW steps, KL coefficient 0.05 to the initial policy, the
    paper's checkpoint rule (mean of the top 10 of 32 validation samples per prompt).
    """

    rule: str = "grpo"
    rule_options: dict = field(default_factory=dict)
    steps: int = 200
    prompts_per_step: int = 16
    group_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.0
    kl_coef: float = 0.05
    grad_clip: float = 1.0
    max_len: int = 12
    validate_every: int = 25
    val_samples: int = 32
    val_top: int = 10
    seed: int = 0
