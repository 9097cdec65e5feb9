"""Scaling of the TEA and Prefix-TEA kernels in the batch size ``B`` and the group size ``m``.

Two sweeps on seeded float64 normal rewards: ``B`` grows at ``m = 64`` (``B = 64 … 65536``),
and ``m`` grows at a fixed number of samples ``B·m`` (``m = 16 … 4096``). Each cell times
``tailext.tea_advantages`` and ``tailext.prefix_tea_advantages`` in alternation with a
vectorized numpy GRPO-Z on the same array (helpers shared with ``bench_advantages.py``) and
reports the time per sample and the ratio to GRPO-Z measured in the same run: on a shared
machine absolute times drift, ratios do not. Time per sample should stay flat as ``B`` grows
(the kernels are linear in ``B``); in ``m`` it may grow like ``log m`` at most (selection of
the top ``k`` is linear in ``m``).

The largest ``B`` case is then run once more in a fresh process to measure its memory: the
Python/numpy allocation peak (``tracemalloc``) and the growth of the process's peak resident
set during the call (Linux ``VmHWM``), beside the size of the input array.

Usage::

    python benchmarks/bench_scaling.py --out benchmarks/results            # full sweep
    python benchmarks/bench_scaling.py --out benchmarks/results --quick    # about a minute

Writes ``bench_scaling.json`` (a record of the shared schema, ``tailext.validate.records``:
configuration, seed, environment, timing, completeness, every measurement) and
``bench_scaling.md`` into ``--out``; partial results are written after every cell, so an
interrupted run (Ctrl-C) keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_advantages import benchmark_environment, numpy_grpo_z, paired_best_times, set_threads

from tailext.validate.records import Clock, new_record, write_record, write_text

FULL = {"b_grid": [64, 256, 1024, 4096, 16384, 65536], "b_sweep_m": 64,
        "m_grid": [16, 64, 256, 1024, 4096], "m_sweep_samples": 2 ** 18, "repeats": 5}
QUICK = {"b_grid": [64, 1024, 16384, 65536], "b_sweep_m": 64,
         "m_grid": [16, 256, 4096], "m_sweep_samples": 2 ** 16, "repeats": 3}
KERNELS = ("tea", "prefix_tea")


def kernel(name):
    import tailext

    return {"tea": tailext.tea_advantages, "prefix_tea": tailext.prefix_tea_advantages}[name]


def repeats_for(function, repeats, budget_s=0.5, cap=200):
    """At least ``repeats``, more for fast calls (about ``budget_s`` of calls, at most ``cap``):
    a best-of over more calls is what keeps small cells stable on a loaded machine."""
    start = time.perf_counter()
    function()  # also the warm-up (numba compilation, caches)
    elapsed = time.perf_counter() - start
    return int(min(cap, max(repeats, budget_s / max(elapsed, 1e-9))))


def time_cell(sweep, n_groups, m, repeats, rng):
    """One row per kernel: seconds per call and per sample, ratio to numpy GRPO-Z."""
    rewards = rng.normal(size=(n_groups, m))
    rows = []
    for name in KERNELS:
        function = kernel(name)
        calls = repeats_for(lambda: function(rewards), repeats)
        seconds, baseline = paired_best_times(lambda: function(rewards),
                                              lambda: numpy_grpo_z(rewards), calls)
        samples = n_groups * m
        rows.append({"sweep": sweep, "kernel": name, "B": n_groups, "m": m,
                     "seconds": seconds, "ns_per_sample": 1e9 * seconds / samples,
                     "grpo_z_seconds": baseline,
                     "grpo_z_ns_per_sample": 1e9 * baseline / samples, "calls": calls,
                     "ratio_vs_grpo_z": seconds / baseline})
    return rows


def _status_kib(key):
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB (Linux)."""
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith(key)))


