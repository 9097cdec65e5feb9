"""What Prefix-TEA's ``ordering`` costs in bias and variance.

The Gaussian-tail model of the Appendix E diagnostic (:mod:`tailext.validate.montecarlo.model`):
rewards ``R ~ N(0, 1)``, score ``S(r) = (tanh r, 1/(1+r²) − E[1/(1+R²)])``, tail fraction
0.1, ``N = 128`` and the absolute scale floor ``s*/2``. Each replication is one group of
``m`` rollouts and gives the advantage-weighted gradient

    ĝ = (1/m) Σ_i A_i S(r_i),    A = prefix_tea(r, ordering=...),

whose mean minus ``g₊* = ∫ ψ₊(r; τ*) S(r) φ(r) dr`` is the bias and whose variance is the
variance (per component of the two-dimensional gradient). ``g₊*`` is the population
gradient of the advantage form, which clips ψ at 0 (the diagnostic's ``g* = G(τ*)``
integrates the unclipped ψ; the clipping's difference does not shrink with ``m``). Two
orders of the rollouts within a group:

* ``iid``: as drawn. Exchangeable rollouts: ``ordering="random"`` must have the
  distribution of ``"given"``; the paired difference ``ĝ_given − ĝ_random`` (same rewards)
  must have mean 0 within its standard error.
* ``length-sorted``: each rollout has a length ``ℓ = ρ z + √(1−ρ²) ε`` correlated with its
  reward's normal score ``z`` (``ρ = --correlation``), and the group arrives sorted by
  length, as after verl's ``_balance_batch``. ``"given"`` then fits its small prefixes on
  the short (low-reward) rollouts; ``"random"`` does not see the order at all.

TEA (no prefixes, order-free) is the reference row. Standard errors: of a mean,
``sd/√R``; of a variance, ``√((μ₄ − σ⁴)/R)`` from the sample fourth central moment.

Usage::

    python benchmarks/prefix_ordering.py --out benchmarks/results/prefix_ordering

Writes ``prefix_ordering.json`` (a record of the shared schema, ``tailext.validate.records``;
one row per (m, order) cell with its seconds) and ``prefix_ordering.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

ORDERS = ("iid", "length-sorted")


def _moments(values):
    """``(mean, se of mean, variance, se of variance)`` per column of ``values[R, d]``."""
    count = values.shape[0]
    mean = values.mean(axis=0)
    centred = values - mean
    variance = (centred ** 2).mean(axis=0) * count / (count - 1)
    fourth = (centred ** 4).mean(axis=0)
    return (mean, np.sqrt(variance / count), variance,
            np.sqrt(np.maximum(fourth - variance ** 2, 0.0) / count))


def clipped_gradient(model):
    """``g₊* = ∫_h^{h+14} max(ψ(r; τ*), 0) S(r) φ(r) dr`` by adaptive quadrature."""
    from scipy.integrate import quad

    from tailext._kernels import psi_value
    from tailext.validate.montecarlo.model import score

    h, mu, s = model.tail_vector

    def integrand(r, component):
        psi = max(psi_value(r, h, mu, s, 1.0 / model.tail_fraction, model.kappa), 0.0)
        return psi * score(r)[component] * np.exp(-0.5 * r * r) / np.sqrt(2.0 * np.pi)

    return np.array([quad(integrand, h, h + 14.0, args=(c,), epsabs=1e-13, limit=200)[0]
                     for c in (0, 1)])


def _gradients(rewards, advantages):
    from tailext.validate.montecarlo.model import score

    return np.einsum("rm,rmd->rd", advantages, score(rewards)) / rewards.shape[1]


def simulate(m, replications, block, order, correlation, seed, model):
    """Gradient estimates ``{estimator: ĝ[R, 2]}`` for one group size and order."""
    import warnings

    import tailext

    options = dict(tail_fraction=model.tail_fraction, n_target=model.n_target,
                   scale_floor=model.scale_floor)
    orderings = np.random.default_rng([seed, m, ORDERS.index(order), 1])
    estimates = {"tea": [], "prefix_tea (given)": [], "prefix_tea (random)": []}
    for start in range(0, replications, block):
        rng = np.random.default_rng([seed, m, start])
        rewards = rng.standard_normal((block, m))
        if order == "length-sorted":
            length = correlation * rewards + np.sqrt(1 - correlation ** 2) * rng.standard_normal(
                rewards.shape)
            rewards = np.take_along_axis(rewards, np.argsort(length, axis=1), axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimates["tea"].append(_gradients(rewards, tailext.tea_advantages(rewards,
                                                                                 **options)))
            for ordering, extra in (("given", {}), ("random", {"seed": orderings})):
                advantages = tailext.prefix_tea_advantages(rewards, ordering=ordering,
                                                           **options, **extra)
                estimates[f"prefix_tea ({ordering})"].append(_gradients(rewards, advantages))
    return {name: np.concatenate(parts) for name, parts in estimates.items()}


def summarize(estimates, true_gradient):
    rows = {}
    for name, values in estimates.items():
        mean, mean_se, variance, variance_se = _moments(values)
        rows[name] = {"bias": (mean - true_gradient).tolist(), "bias_se": mean_se.tolist(),
                      "variance": variance.tolist(), "variance_se": variance_se.tolist()}
    difference = estimates["prefix_tea (given)"] - estimates["prefix_tea (random)"]
    mean, mean_se, _, _ = _moments(difference)
    rows["given − random (paired)"] = {"bias": mean.tolist(), "bias_se": mean_se.tolist()}
    return rows


def markdown(record):
    config = record["configuration"]
    lines = [f"# Prefix-TEA ordering in the Appendix E model (β = {config['tail_fraction']}, "
             f"N = {config['n_target']}, {config['replications']} replications per cell, "
             f"seed {config['seed']}, commit {config['commit']})", "",
             "Bias of ĝ = (1/m) Σ A_i S_i against g₊* = "
             f"{np.round(config['clipped_gradient'], 6).tolist()} and its variance, per "
             "gradient component "
             "(value ± standard error). `length-sorted`: rollouts sorted by a length with "
             f"correlation ρ = {config['correlation']} to the reward.", "",
             "| m | order | estimator | bias₁ | bias₂ | variance₁ | variance₂ |",
             "|---|---|---|---|---|---|---|"]
    for cell in record["results"]["rows"]:
        for name, row in cell["summary"].items():
            bias = [f"{b:+.2e} ± {s:.1e}" for b, s in zip(row["bias"], row["bias_se"])]
            variance = ([f"{v:.3e} ± {s:.1e}" for v, s in zip(row["variance"],
                                                              row["variance_se"])]
                        if "variance" in row else ["", ""])
            lines.append(f"| {cell['m']} | {cell['order']} | {name} | "
                         + " | ".join(bias + variance) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from bench_common import Clock, finish_record, tailext_commit

    from tailext.validate.montecarlo.model import diagnostic_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--replications", type=int, default=65536)
    parser.add_argument("--block", type=int, default=4096)
    parser.add_argument("--correlation", type=float, default=0.5)
    parser.add_argument("--tail-fraction", type=float, default=0.1)
    parser.add_argument("--n-target", type=int, default=128)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    if args.replications % args.block:
        parser.error("--replications must be a multiple of --block")
    model = diagnostic_model(args.tail_fraction, args.n_target)
    target = clipped_gradient(model)
    commit = tailext_commit()
    results, clock = [], Clock()
    for m in args.group_sizes:
        for order in ORDERS:
            cell_start = time.perf_counter()
            estimates = simulate(m, args.replications, args.block, order, args.correlation,
                                 args.seed, model)
            results.append({"m": m, "order": order,
                            "summary": summarize(estimates, target),
                            "seconds": time.perf_counter() - cell_start})
            print(f"m={m} {order}: {results[-1]['seconds']:.1f} s", file=sys.stderr)
    config = {"group_sizes": args.group_sizes, "replications": args.replications,
              "block": args.block, "correlation": args.correlation,
              "tail_fraction": args.tail_fraction, "n_target": args.n_target,
              "scale_floor": model.scale_floor, "seed": args.seed,
              "true_gradient": model.true_gradient.tolist(),
              "clipped_gradient": target.tolist(), "commit": commit}
    record = finish_record("prefix_ordering", args.out, seed=args.seed, configuration=config,
                           rows=results, clock=clock, markdown=markdown)
    print(markdown(record))


if __name__ == "__main__":
    main()
