"""Cost of the torch rules with and without a validity mask (CPU).

For each rule, on the same seeded ``[B, m]`` rewards, the best-of-``--repeats`` time of
``tailext.torch.advantages`` with

* ``valid=None`` (``check_finite=True``: the rule sees no mask),
* an all-True ``valid`` (the masked code with nothing masked: the price of the masking ops),
* a ``valid`` with ``--invalid`` of the rollouts marked invalid at random,
* ``check_finite=False`` without ``valid`` (sync-free: non-finite rewards become invalid
  rollouts, so the rule always gets a mask),

each timed in alternation with the first, so that machine load hits all alike. Wall and
process-CPU times are recorded; ratios are to the ``valid=None`` time.

Usage::

    python benchmarks/bench_torch_masks.py --out benchmarks/results/torch_masks --threads 1

Writes ``bench_torch_masks.json`` (a record of the shared schema, ``tailext.validate.records``)
and ``bench_torch_masks.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("valid=None", "all-True mask", "masked", "check_finite=False")


def best_times(calls, repeats):
    """Best (wall, CPU) seconds of each call over ``repeats`` alternating rounds."""
    for call in calls:  # warm-up
        call()
    best = [[np.inf, np.inf] for _ in calls]
    for _ in range(repeats):
        for slot, call in zip(best, calls):
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            slot[0] = min(slot[0], time.perf_counter() - wall)
            slot[1] = min(slot[1], time.process_time() - cpu)
    return best


def run(shape, dtype_name, invalid, repeats, seed):
    import torch

    import tailext.torch as tt

    rng = np.random.default_rng(seed)
    dtype = getattr(torch, dtype_name)
    rewards = torch.tensor(rng.normal(size=shape)).to(dtype)
    full = torch.ones(shape, dtype=torch.bool)
    valid = torch.tensor(rng.random(shape) >= invalid)
    from bench_common import rule_variants

    rows = []
    for name, (method, options) in rule_variants().items():
        def call(**kwargs):
            return lambda: tt.advantages(rewards, method, **options, **kwargs)

        calls = [call(), call(valid=full), call(valid=valid), call(check_finite=False)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times = best_times(calls, repeats)
        base_wall, base_cpu = times[0]
        rows.append({"method": name, "options": options, **{
            variant: {"wall_s": wall, "cpu_s": cpu, "wall_ratio": wall / base_wall,
                      "cpu_ratio": cpu / base_cpu}
            for variant, (wall, cpu) in zip(VARIANTS, times)}})
    return rows


def markdown(record):
    config = record["configuration"]
    lines = [f"# torch rules, masked vs unmasked ({config['shape']} {config['dtype']}, torch "
             f"threads {record['environment']['threads'].get('torch')}, commit "
             f"{config['commit']})",
             "", f"Best-of-{config['repeats']} CPU milliseconds per call (process time; wall "
             "in the JSON) and the ratio to `valid=None`. `masked`: "
             f"{config['invalid']:.0%} of the rollouts invalid.", "",
             "| method | " + " | ".join(VARIANTS) + " |", "|---|" + "---|" * len(VARIANTS)]
    for row in record["results"]["rows"]:
        cells = [f"{1e3 * row[v]['cpu_s']:.2f} ({row[v]['cpu_ratio']:.2f}×)" for v in VARIANTS]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from bench_advantages import parse_shape, set_threads
    from bench_common import Clock, finish_record, tailext_commit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", type=parse_shape, default=(4096, 64))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--invalid", type=float, default=0.2,
                        help="fraction of invalid rollouts in the masked variant")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    commit = tailext_commit()
    clock = Clock()
    results = run(args.shape, args.dtype, args.invalid, args.repeats, args.seed)
    config = {"shape": "x".join(map(str, args.shape)), "dtype": args.dtype,
              "invalid": args.invalid, "repeats": args.repeats, "seed": args.seed,
              "threads": args.threads, "commit": commit}
    record = finish_record("bench_torch_masks", args.out, seed=args.seed,
                           configuration=config, rows=results, clock=clock, markdown=markdown)
    print(markdown(record))


if __name__ == "__main__":
    main()
