"""Time per call of every advantage rule (numba/numpy and torch CPU) against numpy GRPO-Z.

For each ``[B, m]`` shape the same float64 rewards (seeded) go to every rule; each timing is
the best of ``--repeats`` calls after a warm-up call (numba compilation excluded). Ratios are
to a vectorized numpy GRPO-Z ``(r − mean)/(std + 1e-6)`` on the same array, measured in the
same run (alternating calls), because absolute times on a shared machine are noise. Results are
written as a record of the shared schema (``tailext.validate.records``: configuration, seed,
environment, timing, completeness) in ``bench_advantages.json`` and a markdown table in
``bench_advantages.md`` into ``--out``, after every shape.

Usage::

    python benchmarks/bench_advantages.py --out results/bench --threads 1

Other scripts add rows (e.g. verl's estimator on the flat batch) through ``extra_rows``::

    from bench_advantages import main, timed_row
    def verl_rows(rewards, repeats):          # rewards: the [B, m] float64 array of the shape
        return [timed_row("grpo", "verl", lambda: ..., rewards, repeats)]
    main(extra_rows=[verl_rows])

The core target: ``tea`` on ``[4096, 64]`` float64 ≤ 2× the numpy GRPO-Z time with one
thread (reported as ``target`` in the JSON).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tailext.validate.records import Clock, environment, new_record, write_record, write_text

DEFAULT_SHAPES = ("4096x16", "4096x64", "1024x1024")
TARGET = {"method": "tea", "backend": "numba", "shape": "4096x64", "max_ratio": 2.0}


def parse_shape(text):
    """``"4096x64"`` → ``(4096, 64)``."""
    try:
        groups, size = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 4096x64, got {text!r}")
    if groups < 1 or size < 2:
        raise argparse.ArgumentTypeError(f"shape needs B >= 1 and m >= 2, got {text!r}")
    return groups, size


def paired_best_times(function, baseline, repeats):
    """Best wall times ``(function, baseline)`` over ``repeats`` alternating calls.

    One warm-up call each first (numba compilation excluded). Alternating the two calls
    exposes both to the same machine load, so their ratio is stable even when absolute
    times drift on a shared machine.
    """
    function()
    baseline()
    best, best_baseline = float("inf"), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        middle = time.perf_counter()
        baseline()
        best = min(best, middle - start)
        best_baseline = min(best_baseline, time.perf_counter() - middle)
    return best, best_baseline


def numpy_grpo_z(rewards):
    """The reference point: vectorized numpy ``(r − mean) / (std + 1e-6)`` per row."""
    return (rewards - rewards.mean(axis=1, keepdims=True)) / (
        rewards.std(axis=1, keepdims=True) + 1e-6)


def _options(method):
    return {"seed": 0} if method == "chow_bon_rl" else {}


def timed_row(method, backend, call, rewards, repeats):
    """A result row for ``call``, timed in alternation with numpy GRPO-Z on ``rewards``.

    The hook for other scripts: rows from ``extra_rows`` callables should be built with this.
    """
    try:
        seconds, baseline = paired_best_times(call, lambda: numpy_grpo_z(rewards), repeats)
    except ValueError as error:  # e.g. the group is too small for Prefix-TEA
        return {"method": method, "backend": backend, "seconds": None, "ratio": None,
                "error": str(error)}
    return {"method": method, "backend": backend, "seconds": seconds,
            "baseline_seconds": baseline, "ratio": seconds / baseline}


def tailext_rows(rewards, repeats, methods, backends):
    """One :func:`timed_row` per (method, backend)."""
    import tailext

    rows = []
    for method in methods:
        for backend in backends:
            if backend == "numba":
                call = (lambda m=method: tailext.advantages(rewards, method=m, **_options(m)))
            else:
                import torch
                import tailext.torch as tt

                tensor = torch.from_numpy(rewards)
                call = (lambda m=method: tt.advantages(tensor, method=m, **_options(m)))
            rows.append(timed_row(method, backend, call, rewards, repeats))
    return rows


def benchmark_environment(packages=()) -> dict:
    """The shared record environment plus the processor and Python implementation."""
    return {**environment(packages), "processor": platform.processor() or platform.machine(),
            "python_implementation": platform.python_implementation()}


def set_threads(threads):
    if threads is None:
        return
    import numba

    numba.set_num_threads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def markdown(record):
    config, results = record["configuration"], record["results"]
    shapes = config["shapes"]
    threads = record["environment"]["threads"]
    lines = [f"# Advantage benchmark (numba threads {threads['numba']}, torch threads "
             f"{threads.get('torch')})", "",
             "Best-of-{} time per call in ms and the ratio to numpy GRPO-Z on the same "
             "array (timed in alternation with each row).".format(config["repeats"]), "",
             "| method | backend | " + " | ".join(shapes) + " |",
             "|---|---|" + "---|" * len(shapes)]
    cells = {}
    for row in results["rows"]:
        key = (row["method"], row["backend"])
        if row.get("seconds") is None:
            text = "n/a"
        else:
            text = f"{1e3 * row['seconds']:.3g} ms ({row['ratio']:.2f}×)"
        cells.setdefault(key, {})[row["shape"]] = text
    for (method, backend), by_shape in cells.items():
        lines.append(f"| {method} | {backend} | "
                     + " | ".join(by_shape.get(shape, "") for shape in shapes) + " |")
    target = results.get("target")
    if target:
        verdict = {True: "met", False: "missed", None: "not measured"}[target["met"]]
        lines += ["", f"Target: {target['method']} ({target['backend']}) on "
                      f"{target['shape']} ≤ {target['max_ratio']}× numpy GRPO-Z: ratio "
                      f"{target['ratio']}, {verdict} (threads: "
                      f"{threads['numba']})."]
    if not record["completeness"]["complete"]:
        lines += ["", f"**Interrupted**: {record['completeness']['finished']} of "
                      f"{record['completeness']['total']} shapes measured."]
    return "\n".join(lines) + "\n"


def write(record, out, clock, *, interrupted=False):
    """The record (shared schema) and its markdown, atomically."""
    clock.stamp(record, cells_run=record["completeness"]["finished"], interrupted=interrupted)
    write_record(out / "bench_advantages.json", record)
    write_text(out / "bench_advantages.md", markdown(record))


def _target(results):
    for row in results:
        if all(row.get(key) == TARGET[key] for key in ("method", "backend", "shape")):
            ratio = row.get("ratio")
            return {**TARGET, "ratio": ratio,
                    "met": None if ratio is None else ratio <= TARGET["max_ratio"]}
    return {**TARGET, "ratio": None, "met": None}


def main(argv=None, extra_rows=()):
    """Run the benchmark; ``extra_rows`` are callables ``f(rewards, repeats) -> rows``."""
    import tailext

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"),
                        help="output directory for bench_advantages.{json,md}")
    parser.add_argument("--shapes", type=parse_shape, nargs="+",
                        default=[parse_shape(s) for s in DEFAULT_SHAPES],
                        help="B x m shapes, e.g. 4096x64 (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="rules to time (default: every registered rule)")
    parser.add_argument("--backends", nargs="+", default=["numba", "torch"],
                        choices=["numba", "torch"])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell")
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats per cell (recorded as a quick run)")
    parser.add_argument("--threads", type=int, default=None,
                        help="numba and torch thread count (the target is for 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rewards")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 3
    if args.repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--repeats and --threads must be >= 1")
    set_threads(args.threads)
    methods = args.methods or tailext.available_methods()
    unknown = sorted(set(methods) - set(tailext.available_methods()))
    if unknown:
        parser.error(f"unknown methods {unknown}")
    shapes = [f"{b}x{m}" for b, m in args.shapes]
    config = {"shapes": shapes, "methods": methods, "backends": args.backends,
              "repeats": args.repeats, "threads": args.threads, "seed": args.seed,
              "dtype": "float64", "baseline": "numpy (r - mean)/(std + 1e-6)"}
    clock = Clock()
    record = new_record("bench_advantages", seed=args.seed, configuration=config,
                        mode="quick" if args.quick else "full", total=len(shapes))
    record["environment"] = benchmark_environment()
    record["results"] = {"rows": [], "target": None}
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        from tqdm import tqdm
    except ImportError:  # progress bar is optional
        def tqdm(items, **_):
            return items
    rng = np.random.default_rng(args.seed)
    try:
        for (n_groups, m), shape in tqdm(list(zip(args.shapes, shapes)), desc="shapes"):
            rewards = rng.normal(size=(n_groups, m))
            rows = [timed_row("grpo_z (numpy reference)", "numpy",
                              lambda: numpy_grpo_z(rewards), rewards, args.repeats)]
            rows += tailext_rows(rewards, args.repeats, methods, args.backends)
            for extra in extra_rows:
                rows += extra(rewards, args.repeats)
            for row in rows:
                row["shape"] = shape
            record["results"]["rows"] += rows
            record["completeness"]["finished"] += 1
            write(record, args.out, clock)  # partial results survive an interrupt
    except KeyboardInterrupt:
        print("interrupted: writing the results measured so far", file=sys.stderr)
    done = record["completeness"]
    done["complete"] = done["finished"] == done["total"]
    record["results"]["target"] = _target(record["results"]["rows"])
    write(record, args.out, clock, interrupted=not done["complete"])
    print(markdown(record))
    return 0 if done["complete"] else 130


if __name__ == "__main__":
    sys.exit(main())
