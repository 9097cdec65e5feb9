"""What a simulator run depends on: scenarios, rules, grids and training hyper-parameters.

Rules are named by their paper labels (:mod:`tailext.validate.rules`); scenarios by their
name, and each scenario's position in :data:`SCENARIOS` is its seeding index
(:mod:`tailext.validate.seeding`), so the quick run's ``risky`` world is the full run's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .bandit import Scenario

__all__ = ["BASELINE", "RULES", "SCENARIOS", "MAIN_SCENARIOS", "SWEEP_SCENARIOS",
           "TrainConfig", "SimulatorConfig", "quick_config", "scenario_index"]

#: Rules compared, in report order (paper labels); those this tailext build does not
#: register are listed as missing.
RULES = ("GRPO", "GRPO-Z", "RLOO", "BoN-max mean", "BoN-max second", "BoN mean",
         "max@k LOO-1", "Chow BoN-RL", "CAT-BoN", "TEA", "Prefix-TEA")
BASELINE = "GRPO"

#: Every scenario, in seeding order: the two main ones, then the sweep (heteroscedasticity,
#: its mean cost and the noise level) that shows where TEA vs GRPO differs and where not.
SCENARIOS = (
    Scenario("homoscedastic"),                      # the base scenario (K=1024, σ_ε=1)
    Scenario("risky", gamma=0.5, rho=0.5),
    Scenario("risky_g0.25", gamma=0.25, rho=0.5),
    Scenario("risky_g0.75", gamma=0.75, rho=0.5),
    Scenario("risky_free", gamma=0.5, rho=0.0),
    Scenario("homoscedastic_sd0.5", noise_sd=0.5),
    Scenario("homoscedastic_sd2", noise_sd=2.0),
)
MAIN_SCENARIOS, SWEEP_SCENARIOS = SCENARIOS[:2], SCENARIOS[2:]


def scenario_index(name: str) -> int:
    """Position of scenario ``name`` in :data:`SCENARIOS` (its seeding index)."""
    return [s.name for s in SCENARIOS].index(name)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters shared by every rule (field names as in the post-training
    check's :class:`tailext.validate.posttrain.config.TrainConfig`)."""

    steps: int = 120
    prompts_per_step: int = 16
    learning_rate: float = 0.05
    validate_every: int = 10
    #: Swept, selected per (rule, m) on validation: half-decade log steps 0.01 … 10 plus 0.
    #: 0 (no penalty: the end of the range, only checkpoint selection regularizes) and 10
    #: (the policy barely leaves the uniform start) bracket what selection can want; a
    #: selection at either is reported as an edge (:mod:`.analysis`).
    kl_coefs: tuple = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    #: Checkpoint selection: exact mean of the top ``validation_top`` of
    #: ``validation_samples`` draws per validation prompt (the paper's top-10-of-32).
    validation_samples: int = 32
    validation_top: int = 10
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything a simulator run depends on (recorded as the run's configuration)."""

    seed: int = 0
    scenarios: tuple = MAIN_SCENARIOS
    sweep_scenarios: tuple = SWEEP_SCENARIOS
    sweep_rules: tuple = ("GRPO", "TEA")
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
    ablation_rules: tuple = ("TEA", "Prefix-TEA")
    ablation_group_sizes: tuple = (32,)
    alignment_group_sizes: tuple = (8, 16, 32, 64, 128, 256)
    alignment_target: int = 128
    alignment_prompts: int = 32
    alignment_repeats: int = 20
    bootstrap_resamples: int = 1000
    tie_tolerance: float = 0.01
    mc_draws: int = 4000
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["scenarios"] = [s.as_dict() for s in self.scenarios]
        out["sweep_scenarios"] = [s.as_dict() for s in self.sweep_scenarios]
        return out

    def scenario(self, name: str) -> Scenario:
        return next(s for s in self.scenarios + self.sweep_scenarios if s.name == name)


def quick_config(seed=0) -> SimulatorConfig:
    """A CI-sized run (seconds): one scenario, m = 16, one seed, 40 steps, 2 KL values."""
    return SimulatorConfig(
        seed=seed, scenarios=(MAIN_SCENARIOS[1],), sweep_scenarios=(),
        rules=("GRPO", "TEA", "Prefix-TEA"), group_sizes=(16,), sweep_group_size=16,
        seeds=(0,), n_train=128, n_validation=16, n_test=64, ablation_targets=(256,),
        ablation_rules=("TEA",), ablation_group_sizes=(16,),
        alignment_group_sizes=(16, 64), alignment_prompts=16, alignment_repeats=4,
        mc_draws=2000, train=TrainConfig(steps=40, validate_every=10, kl_coefs=(0.1, 1.0)))
