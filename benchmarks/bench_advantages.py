"""Time per call of every advantage rule (numba/numpy and torch CPU) against numpy GRPO-Z.

For each ``[B, m]`` shape the same float64 rewards (seeded) go to every rule. All calls of a
shape are timed in interleaved rounds (each round calls every function once, in a shuffled
order, so machine load falls on all of them alike) after one warm-up call each (numba
compilation excluded), and each function's time is the **median** over the rounds, as wall
time and as the calling thread's CPU time (``time.thread_time``: with one numba/torch thread
all the work runs in the calling thread, and CPU time ignores the time a loaded machine
keeps the process waiting). Ratios are to the vectorized numpy GRPO-Z
``(r − r.mean(1)) / (r.std(1, ddof=1) + 1e-6)`` on the same array in the same rounds, and
for TEA also to a fused one-pass numba GRPO-Z (:func:`fused_grpo_z`). The wrapper overhead
of :func:`tailext.advantages` (validation, dispatch, output check) is the median time of the
call with the rule's kernel replaced by one that returns a precomputed result, relative to
the median time of the kernel itself (``rule.numpy`` on the validated batch). Results are
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

The targets (``targets`` in the JSON), with one thread on ``[4096, 64]``: ``tea`` ≤ 1.0×
numpy GRPO-Z and ≤ 2.5× the fused numba GRPO-Z; the wrapper overhead ≤ 10 % of the kernel
time for every rule.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from tailext.validate.records import Clock, environment, new_record, write_record, write_text

DEFAULT_SHAPES = ("4096x16", "4096x64", "1024x1024")
TARGET_SHAPE = "4096x64"
TARGETS = {"tea_vs_numpy_grpo_z": 1.0, "tea_vs_fused_grpo_z": 2.5, "max_overhead": 0.10}


def parse_shape(text):
    """``"4096x64"`` → ``(4096, 64)``."""
    try:
        groups, size = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 4096x64, got {text!r}")
    if groups < 1 or size < 2:
        raise argparse.ArgumentTypeError(f"shape needs B >= 1 and m >= 2, got {text!r}")
    return groups, size


def interleaved_medians(calls, rounds, seed=0):
    """Median wall and CPU seconds of every function in ``calls`` (name → function).

    One warm-up call each (numba compilation excluded), then ``rounds`` rounds that call
    every function once, in an order shuffled per round (seeded): a call that frees large
    temporaries (numpy's GRPO-Z: five of the array's size) makes the next call's output
    allocation fault its pages in again (measured: 0.26 ms → 1.07 ms for ``mean_centred``
    when it always ran second), so no function may always follow the same one.
    ``{name: (wall, cpu)}``.
    """
    for function in calls.values():
        function()
    names = list(calls)
    order = np.random.default_rng(seed)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for _ in range(rounds):
        for index in order.permutation(len(names)):
            name = names[index]
            start, start_cpu = time.perf_counter(), time.thread_time()
            calls[name]()
            cpu[name].append(time.thread_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]))
            for name in names}


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
    """The reference point: the obvious numpy ``(r − mean) / (std_{ddof=1} + 1e-6)``."""
    return (rewards - rewards.mean(axis=1, keepdims=True)) / (
        rewards.std(axis=1, ddof=1, keepdims=True) + 1e-6)


@njit(cache=True)
def fused_grpo_z(rewards, eps):
    """The obvious fused numba GRPO-Z: per row one pass for ``Σd``, ``Σd²`` (``d = r − r_0``),
    one writing ``(r − mean)/(sd_{m−1} + ε)``; no fast-math flags, one thread."""
    n_groups, m = rewards.shape
    out = np.empty_like(rewards)
    for b in range(n_groups):
        row = rewards[b]
        origin = row[0]
        first = 0.0
        second = 0.0
        for i in range(m):
            d = row[i] - origin
            first += d
            second += d * d
        mean = first / m
        scale = 1.0 / (np.sqrt(max((second - first * mean) / (m - 1), 0.0)) + eps)
        for i in range(m):
            out[b, i] = (row[i] - origin - mean) * scale
    return out


def _options(method):
    return {"seed": 0} if method == "chow_bon_rl" else {}


def timed_row(method, backend, call, rewards, repeats):
    """A result row for ``call``, timed in interleaved rounds with numpy GRPO-Z on
    ``rewards``.

    The hook for other scripts: rows from ``extra_rows`` callables should be built with this.
    """
    try:
        times = interleaved_medians({"call": call, "baseline": lambda: numpy_grpo_z(rewards)},
                                    repeats)
    except ValueError as error:  # e.g. the group is too small for Prefix-TEA
        return {"method": method, "backend": backend, "seconds": None, "ratio": None,
                "error": str(error)}
    return _row(method, backend, times["call"], times["baseline"])


def _row(method, backend, times, baseline):
    (wall, cpu), (base_wall, base_cpu) = times, baseline
    return {"method": method, "backend": backend, "seconds": wall, "cpu_seconds": cpu,
            "baseline_seconds": base_wall, "baseline_cpu_seconds": base_cpu,
            "ratio": wall / base_wall, "cpu_ratio": cpu / base_cpu}


def _stub(rule, rewards, options):
    """``rule`` with its kernel replaced by one returning its result on ``rewards``."""
    result = rule.numpy(rewards, **rule.resolve(options))

    def kernel(batch, **_):
        return result

    kernel.checks_finite = getattr(rule.numpy, "checks_finite", False)
    return dataclasses.replace(rule, numpy=kernel)


def tailext_calls(rewards, methods, backends):
    """``{(method, backend, part): function}``: the public call of each rule per backend;
    for numba also the kernel alone (``"kernel"``) and the call around a stub kernel
    (``"wrapper"``)."""
    import tailext

    calls = {}
    for method in methods:
        options = _options(method)
        if "numba" in backends:
            rule = tailext.get_rule(method)
            resolved = rule.resolve(options)
            stub = _stub(rule, rewards, options)
            calls[method, "numba", "call"] = (
                lambda m=method, o=options: tailext.advantages(rewards, method=m, **o))
            calls[method, "numba", "kernel"] = (
                lambda r=rule, o=resolved: r.numpy(rewards, **o))
            calls[method, "numba", "wrapper"] = (
                lambda s=stub, o=options: tailext.advantages(rewards, method=s, **o))
        if "torch" in backends:
            import torch
            import tailext.torch as tt

            tensor = torch.from_numpy(rewards)
            calls[method, "torch", "call"] = (
                lambda m=method, o=options: tt.advantages(tensor, method=m, **o))
    return calls


def shape_rows(rewards, methods, backends, rounds, extra_rows=()):
    """Every row of one shape (timed together), and the overhead of each numba rule."""
    calls = {("grpo_z (numpy reference)", "numpy", "call"): lambda: numpy_grpo_z(rewards),
             ("grpo_z (fused numba, 1 pass)", "numba", "call"):
                 lambda: fused_grpo_z(rewards, 1e-6)}
    calls.update(tailext_calls(rewards, methods, backends))
    times = interleaved_medians(calls, rounds)
    baseline = times["grpo_z (numpy reference)", "numpy", "call"]
    fused = times["grpo_z (fused numba, 1 pass)", "numba", "call"]
    rows = []
    for (method, backend, part), measured in times.items():
        if part != "call":
            continue
        row = _row(method, backend, measured, baseline)
        row["fused_ratio"] = measured[0] / fused[0]
        row["fused_cpu_ratio"] = measured[1] / fused[1]
        if (method, backend, "kernel") in times:
            kernel, wrapper = times[method, backend, "kernel"], times[method, backend, "wrapper"]
            row.update({"kernel_seconds": kernel[0], "kernel_cpu_seconds": kernel[1],
                        "wrapper_seconds": wrapper[0], "wrapper_cpu_seconds": wrapper[1],
                        "overhead": wrapper[0] / kernel[0],
                        "cpu_overhead": wrapper[1] / kernel[1]})
        rows.append(row)
    for extra in extra_rows:
        rows += extra(rewards, rounds)
    return rows


def benchmark_environment(packages=()) -> dict:
    """The shared record environment plus the processor and Python implementation."""
    return {**environment(packages), "processor": platform.processor() or platform.machine(),
            "python_implementation": platform.python_implementation()}


def set_allocator(allocator):
    """``"no-trim"``: glibc keeps freed memory and serves every block below 32 MiB from its
    heap (``mallopt``), so no call re-faults pages another call freed. By default numpy's
    GRPO-Z frees five arrays of the batch's size per call and glibc returns them to the
    system, so the next call faults its pages in again (measured on [4096, 64]: 2.3–2.9 ms
    against 0.8–1.3 ms with "no-trim"); that is what a trainer process sees, "no-trim"
    isolates the arithmetic. Returns whether the setting took effect."""
    if allocator == "default":
        return True
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_trim_threshold, 1 << 30)
                and libc.mallopt(m_mmap_threshold, 32 << 20))


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


def _ms(seconds):
    return f"{1e3 * seconds:.3g} ms"


def markdown(record):
    config, rows = record["configuration"], record["results"]["rows"]
    shapes = config["shapes"]
    env = record["environment"]
    threads = env["threads"]
    versions = ", ".join(f"{name} {env[name]}" for name in
                         ("python", "numpy", "scipy", "numba", "tailext", "torch")
                         if env.get(name))
    lines = [f"# Advantage benchmark (numba threads {threads['numba']}, torch threads "
             f"{threads.get('torch')})", "",
             f"Command: `{config['command']}`. Machine: {env['platform']}, "
             f"{env['cpu_count']} CPUs ({env.get('processor')}); {versions}. Seed "
             f"{record['seed']}, float64, allocator {config['allocator']}.", "",
             f"Median over {config['repeats']} interleaved rounds (shuffled order) of the "
             "wall time per call, and its ratio to numpy GRPO-Z `(r - r.mean(1)) / "
             "(r.std(1, ddof=1) + 1e-6)` on the same array in the same rounds, in wall time "
             "and in the calling thread's CPU time (which a loaded machine disturbs less: "
             "with one thread all the work runs in the calling thread).", "",
             "| method | backend | " + " | ".join(shapes) + " |",
             "|---|---|" + "---|" * len(shapes)]
    cells = {}
    for row in rows:
        key = (row["method"], row["backend"])
        if row.get("seconds") is None:
            text = "n/a"
        else:
            text = (f"{_ms(row['seconds'])} ({row['ratio']:.2f}×; CPU "
                    f"{row['cpu_ratio']:.2f}×)")
        cells.setdefault(key, {})[row["shape"]] = text
    for (method, backend), by_shape in cells.items():
        lines.append(f"| {method} | {backend} | "
                     + " | ".join(by_shape.get(shape, "") for shape in shapes) + " |")
    overhead = [row for row in rows if "overhead" in row]
    if overhead:
        lines += ["", "Wrapper overhead of `tailext.advantages` (validation, dispatch, output "
                      "check: the call around a kernel that returns a precomputed result) "
                      "relative to the kernel's own time, median wall (CPU):", "",
                  "| method | " + " | ".join(shapes) + " |", "|---|" + "---|" * len(shapes)]
        table = {}
        for row in overhead:
            table.setdefault(row["method"], {})[row["shape"]] = (
                f"{1e6 * row['wrapper_seconds']:.0f} µs / {_ms(row['kernel_seconds'])} = "
                f"{100 * row['overhead']:.1f} % ({100 * row['cpu_overhead']:.1f} %)")
        for method, by_shape in table.items():
            lines.append(f"| {method} | " + " | ".join(by_shape.get(shape, "")
                                                      for shape in shapes) + " |")
    targets = record["results"].get("targets")
    if targets:
        verdict = {True: "met", False: "missed", None: "not measured"}
        lines += ["", f"Targets on {TARGET_SHAPE}, {threads['numba']} thread(s) (wall; CPU "
                      "in parentheses):", ""]
        for name, target in targets.items():
            if target.get("value") is None:
                lines.append(f"- {target['label']}: not measured.")
                continue
            lines.append(f"- {target['label']}: {target['value']:.3g} (CPU "
                         f"{target['cpu_value']:.3g}), target ≤ {target['limit']}: "
                         f"{verdict[target['met']]}.")
    if not record["completeness"]["complete"]:
        lines += ["", f"**Interrupted**: {record['completeness']['finished']} of "
                      f"{record['completeness']['total']} shapes measured."]
    return "\n".join(lines) + "\n"


def write(record, out, clock, *, interrupted=False):
    """The record (shared schema) and its markdown, atomically."""
    clock.stamp(record, cells_run=record["completeness"]["finished"], interrupted=interrupted)
    write_record(out / "bench_advantages.json", record)
    write_text(out / "bench_advantages.md", markdown(record))


def _targets(results):
    """The three targets, measured on :data:`TARGET_SHAPE` (``value`` None if not timed)."""
    rows = {(r["method"], r["backend"]): r for r in results
            if r.get("shape") == TARGET_SHAPE and r.get("seconds") is not None}
    tea = rows.get(("tea", "numba"))
    overheads = [r for r in rows.values() if "overhead" in r]
    worst = max(overheads, key=lambda r: r["overhead"], default=None)
    measured = {
        "tea_vs_numpy_grpo_z": ("TEA / numpy GRPO-Z", tea and (tea["ratio"], tea["cpu_ratio"])),
        "tea_vs_fused_grpo_z": ("TEA / fused numba GRPO-Z",
                                tea and (tea["fused_ratio"], tea["fused_cpu_ratio"])),
        "max_overhead": (f"largest wrapper overhead ({worst['method'] if worst else '–'})",
                         worst and (worst["overhead"], worst["cpu_overhead"])),
    }
    targets = {}
    for name, (label, values) in measured.items():
        limit = TARGETS[name]
        value, cpu_value = values if values else (None, None)
        targets[name] = {"label": label, "limit": limit, "value": value,
                         "cpu_value": cpu_value,
                         "met": None if value is None else value <= limit}
    return targets


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
    parser.add_argument("--repeats", type=int, default=25,
                        help="interleaved rounds per shape (each times every call once)")
    parser.add_argument("--quick", action="store_true",
                        help="5 rounds per shape (recorded as a quick run)")
    parser.add_argument("--threads", type=int, default=None,
                        help="numba and torch thread count (the targets are for 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rewards")
    parser.add_argument("--allocator", choices=["default", "no-trim"], default="default",
                        help="glibc allocator setting (see set_allocator)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 5
    if args.repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--repeats and --threads must be >= 1")
    set_threads(args.threads)
    if not set_allocator(args.allocator):
        parser.error("--allocator no-trim needs glibc")
    methods = args.methods or tailext.available_methods()
    unknown = sorted(set(methods) - set(tailext.available_methods()))
    if unknown:
        parser.error(f"unknown methods {unknown}")
    shapes = [f"{b}x{m}" for b, m in args.shapes]
    command = "python benchmarks/bench_advantages.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    config = {"shapes": shapes, "methods": methods, "backends": args.backends,
              "repeats": args.repeats, "threads": args.threads, "dtype": "float64",
              "statistic": "median of interleaved rounds", "allocator": args.allocator,
              "baseline": "numpy (r - mean)/(std(ddof=1) + 1e-6)",
              "command": command.strip()}
    clock = Clock()
    record = new_record("bench_advantages", seed=args.seed, configuration=config,
                        mode="quick" if args.quick else "full", total=len(shapes))
    record["environment"] = benchmark_environment()
    record["results"] = {"rows": [], "targets": None}
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
            usable = [method for method in methods
                      if m >= tailext.get_rule(method).min_group_size(
                          **tailext.get_rule(method).resolve(_options(method)))]
            rows = shape_rows(rewards, usable, args.backends, args.repeats, extra_rows)
            rows += [{"method": method, "backend": backend, "seconds": None, "ratio": None,
                      "error": f"m = {m} is too small for {method}"}
                     for method in methods if method not in usable
                     for backend in args.backends]
            for row in rows:
                row["shape"] = shape
            record["results"]["rows"] += rows
            record["completeness"]["finished"] += 1
            write(record, args.out, clock)  # partial results survive an interrupt
    except KeyboardInterrupt:
        print("interrupted: writing the results measured so far", file=sys.stderr)
    done = record["completeness"]
    done["complete"] = done["finished"] == done["total"]
    record["results"]["targets"] = _targets(record["results"]["rows"])
    write(record, args.out, clock, interrupted=not done["complete"])
    print(markdown(record))
    return 0 if done["complete"] else 130


if __name__ == "__main__":
    sys.exit(main())
