"""Run every benchmark and write ``benchmarks/README.md`` with all their tables.

One command regenerates the report from the repository root::

    python benchmarks/report.py --quick        # about 4 minutes on 2 cores
    python benchmarks/report.py                # the benchmarks' full default grids
    python benchmarks/report.py --collect-only # rebuild the README from existing results

Each benchmark runs as its own process (``bench_advantages.py``, ``bench_verl.py``,
``bench_scaling.py``), writes JSON + markdown into ``--results``, and its markdown goes
into the README unchanged except for heading levels. A benchmark that cannot run (verl not
installed, a failure, a timeout) gets a line saying why, never a silently missing table.
The validation run times are read from the JSON records of ``tailext validate`` found under
``docs/`` and ``--validation-dirs``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def benchmarks(results, quick):
    """``(name, command, markdown file, needs)`` of every benchmark, quick or full."""
    python = [sys.executable]
    advantages = python + [str(HERE / "bench_advantages.py"), "--out", str(results),
                           "--threads", "1"]
    verl = python + [str(HERE / "bench_verl.py"), "--out", str(results / "bench_verl")]
    scaling = python + [str(HERE / "bench_scaling.py"), "--out", str(results)]
    # medians of 25 interleaved rounds (10 left single cells swinging by 20 % under the
    # shared machine's load)
    advantages += ["--repeats", "5" if quick else "25"]
    if quick:
        verl += ["--shapes", "4096x16", "4096x64", "--repeats", "3", "--max-seconds", "10"]
        scaling += ["--quick"]
    return [("bench_advantages", advantages, results / "bench_advantages.md", ()),
            ("bench_verl", verl, results / "bench_verl.md", ("verl",)),
            ("bench_scaling", scaling, results / "bench_scaling.md", ())]


def run_benchmark(name, command, needs, timeout):
    """Run one benchmark; ``(status line, wall seconds)``."""
    missing = [package for package in needs if importlib.util.find_spec(package) is None]
    if missing:
        return f"not run: needs {', '.join(missing)} (see docs/integrations.md)", None
    if not Path(command[1]).exists():
        return f"not run: {Path(command[1]).name} is not in this checkout", None
    print(f"[report] {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s (partial results, if any, are shown)", timeout
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return f"failed (exit {done.returncode}): {tail}", wall
    return "ok", wall


def demoted(markdown):
    """The markdown with every heading one level deeper (outside code fences)."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def wall_seconds(record):
    """A validation record's ``(wall, cpu)`` seconds, wherever its writer put them."""
    for holder in (record, record.get("environment"), record.get("timing")):
        if not isinstance(holder, dict):
            continue
        for wall_key, cpu_key in (("wall_s", "cpu_s"), ("wall_seconds", "cpu_seconds")):
            if isinstance(holder.get(wall_key), (int, float)):
                return holder[wall_key], holder.get(cpu_key)
    return None, None


def check_name(record):
    """``tailext validate`` records name their check as ``check`` or ``tool``; else None."""
    name = record.get("check") or record.get("tool")
    return name.removeprefix("tailext validate ") if isinstance(name, str) else None


