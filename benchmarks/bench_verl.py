"""Time verl's advantage estimators against tailext's rules registered in verl.

For each flat batch of ``B`` prompts × ``m`` rollouts (verl layout: ``token_level_rewards``
``[B·m, T]``, ``response_mask``, ``uid`` strings), calls every estimator through verl's own
registry (``get_adv_estimator_fn``) exactly as verl's ``compute_advantage`` does, and reports
the median time per call and its ratio to verl's built-in ``grpo`` (a per-sample Python loop)
measured in the same run on the same batch.

Usage::

    python benchmarks/bench_verl.py                       # 4096x16, 4096x64, 1024x1024
    python benchmarks/bench_verl.py --shapes 4096x16 --methods tea prefix_tea --repeats 5

Writes ``<out>.json`` (a record of the shared schema, ``tailext.validate.records``:
configuration, seed, environment, timing, completeness, every timing) and ``<out>.md``;
partial results are written after every measurement, so an interrupted run (Ctrl-C) keeps
what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_advantages import benchmark_environment, parse_shape  # same BxM syntax

from tailext.validate.records import Clock, new_record, write_record, write_text

QUICK = {"shapes": [(4096, 16), (4096, 64)], "repeats": 3, "max_seconds": 10.0}

VERL_BUILTINS = ("grpo", "grpo_vectorized")
REFERENCE = "grpo"  # verl's per-sample-loop estimator: the ratio's denominator


def configure_parser(parser):
    parser.add_argument("--shapes", nargs="+", type=parse_shape,
                        default=[(4096, 16), (4096, 64), (1024, 1024)],
                        help="batch shapes BxM (prompts x rollouts per prompt)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="tailext rules to time (default: all registered)")
    parser.add_argument("--response-length", type=int, default=8,
                        help="tokens per response T (the reward sits on the last valid one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per estimator")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop repeating one estimator after this much time (>= 1 call)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads for every estimator (verl's grpo loop is "
                             "serial; one thread also avoids oversubscribing a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/bench_verl",
                        help="output path without extension (.json and .md are written)")
    parser.add_argument("--quick", action="store_true",
                        help="shapes 4096x16 and 4096x64, 3 repeats, at most 10 s per "
                             "estimator (recorded as a quick run)")
    return parser


def verl_batch(groups, size, response_length, seed):
    """Flat verl batch: each prompt's rollouts adjacent, one uid string per prompt."""
    import torch

    rng = np.random.default_rng(seed)
    samples = groups * size
    uids = np.repeat(np.array([f"{i:08x}-uid" for i in range(groups)], dtype=object), size)
    lengths = rng.integers(1, response_length + 1, size=samples)
    mask = (np.arange(response_length)[None, :] < lengths[:, None]).astype(np.int64)
    token_rewards = np.zeros((samples, response_length), dtype=np.float32)
    token_rewards[np.arange(samples), lengths - 1] = rng.normal(size=samples)
    return torch.from_numpy(token_rewards), torch.from_numpy(mask), uids


def time_calls(function, kwargs, repeats, max_seconds):
    """Wall and process-CPU seconds of each timed call (after one untimed warm-up call)."""
    function(**kwargs)  # warm-up: numba compilation / caches, not timed
    wall, cpu = [], []
    started = time.perf_counter()
    while len(wall) < repeats and (not wall or time.perf_counter() - started < max_seconds):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        function(**kwargs)
        wall.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    return wall, cpu