def measure_memory(name, n_groups, m, seed):
    """Memory of one call, measured in this (fresh) process after compilation.

    ``tracemalloc`` sees numpy's allocations. The resident-set peak during the call comes
    from Linux's ``VmHWM`` after resetting it (``/proc/self/clear_refs``): numba's
    compilation leaves a high-water mark far above the call's own, so a plain
    ``getrusage`` maximum would hide the call. Elsewhere only tracemalloc is reported.
    """
    import tracemalloc

    function = kernel(name)
    function(np.random.default_rng(seed).normal(size=(4, m)))  # compile outside the window
    rewards = np.random.default_rng(seed).normal(size=(n_groups, m))
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current
        before = _status_kib("VmRSS")
    except OSError:
        before = None
    tracemalloc.start()
    function(rewards)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = None if before is None else 1024 * (_status_kib("VmHWM") - before)
    return {"kernel": name, "B": n_groups, "m": m, "input_bytes": rewards.nbytes,
            "tracemalloc_peak_bytes": peak, "peak_rss_growth_bytes": growth}


def memory_in_subprocess(name, n_groups, m, seed, threads):
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", name, str(n_groups), str(m),
               "--seed", str(seed)] + ([] if threads is None else ["--threads", str(threads)])
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mebibytes(value):
    return f"{value / 2 ** 20:.1f} MiB"


def markdown(record):
    config, env, report = record["configuration"], record["environment"], record["results"]
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", "numpy", "scipy", "numba",
                                                   "tailext", "torch") if env.get(k))
    lines = [
        "# Scaling of the TEA / Prefix-TEA kernels", "",
        f"Machine: {env['platform']}, {env['cpu_count']} CPUs; "
        f"{versions}; numba threads {env['threads']['numba']}.",
        f"Config: {'quick' if config['quick'] else 'full'} run; each cell is the best of at "
        f"least {config['repeats']} calls (more for fast cells, about 0.5 s of calls, at "
        f"most 200) after a warm-up call; float64 normal rewards, seed {config['seed']}.",
        "", "Time per sample (ns) and the ratio to numpy GRPO-Z `(r − mean)/(std + 1e-6)` timed "
        "in alternation on the same array. Ratios are the result; absolute times depend on "
        "the machine's load.", ""]
    for sweep, title in (("B", f"Growing B at m = {config['b_sweep_m']}"),
                         ("m", f"Growing m at B·m = {config['m_sweep_samples']}")):
        rows = [row for row in report["rows"] if row["sweep"] == sweep]
        if not rows:
            continue
        lines += [f"## {title}", "",
                  "| B | m | GRPO-Z ns/sample | TEA ns/sample | TEA ratio "
                  "| Prefix-TEA ns/sample | Prefix-TEA ratio |", "|---|---|---|---|---|---|---|"]
        cells = {}
        for row in rows:
            cells.setdefault((row["B"], row["m"]), {})[row["kernel"]] = row
        for (n_groups, m), by_kernel in cells.items():
            line = f"| {n_groups} | {m} | {by_kernel['tea']['grpo_z_ns_per_sample']:.2f} |"
            for name in KERNELS:
                row = by_kernel.get(name)
                line += (" | |" if row is None else
                         f" {row['ns_per_sample']:.2f} | {row['ratio_vs_grpo_z']:.2f}× |")
            lines.append(line)
        flat = flatness(rows)
        if flat:
            lines += ["", "Spread of the ratio over the sweep (max / min): "
                      + ", ".join(f"{k} {v:.2f}" for k, v in flat.items()) + "."]
        lines.append("")
    if report.get("memory"):
        lines += ["## Memory of the largest case", "",
                  "| kernel | B × m | input array | tracemalloc peak | peak-RSS growth |",
                  "|---|---|---|---|---|"]
        for row in report["memory"]:
            lines.append(f"| {row['kernel']} | {row['B']} × {row['m']} | "
                         f"{mebibytes(row['input_bytes'])} | "
                         f"{mebibytes(row['tracemalloc_peak_bytes'])} | "
                         + ("n/a" if row["peak_rss_growth_bytes"] is None
                            else mebibytes(row["peak_rss_growth_bytes"])) + " |")
        lines += ["", "tracemalloc counts numpy allocations (the result and any validated "
                  "copy). Peak-RSS growth is the rise of the resident set's high-water mark "
                  "during the call (Linux `VmHWM`, reset after compilation in a fresh "
                  "process), so it includes numba's work buffers.", ""]
    if not record["completeness"]["complete"]:
        lines += ["**Interrupted**: the tables hold the cells measured before Ctrl-C.", ""]
    return "\n".join(lines)


