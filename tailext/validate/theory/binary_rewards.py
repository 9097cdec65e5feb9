"""``tailext validate binary-rewards``: advantage rules on 0/1 rewards against the pass@N oracle.

With 0/1 rewards (a verifier that says right or wrong) best-of-N is pass@N: a prompt solved
with probability ``p`` has ``V_N = 1 − (1 − p)^N``. Its oracle advantage
(:func:`tailext.oracle.oracle_advantages` on the Bernoulli pool ``{0: 1 − p, 1: p}``) is
``A*(1) = N (1 − p)^N`` and ``A*(0) = −N p (1 − p)^{N−1}``.

Model: each prompt has its own logit ``θ`` with ``p = σ(θ)`` (a tabular two-outcome
policy), so a rollout's score is ``S = r − p``. A rule whose advantages depend on the
group's rewards only (every rule here) has the expected update
``E[(1/m) Σ_i A_i S_i] = p (1 − p) (E[A | r = 1] − E[A | r = 0])``, an exact sum over the
number of successes ``s ~ Binomial(m, p)`` (one call of the rule per ``s``); the oracle's is
``p (1 − p) N (1 − p)^{N−1} = dV_N/dθ``.

With one such prompt every rule's expected update points the oracle's way (the only thing a
rule can change is its size), so the comparison is across prompts of different difficulty:

* **alignment** — the cosine between a rule's expected update and the oracle's over one
  prompt at each success rate of the grid (exact);
* **realized** — the same cosine for one sampled step (one group per prompt,
  ``--prompts-per-rate`` prompts per rate), averaged over ``--batches`` seeded steps, with its
  standard error (sd / √batches);
* **zero share** — the probability that a group's advantages are all zero (exact);
* **signal to noise** — ``E[û] / √E[û²]`` of one group's update ``û`` (exact).

Self-checks (exit status 1 when one fails): the oracle module's advantages equal the closed
forms (to 1e-12 × N); ``maxk_loo1`` with ``k = N <= m`` (the unbiased pass@N gradient
estimator) has alignment 1 (to 1e-9); ``--groups`` random groups per (rule, p, m, N), in
random order, through :func:`tailext.advantages`, have exactly the advantages of the table
the exact sums use (to 1e-12 of its largest entry).

Rules are named by their tailext methods here (the page this check supports,
docs/binary-rewards.md, is a guide to choosing a method); one cell per ``(N, m)``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from ..arguments import TQDM, add_out, add_progress, add_quick, add_seed, positive_int
from ..records import write_text
from ..reporting import header
from ..runner import CellCheck
from ..seeding import generator

__all__ = ["DESCRIPTION", "SUCCESS_RATES", "GROUP_SIZES", "TARGETS", "RULES",
           "configure_parser", "requirements", "run", "rule_options", "oracle_update",
           "success_table", "expected_updates", "realized_cosines", "table_check", "cell",
           "summary", "table_text"]

DESCRIPTION = ("Advantage rules on 0/1 rewards against the exact pass@N oracle: alignment, "
               "realized cosine, zero share and signal to noise of each rule.")

SUCCESS_RATES = (0.01, 0.05, 0.1, 0.3, 0.5, 0.8)
GROUP_SIZES = (8, 16, 64)
TARGETS = (16, 128)
RULES = ("tea", "maxk_loo1", "bon_mean", "grpo", "mean_centred")
#: Largest relative difference allowed between a sampled group's advantages and the table
#: entry for its number of successes (the rules sort and sum: a few ulps of the largest).
TABLE_TOLERANCE = 1e-12
FULL = {"batches": 10000, "prompts_per_rate": 8, "groups": 4000}
QUICK = {"batches": 300, "prompts_per_rate": 8, "groups": 400}


def rule_options(rule: str, m: int, n_target: int) -> dict:
    """Options of each rule for pass@N with groups of ``m``.

    TEA targets ``N`` directly. ``maxk_loo1`` uses ``k = min(N, m)``: with ``k = N`` it is
    the unbiased estimator of the pass@N gradient. ``bon_mean`` uses ``k = min(N, m // 2)``
    (at ``k = m`` every rollout's transformed reward is the group maximum, so it is all
    zeros). GRPO (z-scored) and mean-centring have no target.
    """
    if rule == "tea":
        return {"n_target": n_target}
    if rule == "maxk_loo1":
        return {"k": min(n_target, m)}
    if rule == "bon_mean":
        return {"k": min(n_target, m // 2)}
    return {}


def oracle_update(p: float, n_target: int):
    """``(dV_N/dθ, max error of A* against the closed forms)`` at success rate ``p``."""
    from tailext.oracle import oracle_advantages

    oracle = oracle_advantages([0.0, 1.0], weights=[1.0 - p, p], n_target=n_target)
    fail, success = oracle.advantages
    closed = (-n_target * p * (1.0 - p) ** (n_target - 1), n_target * (1.0 - p) ** n_target)
    error = max(abs(fail - closed[0]), abs(success - closed[1])) / n_target
    return p * (1.0 - p) * (success - fail), error


def success_table(rule: str, m: int, n_target: int):
    """The rule's advantages by number of successes ``s = 0..m``.

    Returns ``(success[m+1], failure[m+1], zero[m+1])``: the advantage of a success and of a
    failure in a group with ``s`` successes (0 where there is none), and whether the group's
    advantages are all zero. The rules are permutation-equivariant, so the order of the
    group does not matter (:func:`table_check` confirms it on shuffled groups).
    """
    import tailext

    s = np.arange(m + 1)
    groups = (np.arange(m)[None, :] < s[:, None]).astype(np.float64)  # s ones, then zeros
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tailext.DiscreteRewardWarning)
        A = tailext.advantages(groups, method=rule, **rule_options(rule, m, n_target))
    success = np.where(s > 0, A[:, 0], 0.0)
    failure = np.where(s < m, A[:, -1], 0.0)
    return success, failure, np.all(A == 0.0, axis=1)


def _per_group_update(table, m, p):
    """``û(s) = (1/m)[s A(1; s)(1 − p) − (m − s) A(0; s) p]`` for ``s = 0..m``."""
    success, failure, _ = table
    s = np.arange(m + 1)
    return (s * success * (1.0 - p) - (m - s) * failure * p) / m


def expected_updates(table, m, rates=SUCCESS_RATES):
    """Exact ``(E[û], zero share, E[û] / √E[û²])`` per success rate, each ``[len(rates)]``."""
    s = np.arange(m + 1)
    mean, zero, snr = [], [], []
    for p in rates:
        pmf = stats.binom.pmf(s, m, p)
        update = _per_group_update(table, m, p)
        mean.append(pmf @ update)
        zero.append(pmf @ table[2])
        second = pmf @ update ** 2
        snr.append(mean[-1] / math.sqrt(second) if second > 0 else 0.0)
    return np.array(mean), np.array(zero), np.array(snr)


def _cosines(updates, target):
    """Row-wise cosine of ``updates[R, P]`` with ``target[P]`` (0 for a zero row)."""
    scale = np.abs(updates).max(axis=1, keepdims=True)
    rows = updates / np.where(scale > 0, scale, 1.0)
    unit = target / np.linalg.norm(target)
    norms = np.linalg.norm(rows, axis=1)
    return np.where(norms > 0, rows @ unit / np.where(norms > 0, norms, 1.0), 0.0)


def realized_cosines(table, m, target, rng, *, batches, prompts_per_rate,
                     rates=SUCCESS_RATES):
    """Cosine of one sampled step with the oracle update: ``(mean, se, share of zero steps)``.

    A step has ``prompts_per_rate`` prompts at each rate, one group of ``m`` each; a group
    with ``s`` successes contributes ``û(s)`` to its prompt's coordinate.
    """
    p = np.repeat(np.asarray(rates), prompts_per_rate)
    successes = rng.binomial(m, p, size=(batches, p.size))
    per_rate = np.stack([_per_group_update(table, m, rate) for rate in rates])  # [P, m+1]
    updates = per_rate[np.repeat(np.arange(len(rates)), prompts_per_rate), successes]
    cos = _cosines(updates, np.repeat(target, prompts_per_rate))
    return (float(cos.mean()), float(cos.std(ddof=1) / math.sqrt(batches)),
            float(np.mean(np.all(updates == 0.0, axis=1))))


def table_check(rule, m, n_target, table, rng, *, groups, rates=SUCCESS_RATES) -> float:
    """Largest ``|A − table|`` over random groups, relative to the table's largest entry.

    ``groups`` groups per rate, drawn in random order, go through :func:`tailext.advantages`
    itself; every advantage must equal the table's entry for its group's number of
    successes (this is what makes the exact sums over ``s`` the rule's expectations).
    """
    import tailext

    success, failure, _ = table
    scale = max(np.abs(success).max(), np.abs(failure).max(), 1e-300)
    worst = 0.0
    for p in rates:
        rewards = (rng.random((groups, m)) < p).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tailext.DiscreteRewardWarning)
            A = tailext.advantages(rewards, method=rule, **rule_options(rule, m, n_target))
        s = rewards.sum(axis=1).astype(np.int64)[:, None]
        expected = np.where(rewards == 1.0, success[s], failure[s])
        worst = max(worst, float(np.abs(A - expected).max()) / scale)
    return worst


def cell(m: int, n_target: int, seed: int, settings: dict) -> dict:
    """Every rule at group size ``m`` and target ``N``: the numbers of one cell."""
    from tailext.oracle import cosine

    oracle = [oracle_update(p, n_target) for p in SUCCESS_RATES]
    target = np.array([u for u, _ in oracle])
    out = {"m": m, "n_target": n_target, "oracle_update": target.tolist(),
           "oracle_profile": (target / np.abs(target).max()).tolist(),
           "oracle_value": [1.0 - (1.0 - p) ** n_target for p in SUCCESS_RATES],
           "oracle_closed_form_error": max(e for _, e in oracle), "rules": {}}
    for index, rule in enumerate(RULES):
        # stream (m, N, rule index) of the seed: a cell's numbers do not depend on which
        # others ran (tailext.validate.seeding)
        rng = generator(seed, m, n_target, index)
        table = success_table(rule, m, n_target)
        mean, zero, snr = expected_updates(table, m)
        realized, realized_se, zero_steps = realized_cosines(
            table, m, target, rng, batches=settings["batches"],
            prompts_per_rate=settings["prompts_per_rate"])
        deviation = table_check(rule, m, n_target, table, rng, groups=settings["groups"])
        out["rules"][rule] = {
            "options": rule_options(rule, m, n_target),
            "alignment": cosine(mean, target),
            "realized_cosine": realized, "realized_cosine_se": realized_se,
            "zero_update_steps": zero_steps,
            "expected_update": mean.tolist(),
            "profile": (mean / np.abs(mean).max()).tolist() if mean.any() else mean.tolist(),
            "zero_share": zero.tolist(), "signal_to_noise": snr.tolist(),
            "table_deviation": deviation,
        }
    return out


def _unbiased_alignment_errors(cells):
    """``|1 − alignment|`` of ``maxk_loo1`` wherever ``k = N`` (it estimates ∇pass@N)."""
    return [abs(1.0 - c["rules"]["maxk_loo1"]["alignment"]) for c in cells.values()
            if c["rules"]["maxk_loo1"]["options"]["k"] == c["n_target"]]


def summary(cells) -> dict:
    """The self-checks over the finished cells."""
    unbiased = _unbiased_alignment_errors(cells)
    oracle_error = max(c["oracle_closed_form_error"] for c in cells.values())
    deviation = max(r["table_deviation"] for c in cells.values() for r in c["rules"].values())
    return {
        "oracle_closed_form_error": oracle_error, "oracle_passed": oracle_error <= 1e-12,
        "unbiased_alignment_error": max(unbiased, default=0.0),
        "unbiased_passed": all(e <= 1e-9 for e in unbiased),
        "table_deviation": deviation, "table_passed": deviation <= TABLE_TOLERANCE,
    }


def table_text(cells) -> str:
    """Markdown: alignment and realized cosine (± SE) per (N, m) and rule."""
    lines = ["| N | m | " + " | ".join(RULES) + " |",
             "|---|---|" + "---|" * len(RULES)]
    for c in cells.values():
        row = [f"{r['alignment']:.3f} / {r['realized_cosine']:.3f} ± "
               f"{r['realized_cosine_se']:.3f}" for r in (c["rules"][n] for n in RULES)]
        lines.append(f"| {c['n_target']} | {c['m']} | " + " | ".join(row) + " |")
    lines += ["", "Zero share (probability that a group's advantages are all 0), p = "
              + ", ".join(map(str, SUCCESS_RATES)) + ":", "",
              "| N | m | " + " | ".join(RULES) + " |", "|---|---|" + "---|" * len(RULES)]
    for c in cells.values():
        row = [" ".join(f"{z:.2f}" for z in c["rules"][n]["zero_share"]) for n in RULES]
        lines.append(f"| {c['n_target']} | {c['m']} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, f"fewer samples (batches {QUICK['batches']}, groups {QUICK['groups']} "
                      f"instead of {FULL['batches']} and {FULL['groups']}), seconds")
    add_seed(parser, 0)
    parser.add_argument("--batches", type=positive_int, default=None,
                        help=f"sampled steps per cell for the realized cosine "
                             f"(default {FULL['batches']})")
    parser.add_argument("--prompts-per-rate", type=positive_int, default=None,
                        help=f"prompts per success rate in a step "
                             f"(default {FULL['prompts_per_rate']})")
    parser.add_argument("--groups", type=positive_int, default=None,
                        help=f"random groups per (rule, p, m, N) checked against the exact "
                             f"table (default {FULL['groups']})")
    add_progress(parser)


def requirements(args):
    return [TQDM] if args.progress else []


def _settings(args) -> dict:
    base = QUICK if args.quick else FULL
    chosen = {"batches": args.batches, "prompts_per_rate": args.prompts_per_rate,
              "groups": args.groups}
    return {key: base[key] if value is None else int(value) for key, value in chosen.items()}


def _passed(checks) -> bool:
    return checks["oracle_passed"] and checks["unbiased_passed"] and checks["table_passed"]


class BinaryRewards(CellCheck):
    """One cell per (N, m): every rule's exact and sampled numbers there."""

    name, record_name = "binary-rewards", "binary_rewards.json"

    def __init__(self, *, quick: bool, seed: int, settings: dict, progress: bool):
        self.mode, self.seed, self.progress, self.settings = (
            "quick" if quick else "full", seed, progress, settings)
        self.configuration = {**settings, "success_rates": list(SUCCESS_RATES),
                              "group_sizes": list(GROUP_SIZES), "targets": list(TARGETS),
                              "rules": list(RULES), "table_tolerance": TABLE_TOLERANCE,
                              "model": "tabular two-outcome softmax per prompt, S = r - p"}
        self.grid = {f"N={n},m={m}": (n, m) for n in TARGETS for m in GROUP_SIZES}
        self.cells = list(self.grid)

    def compute(self, key, record):
        n_target, m = self.grid[key]
        return cell(m, n_target, self.seed, self.settings)

    def derive(self, record):
        return {"summary": summary(record["results"]["cells"])}

    def status(self, record):
        return 0 if _passed(record["results"]["summary"]) else 1

    def outputs(self, record, out):
        return [write_text(out / "binary_rewards.md", markdown(record))]


def markdown(record) -> str:
    """``binary_rewards.md``: the self-checks in words, then the tables."""
    c = record["configuration"]
    lines = header(record, "0/1 rewards: advantage rules against the pass@N oracle",
                   f"success rates {c['success_rates']}, group sizes m ∈ {c['group_sizes']}, "
                   f"targets N ∈ {c['targets']}; {c['batches']} sampled steps of "
                   f"{c['prompts_per_rate']} prompts per rate for the realized cosine, "
                   f"{c['groups']} random groups per (rule, p, m, N) for the table check.")
    checks = record["results"].get("summary")
    if checks:
        verdict = "**all pass**" if _passed(checks) else "**FAILED**"
        lines += ["## Self-checks", "",
                  f"Self-checks {verdict}: the oracle's advantages equal the closed forms to "
                  f"{checks['oracle_closed_form_error']:.1e} × N (tolerance 1e-12); "
                  f"`maxk_loo1` with k = N has alignment 1 to "
                  f"{checks['unbiased_alignment_error']:.1e} (tolerance 1e-9); sampled groups "
                  f"match the exact per-s table to {checks['table_deviation']:.1e} of its "
                  f"largest entry (tolerance {TABLE_TOLERANCE:.0e}).", ""]
    lines += ["## Alignment (exact) / realized cosine (± SE) with the oracle update", ""]
    return "\n".join(lines) + "\n" + table_text(record["results"]["cells"])


def run(args) -> int:
    from ..arguments import overrides
    from ..runner import run_check

    check = BinaryRewards(quick=args.quick, seed=args.seed, settings=_settings(args),
                          progress=args.progress)
    return run_check(check, Path(args.out), overrides=overrides(args))
