"""Time every rule of the torch adapter on one device against torch GRPO-Z on that device.

For each ``[B, m]`` shape and dtype, the same seeded ``N(0, 1)`` rewards (drawn in float64,
rounded to the dtype, placed on ``--device``) go to every row of
:func:`bench_common.rule_variants` through ``tailext.torch.advantages``, in two variants:
the default ``check_finite=True`` (one device-to-host sync per call) and
``check_finite=False`` (sync-free). All calls of one (shape, dtype) are timed together in
interleaved rounds, each round calling every function once in a seeded shuffled order, after
``--warmup`` calls each. On CUDA each call is bracketed by a pair of CUDA events, read after
the round's ``synchronize`` (the device time from the call's first launch to its last,
idle gaps while the host launches included); on other devices by the wall clock. A row's
time is the median over the rounds and its ratio is to tailext's ``grpo`` (GRPO-Z,
``(r − r̄)/(sd + 1e-6)``) in the same variant, in the same rounds. The plain torch expression
of GRPO-Z, ``(r - r.mean(1)) / (r.std(1) + 1e-6)`` in the rewards' dtype, is one more row
(its ratio is to the default ``grpo`` call).

Usage::

    python benchmarks/bench_torch_device.py --out results/device --device cuda

Writes ``bench_torch_device.json`` (a record of the shared schema,
``tailext.validate.records``, rewritten after every shape and dtype, so an interrupted run
keeps what it measured) and ``bench_torch_device.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAME = "bench_torch_device"
DEFAULT_SHAPES = ("4096x16", "4096x64", "1024x1024", "65536x64")
DEFAULT_DTYPES = ("float32", "bfloat16")
VARIANTS = {"check_finite=True": {}, "check_finite=False": {"check_finite": False}}
BASELINE = "grpo"
PLAIN = "grpo_z (plain torch)"


def plain_grpo_z(rewards):
    """GRPO-Z as a trainer writes it in torch, in the rewards' own dtype."""
    return (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)


def device_medians(calls, rounds, warmup, device, seed=0):
    """Median seconds per call of every function in ``calls`` (name → function) on
    ``device``: ``warmup`` calls each, then ``rounds`` rounds in a seeded shuffled order,
    timed by CUDA events on CUDA and by the wall clock elsewhere."""
    import torch

    cuda = device.type == "cuda"
    for function in calls.values():
        for _ in range(warmup):
            function()
    if cuda:
        torch.cuda.synchronize(device)
    names = list(calls)
    seconds = {name: [] for name in names}
    order = np.random.default_rng(seed)
    for _ in range(rounds):
        events = []
        for index in order.permutation(len(names)):
            name = names[index]
            if cuda:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                calls[name]()
                end.record()
                events.append((name, start, end))
            else:
                began = time.perf_counter()
                calls[name]()
                seconds[name].append(time.perf_counter() - began)
        if cuda:
            torch.cuda.synchronize(device)
            for name, start, end in events:
                seconds[name].append(start.elapsed_time(end) / 1e3)  # elapsed_time: ms
    return {name: statistics.median(values) for name, values in seconds.items()}


def shape_rows(rewards, rounds, warmup, seed):
    """The rows of one rewards tensor: every rule in both variants, and the plain GRPO-Z."""
    import tailext
    import tailext.torch as tt
    from bench_common import rule_variants

    m = rewards.shape[1]
    calls, rows, variants = {}, [], rule_variants()
    for name, (method, options) in variants.items():
        rule = tailext.get_rule(method)
        if m < rule.min_group_size(**rule.resolve(options)):
            rows += [{"method": name, "variant": variant, "seconds": None,
                      "error": f"m = {m} is too small for {method}"} for variant in VARIANTS]
            continue
        for variant, extra in VARIANTS.items():
            def call(method=method, options={**options, **extra}):
                return tt.advantages(rewards, method, **options)
            try:
                call()
            except (ValueError, RuntimeError) as error:  # recorded, the other rows go on
                rows.append({"method": name, "variant": variant, "seconds": None,
                             "error": str(error)[:200]})
                continue
            calls[name, variant] = call
    calls[PLAIN, "plain"] = lambda: plain_grpo_z(rewards)
    times = device_medians(calls, rounds, warmup, rewards.device, seed)
    for (name, variant), seconds in times.items():
        base = times.get((BASELINE, variant), times.get((BASELINE, "check_finite=True")))
        rows.append({"method": name, "options": variants.get(name, (None, {}))[1],
                     "variant": variant, "seconds": seconds,
                     "ratio": None if base is None else seconds / base})
    order = {name: index for index, name in enumerate(variants)}
    return sorted(rows, key=lambda row: order.get(row["method"], len(order)))  # stable