def flatness(rows):
    """max/min of each kernel's ratio to GRPO-Z over a sweep (1 = perfectly flat)."""
    spread = {}
    for name in KERNELS:
        ratios = [row["ratio_vs_grpo_z"] for row in rows if row["kernel"] == name]
        if len(ratios) > 1:
            spread[name] = max(ratios) / min(ratios)
    return spread


def write(record, out, clock, *, interrupted=False):
    """The record (shared schema) and its markdown, atomically."""
    clock.stamp(record, cells_run=record["completeness"]["finished"], interrupted=interrupted)
    write_record(out / "bench_scaling.json", record)
    write_text(out / "bench_scaling.md", markdown(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                        help="output directory for bench_scaling.{json,md}")
    parser.add_argument("--quick", action="store_true",
                        help="fewer grid points and repeats (about a minute on 2 cores)")
    parser.add_argument("--threads", type=int, default=1,
                        help="numba threads (default 1: the comparison is per core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rewards")
    parser.add_argument("--memory-probe", nargs=3, metavar=("KERNEL", "B", "M"),
                        help=argparse.SUPPRESS)  # internal: the fresh-process memory run
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    set_threads(args.threads)
    if args.memory_probe:
        name, n_groups, m = args.memory_probe
        print(json.dumps(measure_memory(name, int(n_groups), int(m), args.seed)))
        return 0

    import tailext

    grid = QUICK if args.quick else FULL
    config = {**grid, "quick": args.quick, "threads": args.threads, "seed": args.seed,
              "dtype": "float64", "kernels": list(KERNELS),
              "options": "defaults: tail_fraction=0.25, n_target=128, order=2, n_prefixes=3",
              "baseline": "numpy (r - mean)/(std + 1e-6) per row",
              "tailext_version": tailext.__version__}
    cells = [("B", b, grid["b_sweep_m"]) for b in grid["b_grid"]]
    cells += [("m", grid["m_sweep_samples"] // m, m) for m in grid["m_grid"]]
    clock = Clock()
    record = new_record("bench_scaling", seed=args.seed, configuration=config,
                        mode="quick" if args.quick else "full", total=len(cells) + 1)
    record["environment"] = benchmark_environment()
    record["results"] = {"rows": [], "memory": []}
    report = record["results"]
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional
        def tqdm(items, **_):
            return items
    rng = np.random.default_rng(args.seed)
    try:
        for sweep, n_groups, m in tqdm(cells, desc="cells"):
            report["rows"] += time_cell(sweep, n_groups, m, grid["repeats"], rng)
            record["completeness"]["finished"] += 1
            write(record, args.out, clock)
        largest = max(grid["b_grid"])
        memory = [memory_in_subprocess(name, largest, grid["b_sweep_m"], args.seed,
                                       args.threads) for name in KERNELS]
        report["memory"] = memory
        record["completeness"]["finished"] += 1
    except KeyboardInterrupt:
        print("interrupted: writing the results measured so far", file=sys.stderr)
    done = record["completeness"]
    done["complete"] = done["finished"] == done["total"]
    write(record, args.out, clock, interrupted=not done["complete"])
    print(markdown(record))
    return 0 if done["complete"] else 130


if __name__ == "__main__":
    sys.exit(main())
