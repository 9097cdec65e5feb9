"""What the polynomial control variates of ``tailext validate rates`` buy: per-replication noise.

On the Theorem 2 configuration (β = 1/2, N = 128; docs/math.md#polynomial-controls) each
replication gives three values with the same expectation ``E ĝ`` for every cross-fitted
estimator: its conditional mean ``Σ_j w_j G(τ̂_j)``, that minus the linear control variate,
and that minus the polynomial control variates (coefficients from a separate pilot). This
script draws ``--replications`` replications at each ``m`` (pilot and main blocks from the
check's own streams) and reports, per estimator and view, the per-replication standard
deviation of the value projected on the bias direction — the ``σ`` of ``SE = σ/√R`` — and
its kurtosis. Fewer replications for the same SE is the factor ``(σ_linear/σ_poly)²``.

Usage::

    python benchmarks/rates_controls.py --out benchmarks/results/rates_controls

Writes ``rates_controls.json`` (a record of the shared schema, ``tailext.validate.records``)
and ``rates_controls.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

VIEWS = ("conditional_mean", "controlled_mean", "polynomial_controlled")


def measure(config, m, replications):
    """Per estimator (cross-fitted ones) and view: σ and kurtosis along the bias direction."""
    from tailext.validate.montecarlo.engine import VIEWS as ALL_VIEWS
    from tailext.validate.montecarlo.engine import (block_rewards, controlled_values,
                                                    estimates_and_features, fit_controls)

    controls = fit_controls(config, m)
    bs = config.block_size
    rewards = np.concatenate([block_rewards(config.seed, m, j, bs)
                              for j in range(replications // bs)])
    full = controlled_values(config, *estimates_and_features(config, rewards), controls)
    centred = full - config.model.true_gradient
    rows = []
    for e, spec in enumerate(config.estimators[1:], start=1):
        bias = centred[:, e, 3].mean(axis=0)
        direction = bias / np.linalg.norm(bias)
        row = {"estimator": spec.name, "label": spec.label}
        for view in VIEWS:
            x = centred[:, e, ALL_VIEWS.index(view)] @ direction
            row[view] = {"sd": float(x.std(ddof=1)),
                         "kurtosis": float(stats.kurtosis(x, fisher=False))}
        rows.append(row)
    return rows


def markdown(record):
    config = record["configuration"]
    lines = ["# Polynomial control variates: per-replication noise", "",
             f"β = {config['tail_fraction']}, N = {config['n_target']}, "
             f"{config['replications']} replications per m (+ {config['pilot']} pilot), seed "
             f"{config['seed']}. σ = SD of the value along the bias direction (SE = σ/√R); "
             "κ = its kurtosis; gain = (σ_linear/σ_poly)², the factor fewer replications for "
             "the same SE.", "",
             "| m | estimator | σ conditional mean | σ linear control | σ polynomial | κ poly | "
             "gain |", "|---|---|---|---|---|---|---|"]
    for cell in record["results"]["rows"]:
        for row in cell["estimators"]:
            c, lin, poly = (row[v] for v in VIEWS)
            lines.append(f"| {cell['m']} | {row['label']} | {c['sd']:.2e} | {lin['sd']:.2e} | "
                         f"{poly['sd']:.2e} | {poly['kurtosis']:.0f} | "
                         f"{(lin['sd'] / poly['sd']) ** 2:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from bench_common import Clock, finish_record, tailext_commit

    from tailext.validate.montecarlo.engine import SimulationConfig
    from tailext.validate.montecarlo.model import diagnostic_model
    from tailext.validate.theory.rates import STUDIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--replications", type=int, default=16384)
    parser.add_argument("--pilot", type=int, default=16384)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args(argv)
    study = STUDIES["theorem2"]
    estimators = tuple(spec for spec in study.estimators if spec.sizes != "offset")
    results, clock = [], Clock()
    for m in args.group_sizes:
        config = SimulationConfig(diagnostic_model(study.tail_fraction, 128), (m,),
                                  (args.replications,), 1024, args.seed,
                                  estimators=estimators, controls=True,
                                  pilot_replications=args.pilot)
        start = time.perf_counter()
        rows = measure(config, m, args.replications)
        results.append({"m": m, "estimators": rows, "seconds": time.perf_counter() - start})
        print(f"m={m}: {results[-1]['seconds']:.1f} s", file=sys.stderr)
    configuration = {"tail_fraction": study.tail_fraction, "n_target": 128,
                     "group_sizes": args.group_sizes, "replications": args.replications,
                     "pilot": args.pilot, "seed": args.seed,
                     "estimators": [spec.name for spec in estimators],
                     "commit": tailext_commit()}
    record = finish_record("rates_controls", args.out, seed=args.seed,
                           configuration=configuration, rows=results, clock=clock,
                           markdown=markdown)
    print(markdown(record))


if __name__ == "__main__":
    main()
