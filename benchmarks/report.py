"""Run every benchmark and write ``benchmarks/README.md`` with all their tables.

One command regenerates the report from the repository root::

    python benchmarks/report.py --quick        # about 4 minutes on 2 cores
    python benchmarks/report.py                # the benchmarks' full default grids
    python benchmarks/report.py --collect-only # rebuild the README from existing results

Each benchmark runs as its own process (``bench_advantages.py``, ``bench_verl.py``,
``bench_scaling.py``), writes JSON + markdown into ``--results``, and its markdown goes
into the README unchanged except for heading levels. A benchmark that cannot run (verl not
installed, a failure, a timeout) gets a line saying why, never a silently missing table.
Every timing in the report comes from a record of the one schema
(``tailext.validate.records``): each benchmark's JSON, and the ``tailext validate`` records
found under ``docs/results/`` and ``--validation-dirs`` (wall and CPU time summed over every
invocation of a resumed run).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import subprocess
import sys
from pathlib import Path

from tailext.validate.records import RecordError, read_record
from tailext.validate.reporting import seconds

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def benchmarks(results, quick):
    """``(name, command, markdown file, needs)`` of every benchmark, quick or full."""
    python = [sys.executable]
    quick_flag = ["--quick"] if quick else []
    # its default: medians of 25 interleaved rounds (10 left single cells swinging by 20 %
    # under the shared machine's load); --quick: 5
    advantages = python + [str(HERE / "bench_advantages.py"), "--out", str(results),
                           "--threads", "1"] + quick_flag
    verl = python + [str(HERE / "bench_verl.py"), "--out", str(results / "bench_verl")]
    scaling = python + [str(HERE / "bench_scaling.py"), "--out", str(results)]
    return [("bench_advantages", advantages, results / "bench_advantages.md", ()),
            ("bench_verl", verl + quick_flag, results / "bench_verl.md", ("verl",)),
            ("bench_scaling", scaling + quick_flag, results / "bench_scaling.md", ())]


def run_benchmark(name, command, needs, timeout):
    """Run one benchmark; its status line."""
    missing = [package for package in needs if importlib.util.find_spec(package) is None]
    if missing:
        return f"not run: needs {', '.join(missing)} (see docs/integrations.md)"
    if not Path(command[1]).exists():
        return f"not run: {Path(command[1]).name} is not in this checkout"
    print(f"[report] {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s (partial results, if any, are shown)"
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return f"failed (exit {done.returncode}): {tail}"
    return "ok"


def record_of(markdown_file):
    """The benchmark's record (``<name>.json`` beside its markdown), or None."""
    try:
        return read_record(markdown_file.with_suffix(".json"))
    except RecordError:
        return None


def demoted(markdown):
    """The markdown with every heading one level deeper (outside code fences)."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def validation_times(directories):
    """One row per ``tailext validate`` record found in ``directories``."""
    rows = []
    for directory in directories:
        for path in sorted(Path(directory).glob("**/*.json")):
            try:
                record = read_record(path)
            except RecordError:
                continue
            if record is None or record["check"].startswith("bench_"):
                continue
            rows.append({"check": record["check"], "record": record,
                         "file": path.relative_to(ROOT).as_posix()
                         if path.is_relative_to(ROOT) else str(path)})
    return rows


def validation_section(rows):
    lines = ["## Validation run times", "",
             "Read from the record each `tailext validate` run writes (its own clock, summed "
             "over every invocation of a resumed run; CPU counts every thread). CPU time is "
             "the better guide on a loaded machine.", ""]
    if not rows:
        return lines + ["No validation records found (run `tailext validate ... --out DIR` "
                        "and pass `--validation-dirs DIR`).", ""]
    lines += ["| check | mode | cells | invocations | wall | CPU | record |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        record = row["record"]
        done, timing = record["completeness"], record["timing"]
        cells = f"{done['finished']} of {done['total']}" + ("" if done["complete"]
                                                            else " (partial)")
        lines.append(f"| `{row['check']}` | {done['mode']} | {cells} | "
                     f"{len(timing['invocations'])} | {seconds(timing['wall_s'])} | "
                     f"{seconds(timing['cpu_s'])} | `{row['file']}` |")
    return lines + [""]


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
        "| benchmark | status | mode | wall | CPU |", "|---|---|---|---|---|"]
    for name, status in statuses.items():
        record = record_of(results[name])
        timing = record["timing"] if record else {}
        mode = record["completeness"]["mode"] if record else "–"
        lines.append(f"| `{name}` | {status} | {mode} | {seconds(timing.get('wall_s'))} | "
                     f"{seconds(timing.get('cpu_s'))} |")
    lines.append("")
    for name, markdown_file in results.items():
        if markdown_file.exists():  # its own title becomes the section heading
            lines += [f"<!-- {name}: {markdown_file.name} -->",
                      demoted(markdown_file.read_text()).strip(), ""]
        else:
            lines += [f"## {name}", "", f"No results ({statuses[name]}).", ""]
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
                              else "not run")
            continue
        statuses[name] = run_benchmark(name, command, needs, args.timeout)
    rows = validation_times([ROOT / "docs" / "results", *args.validation_dirs])
    args.out.write_text(render(statuses, results, rows, args.quick) + "\n")
    print(f"[report] wrote {args.out}", file=sys.stderr)
    return 0 if all(status in ("ok", "collected from an earlier run") or
                    status.startswith("not run") for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