def _cell(row):
    if row.get("seconds") is None:
        return "n/a"
    ratio = "" if row.get("ratio") is None else f" ({row['ratio']:.2f}×)"
    return f"{1e3 * row['seconds']:.3g} ms{ratio}"


def markdown(record):
    config, env = record["configuration"], record["environment"]
    shapes = config["shapes"]
    lines = [f"# torch rules on {config['device_name']} ({config['device']})", "",
             f"Command: `{config['command']}`. torch {env.get('torch')}, tailext "
             f"{env['tailext']} (commit {config['commit']}), python {env['python']}; seed "
             f"{record['seed']}, {config['warmup']} warm-up calls, median over "
             f"{config['repeats']} interleaved rounds ({config['timer']}). Ratio: to "
             f"tailext `{BASELINE}` (GRPO-Z) in the same variant and rounds.", ""]
    if not record["completeness"]["complete"]:
        done = record["completeness"]
        lines += [f"**Partial**: {done['finished']} of {done['total']} (shape, dtype) "
                  "configurations measured.", ""]
    rows = record["results"]["rows"]
    for dtype in config["dtypes"]:
        mine = [row for row in rows if row["dtype"] == dtype]
        if not mine:
            continue
        lines += [f"## {dtype}", "", "| method | variant | " + " | ".join(shapes) + " |",
                  "|---|---|" + "---|" * len(shapes)]
        table = {}
        for row in mine:
            table.setdefault((row["method"], row["variant"]), {})[row["shape"]] = _cell(row)
        for (method, variant), cells in table.items():
            lines.append(f"| {method} | {variant} | "
                         + " | ".join(cells.get(shape, "") for shape in shapes) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    import torch

    from bench_advantages import benchmark_environment, parse_shape
    from bench_common import Clock, tailext_commit
    from tailext.validate.arguments import cuda_problem, device
    from tailext.validate.records import new_record, write_record, write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", type=device, default="cuda")
    parser.add_argument("--shapes", type=parse_shape, nargs="+",
                        default=[parse_shape(s) for s in DEFAULT_SHAPES])
    parser.add_argument("--dtypes", nargs="+", default=list(DEFAULT_DTYPES),
                        choices=("float16", "bfloat16", "float32", "float64"))
    parser.add_argument("--repeats", type=int, default=25, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up calls per function")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rewards and order")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 1:
        parser.error(f"--repeats and --warmup must be >= 1, got {args.repeats} and "
                     f"{args.warmup}")
    problem = cuda_problem(args.device)
    if problem:
        parser.error(problem)
    where = torch.device(args.device)
    if where.type == "cuda":
        torch.cuda.set_device(where)  # the events record on this device's current stream
    shapes = [f"{b}x{m}" for b, m in args.shapes]
    config = {"device": args.device,
              "device_name": (torch.cuda.get_device_name(where) if where.type == "cuda"
                              else "CPU"),
              "timer": "CUDA events" if where.type == "cuda" else "wall clock",
              "shapes": shapes, "dtypes": args.dtypes, "repeats": args.repeats,
              "warmup": args.warmup, "variants": list(VARIANTS), "baseline": BASELINE,
              "commit": tailext_commit(),
              "command": " ".join(["python benchmarks/bench_torch_device.py",
                                   *(argv if argv is not None else sys.argv[1:])])}
    clock = Clock()
    record = new_record(NAME, seed=args.seed, configuration=config, mode="full",
                        total=len(shapes) * len(args.dtypes))
    record["environment"] = benchmark_environment()
    record["results"] = {"rows": []}
    rng = np.random.default_rng(args.seed)
    for (groups, size), shape in zip(args.shapes, shapes):
        values = rng.normal(size=(groups, size))
        for dtype in args.dtypes:
            rewards = torch.tensor(values).to(device=where, dtype=getattr(torch, dtype))
            rows = shape_rows(rewards, args.repeats, args.warmup, args.seed)
            record["results"]["rows"] += [{"shape": shape, "dtype": dtype, **row}
                                          for row in rows]
            done = record["completeness"]
            done["finished"] += 1
            done["complete"] = done["finished"] == done["total"]
            clock.stamp(record, cells_run=done["finished"], interrupted=False)
            write_record(args.out / f"{NAME}.json", record)
            write_text(args.out / f"{NAME}.md", markdown(record))
            print(f"{shape} {dtype}: {len(rows)} rows", file=sys.stderr, flush=True)
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