def validation_times(directories):
    """One row per ``tailext validate`` JSON record found in ``directories``."""
    rows = []
    for directory in directories:
        for path in sorted(Path(directory).glob("**/*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(record, dict) or check_name(record) is None:
                continue
            wall, cpu = wall_seconds(record)
            rows.append({"check": check_name(record), "quick": record.get("quick"),
                         "complete": record.get("complete"), "wall_s": wall, "cpu_s": cpu,
                         "file": path.relative_to(ROOT).as_posix()
                         if path.is_relative_to(ROOT) else str(path)})
    return rows


def seconds(value):
    return "n/a" if value is None else f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def validation_section(rows):
    lines = ["## Validation run times", "",
             "Read from the JSON record each `tailext validate` run writes (its own clock). "
             "CPU time is the better guide on a loaded machine.", ""]
    posttrain = ("The post-training runs (`tailext validate posttrain`) resume from "
                 "checkpoints, so their JSON holds the time of the last invocation only; "
                 "their measured wall and CPU times are in "
                 "`validation/results/posttrain/README.md`.")
    if not rows:
        return lines + ["No validation records found (run `tailext validate ... --out DIR` "
                        "and pass `--validation-dirs DIR`).", "", posttrain, ""]
    lines += ["| check | mode | complete | wall | CPU | record |", "|---|---|---|---|---|---|"]
    for row in rows:
        mode = {True: "--quick", False: "default", None: "–"}[row["quick"]]
        complete = {True: "yes", False: "partial", None: "–"}[row["complete"]]
        lines.append(f"| `{row['check']}` | {mode} | {complete} | {seconds(row['wall_s'])} | "
                     f"{seconds(row['cpu_s'])} | `{row['file']}` |")
    return lines + ["", posttrain, ""]


def versions():
    found = {"python": platform.python_version()}
    for package in ("numpy", "scipy", "numba", "torch", "tailext", "verl", "trl"):
        try:
            from importlib import metadata

            found[package] = metadata.version(package)
        except Exception:  # not installed (or not a distribution): leave it out
            continue
    return found


def render(statuses, results, validation_rows, quick):
    results_dir = next(iter(results.values())).parent
    results_dir = (results_dir.relative_to(ROOT).as_posix() + "/"
                   if results_dir.is_relative_to(ROOT) else str(results_dir))
    import os

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark report", "",
        f"Generated {now} by `python benchmarks/report.py{' --quick' if quick else ''}` "
        f"({'quick' if quick else 'full'} grids).",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".", "",
        "The machine these numbers come from may be shared, so absolute times are noisy. The "
        "results are the **ratios**, each measured against a baseline on the same data in "
        "the same run. Each section states its machine, versions and configuration, and "
        f"the JSON files in `{results_dir}` have every timing.", "",
        "| benchmark | status | wall |", "|---|---|---|"]
    for name, (status, wall) in statuses.items():
        lines.append(f"| `{name}` | {status} | {seconds(wall)} |")
    lines.append("")
    for name, markdown_file in results.items():
        if markdown_file.exists():  # its own title becomes the section heading
            lines += [f"<!-- {name}: {markdown_file.name} -->",
                      demoted(markdown_file.read_text()).strip(), ""]
        else:
            lines += [f"## {name}", "", f"No results ({statuses[name][0]}).", ""]
    lines += validation_section(validation_rows)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "README.md",
                        help="the report to write (default: benchmarks/README.md)")
    parser.add_argument("--results", type=Path, default=None,
                        help="where the benchmarks write their JSON and markdown (default: "
                             "benchmarks/results, or benchmarks/results/quick with --quick "
                             "so that a quick run never overwrites full results)")
    parser.add_argument("--quick", action="store_true",
                        help="the benchmarks' quick grids (a few minutes on 2 cores)")
    parser.add_argument("--collect-only", action="store_true",
                        help="run nothing; rebuild the report from existing results")
    parser.add_argument("--only", nargs="+", default=None,
                        help="run only these benchmarks (others are collected as they are)")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds allowed per benchmark")
    parser.add_argument("--validation-dirs", nargs="*", type=Path, default=[],
                        help="more directories with `tailext validate` JSON records")
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = HERE / "results" / ("quick" if args.quick else "")
    args.results = args.results.resolve()
    statuses, results = {}, {}
    for name, command, markdown_file, needs in benchmarks(args.results, args.quick):
        results[name] = markdown_file
        if args.collect_only or (args.only and name not in args.only):
            statuses[name] = ("collected from an earlier run" if markdown_file.exists()
                              else "not run", None)
            continue
        statuses[name] = run_benchmark(name, command, needs, args.timeout)
    rows = validation_times([ROOT / "docs", *args.validation_dirs])
    args.out.write_text(render(statuses, results, rows, args.quick) + "\n")
    print(f"[report] wrote {args.out}", file=sys.stderr)
    return 0 if all(status in ("ok", "collected from an earlier run") or
                    status.startswith("not run") for status, _ in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