def write_results(out, record, clock, *, interrupted=False):
    """The record (shared schema) and its markdown, atomically."""
    clock.stamp(record, cells_run=record["completeness"]["finished"], interrupted=interrupted)
    write_record(out.with_suffix(".json"), record)
    env, config = record["environment"], record["configuration"]
    lines = [
        "# tailext rules through verl vs verl's built-in estimators", "",
        f"verl {env['verl']}, tailext {env['tailext']}, torch {env['torch']}, "
        f"{env['processor']} ({env['cpu_count']} CPUs, torch threads: "
        f"{env['threads'].get('torch')}). Seed {config['seed']}, T = "
        f"{config['response_length']}. Median seconds per call; ratio = verl `grpo`"
        " time / this estimator's time, on the same batch in the same run "
        "(> 1: faster than verl's `grpo`); the CPU columns use process CPU time, which "
        "other load on the machine disturbs less.", "",
        "| B×m | estimator | source | calls | median s | ratio vs verl grpo "
        "| median CPU s | CPU ratio |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]

    def ratio(value):
        return "" if value is None else f"{value:.1f}×"

    for row in record["results"]["rows"]:
        lines.append(f"| {row['shape']} | `{row['estimator']}` | {row['source']} | "
                     f"{len(row['times_s'])} | {row['median_s']:.4g} | "
                     f"{ratio(row['ratio_vs_verl_grpo'])} | {row['median_cpu_s']:.4g} | "
                     f"{ratio(row['cpu_ratio_vs_verl_grpo'])} |")
    if not record["completeness"]["complete"] and interrupted:
        lines += ["", "*Interrupted: partial results.*"]
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


def run(args):
    import torch
    from tqdm import tqdm
    from verl.trainer.ppo import core_algos

    import tailext
    from tailext.integrations.verl import register

    torch.set_num_threads(args.torch_threads)
    names = register()
    methods = args.methods or tailext.available_methods()
    for method in methods:
        tailext.get_rule(method)  # unknown -> clear error before any timing
    config = {"shapes": [f"{b}x{m}" for b, m in args.shapes], "methods": methods,
              "verl_builtins": list(VERL_BUILTINS), "response_length": args.response_length,
              "repeats": args.repeats, "max_seconds": args.max_seconds, "seed": args.seed,
              "torch_threads": args.torch_threads}
    out = Path(args.out)
    jobs = [(shape, name, "verl built-in") for shape in args.shapes for name in VERL_BUILTINS]
    jobs += [(shape, names[method], "tailext via verl") for shape in args.shapes
             for method in methods]
    jobs.sort(key=lambda job: args.shapes.index(job[0]))
    clock = Clock()
    record = new_record("bench_verl", seed=args.seed, configuration=config,
                        mode="quick" if args.quick else "full", total=len(jobs))
    record["environment"] = benchmark_environment(packages=("verl",))
    record["results"] = {"rows": []}
    report = record["results"]
    batches = {}
    try:
        for (groups, size), name, source in tqdm(jobs, desc="estimators"):
            if (groups, size) not in batches:
                batches = {(groups, size): verl_batch(groups, size, args.response_length,
                                                      args.seed)}
            token_rewards, mask, uids = batches[(groups, size)]
            kwargs = {"token_level_rewards": token_rewards, "response_mask": mask,
                      "index": uids, "config": None}
            times, cpu_times = time_calls(core_algos.get_adv_estimator_fn(name), kwargs,
                                          args.repeats, args.max_seconds)
            shape = f"{groups}x{size}"
            row = {"shape": shape, "estimator": name, "source": source, "times_s": times,
                   "median_s": statistics.median(times), "cpu_times_s": cpu_times,
                   "median_cpu_s": statistics.median(cpu_times)}
            reference = row if name == REFERENCE else next(
                (done for done in report["rows"]
                 if done["shape"] == shape and done["estimator"] == REFERENCE), None)
            for key, ratio_key in (("median_s", "ratio_vs_verl_grpo"),
                                   ("median_cpu_s", "cpu_ratio_vs_verl_grpo")):
                row[ratio_key] = None if reference is None else reference[key] / row[key]
            report["rows"].append(row)
            record["completeness"]["finished"] += 1
            record["completeness"]["complete"] = (record["completeness"]["finished"]
                                                  == record["completeness"]["total"])
            write_results(out, record, clock)
    except KeyboardInterrupt:
        write_results(out, record, clock, interrupted=True)
        print("interrupted; partial results written", file=sys.stderr)
        return 130
    print(out.with_suffix(".md").read_text())
    return 0


def main(argv=None):
    parser = configure_parser(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
