"""Time verl's advantage estimators against tailext's rules registered in verl.

For each flat batch of ``B`` prompts × ``m`` rollouts (verl layout: ``token_level_rewards``
``[B·m, T]``, ``response_mask``, ``uid`` strings), calls every estimator through verl's own
registry (``get_adv_estimator_fn``) exactly as verl's ``compute_advantage`` does, and reports
the median time per call and its ratio to verl's built-in ``grpo`` (a per-sample Python loop)
measured in the same run on the same batch.

Usage::

    python benchmarks/bench_verl.py                       # 4096x16, 4096x64, 1024x1024
    python benchmarks/bench_verl.py --shapes 4096x16 --methods tea prefix_tea --repeats 5

Writes ``<out>.json`` (configuration, seed, machine, versions, every timing) and
``<out>.md``; partial results are written after every measurement, so an interrupted run
(Ctrl-C) keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from bench_advantages import parse_shape  # same BxM syntax as the advantage benchmark

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


def environment():
    import torch

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    import tailext

    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"tailext": tailext.__version__, "verl": version("verl"),
                     "torch": torch.__version__, "numpy": np.__version__,
                     "numba": version("numba")},
    }


def write_results(out, report):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# tailext rules through verl vs verl's built-in estimators", "",
        f"verl {report['environment']['versions']['verl']}, tailext "
        f"{report['environment']['versions']['tailext']}, torch "
        f"{report['environment']['versions']['torch']}, {report['environment']['processor']} "
        f"({report['environment']['cpu_count']} CPUs, torch threads: "
        f"{report['environment']['torch_threads']}). Seed {report['config']['seed']}, T = "
        f"{report['config']['response_length']}. Median seconds per call; ratio = verl `grpo`"
        " time / this estimator's time, on the same batch in the same run "
        "(> 1: faster than verl's `grpo`); the CPU columns use process CPU time, which "
        "other load on the machine disturbs less.", "",
        "| B×m | estimator | source | calls | median s | ratio vs verl grpo "
        "| median CPU s | CPU ratio |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]

    def ratio(value):
        return "" if value is None else f"{value:.1f}×"

    for row in report["results"]:
        lines.append(f"| {row['shape']} | `{row['estimator']}` | {row['source']} | "
                     f"{len(row['times_s'])} | {row['median_s']:.4g} | "
                     f"{ratio(row['ratio_vs_verl_grpo'])} | {row['median_cpu_s']:.4g} | "
                     f"{ratio(row['cpu_ratio_vs_verl_grpo'])} |")
    if report.get("interrupted"):
        lines += ["", "*Interrupted: partial results.*"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


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
    report = {"config": {"shapes": [f"{b}x{m}" for b, m in args.shapes], "methods": methods,
                         "verl_builtins": list(VERL_BUILTINS),
                         "response_length": args.response_length, "repeats": args.repeats,
                         "max_seconds": args.max_seconds, "seed": args.seed,
                         "torch_threads": args.torch_threads},
              "environment": environment(), "results": [], "interrupted": False}
    out = Path(args.out)
    jobs = [(shape, name, "verl built-in") for shape in args.shapes for name in VERL_BUILTINS]
    jobs += [(shape, names[method], "tailext via verl") for shape in args.shapes
             for method in methods]
    jobs.sort(key=lambda job: args.shapes.index(job[0]))
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
                (done for done in report["results"]
                 if done["shape"] == shape and done["estimator"] == REFERENCE), None)
            for key, ratio_key in (("median_s", "ratio_vs_verl_grpo"),
                                   ("median_cpu_s", "cpu_ratio_vs_verl_grpo")):
                row[ratio_key] = None if reference is None else reference[key] / row[key]
            report["results"].append(row)
            write_results(out, report)
    except KeyboardInterrupt:
        report["interrupted"] = True
        write_results(out, report)
        print("interrupted; partial results written", file=sys.stderr)
        return 130
    print(out.with_suffix(".md").read_text())
    return 0


def main(argv=None):
    parser = configure_parser(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
