"""The simulator's cells: the prompt worlds, what is trained, how a cell is evaluated, the
scenario facts of the initial policy and the oracle-alignment table.

Cell keys (in run order, so Ctrl-C keeps the cheap and the main results first)::

    scenario/<name>                        initial-policy facts of a scenario
    self-checks                            exactness checks of the simulator itself
    train/<scenario>/<rule>/m=<m>/N=<N>    one rule at one group size (all seeds × KLs)
    alignment/<scenario>                   cosine of each rule's update with the oracle's
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import tailext
from tailext.evaluation import best_of_n_from_cdf, qq_linearity
from tailext.oracle import cosine, oracle_advantages, policy_update

from .. import rules
from ..seeding import SimulatorStream, generator
from .bandit import PromptSet, Scenario, cdf, draw_prompts, kl_divergence, policy, \
    sample_candidates
from .config import scenario_index
from .training import rule_options, train_cell

__all__ = ["World", "make_world", "training_cell", "training_key", "plan_cells",
           "held_out_frontier", "run_cell", "scenario_facts", "alignment_table"]


class World(NamedTuple):
    """A scenario and its disjoint train / validation / test prompts."""

    scenario: Scenario
    train: PromptSet
    validation: PromptSet
    test: PromptSet


def make_world(scenario: Scenario, config) -> World:
    """The prompts of ``scenario``, from stream ``(PROMPTS, scenario index)``."""
    rng = generator(config.seed, SimulatorStream.PROMPTS, scenario_index(scenario.name))
    return World(scenario, draw_prompts(scenario, config.n_train, rng),
                 draw_prompts(scenario, config.n_validation, rng),
                 draw_prompts(scenario, config.n_test, rng))


def training_key(cell: dict) -> str:
    return (f"train/{cell['scenario']}/{cell['rule']}/m={cell['m']}/"
            f"N={cell['n_target']}")


def training_cell(key: str) -> dict:
    """The ``(scenario, rule, m, n_target)`` of a training cell key."""
    _, scenario, rule, m, n = key.split("/")
    return dict(scenario=scenario, rule=rule, m=int(m[2:]), n_target=int(n[2:]))


def plan_cells(config, available) -> list[str]:
    """Every cell key of a run with the ``available`` rules, in run order."""
    cells = [f"scenario/{s.name}" for s in config.scenarios + config.sweep_scenarios]
    cells.append("self-checks")
    training = []
    for scenario in config.scenarios:
        for m in config.group_sizes:
            training += [dict(scenario=scenario.name, rule=rule, m=m, n_target=config.n_target)
                         for rule in config.rules if rule in available]
    for scenario in config.sweep_scenarios:
        training += [dict(scenario=scenario.name, rule=rule, m=config.sweep_group_size,
                          n_target=config.n_target)
                     for rule in config.sweep_rules if rule in available]
    for scenario in config.scenarios:
        for m in config.ablation_group_sizes:
            training += [dict(scenario=scenario.name, rule=rule, m=m, n_target=target)
                         for rule in config.ablation_rules if rule in available
                         for target in config.ablation_targets]
    cells += [training_key(cell) for cell in training]
    return cells + [f"alignment/{s.name}" for s in config.scenarios]


def held_out_frontier(theta, test, ns):
    """Exact per-prompt frontier ``[P, C]``, mean KL to the initial policy and effective
    number of candidates ``exp(entropy)`` of ``π_θ`` on the test prompts."""
    probs, _ = policy(theta, test.features)
    entropy = -np.sum(probs * np.log(np.maximum(probs, 1e-300)), axis=-1)
    return (best_of_n_from_cdf(test.rewards, cdf(probs), ns),
            float(kl_divergence(probs).mean()), float(np.exp(entropy).mean()))


def run_cell(cell, world: World, config):
    """Train one cell, pick checkpoints/KL on validation, evaluate the test frontier.

    Returns ``(summary, values)``: ``values[protocol]`` is ``[S, P, C]``, the per-prompt
    exact test frontier of each seed under two KL-selection protocols — ``"top10of32"`` (one
    KL per (rule, m), chosen by the mean validation top-10-of-32 metric, as in the paper) and
    ``"kl_per_n"`` (for each budget ``n`` the KL whose selected checkpoints have the best exact
    validation ``V_n``: every rule tuned for the deployment budget). ``values`` is ``None`` if
    the rule cannot run at this ``m``.
    """
    _, train, validation, test = world
    summary = dict(cell)
    try:
        result = train_cell(train, validation, cell["rule"], cell["m"], config.seeds,
                            config.train, n_target=cell["n_target"],
                            master_seed=config.seed)
    except ValueError as error:  # e.g. Prefix-TEA's prefixes do not fit a small group
        summary["error"] = str(error)
        return summary, None
    S, L, C = len(config.seeds), len(config.train.kl_coefs), len(config.frontier)
    evaluated = [held_out_frontier(theta, test, config.frontier) for theta in
                 result.selected_theta]
    values = np.stack([v for v, _, _ in evaluated]).reshape(S, L, len(test), C)
    val_frontier = np.stack([held_out_frontier(theta, validation, config.frontier)[0]
                             .mean(axis=0) for theta in result.selected_theta]).reshape(S, L, C)
    selected = int(np.argmax(result.best_validation.reshape(S, L).mean(axis=0)))
    chosen = values[:, selected]
    per_n = np.argmax(val_frontier.mean(axis=0), axis=0)  # [C]: best KL index per budget
    chosen_per_n = values[:, per_n, :, np.arange(C)].transpose(1, 2, 0)  # [S, P, C]
    theta = result.selected_theta.reshape(S, L, -1)
    summary.update(
        kl_coefs=list(config.train.kl_coefs), selected_kl=config.train.kl_coefs[selected],
        best_validation=result.best_validation.reshape(S, L),
        selected_step=result.selected_step.reshape(S, L),
        frontier_by_kl=values.mean(axis=2), validation_frontier_by_kl=val_frontier,
        frontier=chosen.mean(axis=(0, 1)),
        frontier_seed_se=(chosen.mean(axis=1).std(axis=0, ddof=1) / np.sqrt(S)
                          if S > 1 else np.zeros(C)),
        kl_per_n=[config.train.kl_coefs[i] for i in per_n],
        frontier_kl_per_n=chosen_per_n.mean(axis=(0, 1)),
        kl_to_initial=np.array([kl for _, kl, _ in evaluated]).reshape(S, L),
        effective_candidates=np.array([e for _, _, e in evaluated]).reshape(S, L),
        theta_mean_feature=theta[..., 0], theta_risky_feature=theta[..., 1],
        theta_norm=np.linalg.norm(theta, axis=-1))
    return summary, {"top10of32": chosen, "kl_per_n": chosen_per_n}


def scenario_facts(world: World, config) -> dict:
    """Initial-policy facts of a scenario: exact frontier, QQ linearity of the tail, and the
    error of the tail-extrapolated prediction ``μ̂_t + κ_N ŝ`` (β = ¼) from ``m`` sampled
    rewards per prompt against the exact ``V_N``."""
    scenario, test = world.scenario, world.test
    uniform = np.full(test.rewards.shape, 1.0 / test.rewards.shape[1])
    F = cdf(uniform)
    per_prompt = best_of_n_from_cdf(test.rewards, F, config.frontier)
    qq = qq_linearity(test.rewards, tail_fraction=0.25)
    rng = generator(config.seed, SimulatorStream.PREDICTION, scenario_index(scenario.name))
    targets = [n for n in config.frontier if n >= 2]
    prediction = {}
    for m in config.group_sizes:
        sampled = np.take_along_axis(test.rewards,
                                     sample_candidates(F, rng.random((len(test), m))), 1)
        tail = tailext.tail_vector(sampled, tail_fraction=0.25)
        predicted = tail.mean[:, None] + np.array(
            [tailext.kappa(0.25, n) for n in targets]) * tail.scale[:, None]
        error = predicted - per_prompt[:, [config.frontier.index(n) for n in targets]]
        prediction[str(m)] = dict(n=targets, mean_error=error.mean(axis=0),
                                  rmse=np.sqrt((error ** 2).mean(axis=0)))
    return dict(scenario=scenario.as_dict(), initial_frontier=per_prompt.mean(axis=0),
                qq_median=qq.median, qq_mean=qq.mean, qq_p10=qq.p10,
                qq_share_linear=qq.share_linear, tail_prediction=prediction)


def alignment_table(world: World, config, available) -> dict:
    """Cosine of each rule's update with the exact best-of-N gradient at the initial policy.

    Per repeat: ``alignment_prompts`` test prompts, the exact oracle update
    ``(1/B) Σ_x Σ_k π(k|x) A*(r_k) S_k`` and, for each ``m``, one group of ``m`` samples per
    prompt shared by all rules. Two reference rows: ``oracle_exact`` uses the true ``A*`` at
    the sampled responses (a Monte Carlo estimate of the oracle update itself) and
    ``oracle_plugin`` the ``A*`` of the group's own empirical distribution.
    """
    test = world.test
    N = config.alignment_target
    rng = generator(config.seed, SimulatorStream.ALIGNMENT, scenario_index(world.scenario.name))
    labels = [r for r in config.rules if r in available]
    rows = labels + ["oracle_plugin", "oracle_exact"]
    cosines = {r: {m: [] for m in config.alignment_group_sizes} for r in rows}
    errors = {}
    theta = np.zeros(test.features.shape[2])
    for _ in range(config.alignment_repeats):
        chosen = rng.choice(len(test), size=config.alignment_prompts, replace=False)
        features, rewards = test.features[chosen], test.rewards[chosen]
        probs, mean_phi = policy(theta, features)
        scores = features - mean_phi[:, None, :]
        exact_adv = oracle_advantages(rewards, n_target=N, weights=probs).advantages
        target = policy_update(exact_adv, scores, weights=probs)
        for m in config.alignment_group_sizes:
            picks = sample_candidates(cdf(probs), rng.random((len(chosen), m)))
            r = np.take_along_axis(rewards, picks, axis=1)
            S = np.take_along_axis(scores, picks[..., None], axis=1)
            candidates = {"oracle_exact": np.take_along_axis(exact_adv, picks, axis=1),
                          "oracle_plugin": oracle_advantages(r, n_target=N).advantages}
            for rule in labels:
                try:
                    candidates[rule] = rules.advantages(r, rule, **rule_options(rule, N, rng))
                except ValueError as error:
                    errors[f"{rule}@m={m}"] = str(error)
            for name, adv in candidates.items():
                cosines[name][m].append(cosine(policy_update(adv, S), target))
    table = {}
    for name in rows:
        table[name] = {str(m): (dict(mean=float(np.mean(v)), se=float(
            np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0) if v else None)
            for m, v in cosines[name].items()}
    return dict(n_target=N, prompts=config.alignment_prompts,
                repeats=config.alignment_repeats, policy="initial (uniform)", cosine=table,
                errors=errors)
