"""Everything that needs a GPU, in one call of under ten minutes, each step under its limit.

On a machine with a CUDA device, from the repository root::

    python benchmarks/gpu_check.py --out $OUT

Steps, each a subprocess with its own time limit (:data:`LIMITS_S`, clipped to what is left
of ``--budget``). A step that overruns gets SIGTERM (the ``tailext validate`` checks then
save their finished cells), SIGKILL :data:`GRACE_S` seconds later, is recorded as
``timed out``, and the next step runs:

1. ``cuda_tests``: ``python -m pytest -m cuda tests`` (every test marked ``cuda``: the torch
   adapter on the device, the sync-free calls under ``torch.cuda.set_sync_debug_mode``, the
   documented sync counts, posttrain's pieces on the device), with a JUnit XML report;
2. ``bench``: ``benchmarks/bench_torch_device.py``: every rule against torch GRPO-Z on the
   device, [4096, 16], [4096, 64], [1024, 1024], [65536, 64] in float32 and bfloat16;
3. ``posttrain``: ``tailext validate posttrain --device cuda --quick``;
4. ``appendix_e`` and 5. ``rates``: the torch Monte Carlo backend on the device with
   ``--mc-factor`` (default 10) times each check's default replications, built from
   :data:`MONTE_CARLO` (a flag the installed check does not offer is dropped, and the drop
   recorded).

``--out`` receives at most :data:`MAX_FILES` files, rewritten after every step: the summary
``gpu_check.json`` (a record of the shared schema, ``tailext.validate.records``: every
step's command, limit, status, wall time, log tail and results), ``gpu_check.md``, the
benchmark's ``bench_torch_device.{json,md}`` and ``gpu_check_results.tar.gz`` (every step's
result folder and log, without posttrain's checkpoints). The work folder (``--work``,
default a new temporary one) keeps everything; rerunning into the same ``--work`` resumes
the validation checks.

``--dry-run`` runs the same pipeline on the CPU at toy sizes in about half a minute (one
shape, 3 rounds, rates with 16 replications; posttrain and appendix-e are skipped with the
reason recorded); ``tests/test_gpu_check.py`` runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

NAME = "gpu_check"
MAX_FILES = 8
#: Seconds each step may run (``--limit NAME=SECONDS`` overrides). They sum to 550 s, under
#: the default ``--budget`` of 570 s, which leaves half a minute of a ten-minute call for
#: starting Python and packing the results. The CUDA tests include numba's compilation of
#: the numpy kernels they compare with (about 20 s of CPU). The Monte Carlo steps draw their
#: rewards with numpy on the host whatever the backend: about 1e10 normals for appendix-e
#: at 10×, 6.6e9 for rates, at 10–20 ns each on one core here, which sets their time more
#: than the device does.
LIMITS_S = {"cuda_tests": 90, "bench": 130, "posttrain": 100, "appendix_e": 130,
            "rates": 100}
STEPS = tuple(LIMITS_S)
#: After SIGTERM a step has this long to save its work before SIGKILL.
GRACE_S = 10.0
#: Kept back from the budget for writing the summary and the tarball.
RESERVE_S = 5.0
#: A step with less time than this left is skipped rather than started.
MIN_STEP_S = 5.0
#: The Monte Carlo steps: step → (``tailext validate`` check, the flags to pass, the check's
#: default replications if its module does not say). ``REPLICATIONS`` and ``DEVICE`` are
#: filled in per run; a value of None is a bare flag.
REPLICATIONS, DEVICE = "<replications>", "<device>"
MONTE_CARLO = {
    "appendix_e": ("appendix-e", {"--backend": "torch", "--device": DEVICE,
                                  "--replications": REPLICATIONS, "--no-progress": None},
                   131072),
    "rates": ("rates", {"--backend": "torch", "--device": DEVICE,
                        "--replications": REPLICATIONS, "--no-progress": None}, 65536),
}
#: Toy sizes of the dry run (CPU).
DRY = {"bench": ["--shapes", "64x16", "--repeats", "3", "--warmup", "1"],
       "replications": 16, "tests": ["tests/test_torch_cuda_syncs.py"]}
SKIPPED_IN_DRY_RUN = {
    "posttrain": "dry run: its quick run takes about a minute on a CPU",
    "appendix_e": "dry run: the rates step runs the same torch Monte Carlo path at toy size"}


@dataclasses.dataclass
class Step:
    """One step: its command (run from the repository root), time limit and outputs."""

    name: str
    command: list
    limit_s: float
    skip: str | None = None
    notes: dict = dataclasses.field(default_factory=dict)


def limit_for(step_limit, elapsed, budget):
    """The time a step gets: its own limit, clipped so that it, its grace period and the
    reserve fit in what is left of ``budget``; None when that is under :data:`MIN_STEP_S`."""
    left = budget - elapsed - GRACE_S - RESERVE_S
    return min(step_limit, left) if left >= MIN_STEP_S else None


def run_step(command, limit, log, env=None):
    """Run ``command`` (its output into ``log``) for at most ``limit`` seconds.

    ``{"status": "ok" | "failed" | "timed out", "returncode", "wall_s"}``; a step past its
    limit gets SIGTERM, then SIGKILL after :data:`GRACE_S` (its whole process group, which
    this function started)."""
    began = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env=env, start_new_session=True)
        try:
            try:
                code = process.wait(timeout=limit)
                status = "ok" if code == 0 else "failed"
            except subprocess.TimeoutExpired:
                status = "timed out"
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    code = process.wait(timeout=GRACE_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    code = process.wait()
        except KeyboardInterrupt:  # the step saves its finished cells on SIGTERM
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise
    return {"status": status, "returncode": code, "wall_s": time.perf_counter() - began}


def offered_flags(check):
    """Option strings of ``tailext validate CHECK`` in the installed tailext."""
    from tailext.cli import VALIDATIONS

    parser = argparse.ArgumentParser()
    importlib.import_module(VALIDATIONS[check]).configure_parser(parser)
    return {flag for action in parser._actions for flag in action.option_strings}


def default_replications(check, fallback):
    """A Monte Carlo check's default replications per ``m``: its ``DEFAULT_REPLICATIONS``,
    else the largest one-count-for-every-m among its studies, else ``fallback``.

    Studies whose counts vary with ``m`` do not set it: rates' Theorem 2 study (262,144 at
    m = 128 falling to 49,152 at m = 4096) then runs at 10 × Theorem 1's 65,536, i.e. 2.5 to
    13 times its own counts, which keeps the step near its limit with host-drawn rewards.
    """
    from tailext.cli import VALIDATIONS

    module = importlib.import_module(VALIDATIONS[check])
    if hasattr(module, "DEFAULT_REPLICATIONS"):
        return int(module.DEFAULT_REPLICATIONS)
    studies = getattr(module, "STUDIES", None)
    counts = [getattr(study, "replications", None) for study in (studies or {}).values()]
    counts = [int(count) for count in counts if isinstance(count, int)]
    return max(counts) if counts else fallback


def monte_carlo_command(check, flags, *, out, device, replications, quick):
    """``tailext validate CHECK`` with ``flags`` (:data:`MONTE_CARLO`'s form), keeping only
    the flags the check offers; ``(command, dropped flags)``."""
    offered = offered_flags(check)
    values = {REPLICATIONS: str(replications), DEVICE: device}
    command = [sys.executable, "-m", "tailext.cli", "validate", check, "--out", str(out)]
    if quick:
        flags = {**flags, "--quick": None}
    dropped = sorted(flag for flag in flags if flag not in offered)
    for flag, value in flags.items():
        if flag in offered:
            command += [flag] if value is None else [flag, values.get(value, str(value))]
    return command, dropped


def plan(args, work):
    """The steps of this run, in order."""
    python = [sys.executable]
    limits = {**LIMITS_S, **args.limit}
    tests = DRY["tests"] if args.dry_run else ["tests"]
    steps = [
        Step("cuda_tests", python + ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     "-m", "cuda", "-rfEs",
                                     f"--junitxml={work / 'tests' / 'junit.xml'}", *tests],
             limits["cuda_tests"]),
        Step("bench", python + [str(HERE / "bench_torch_device.py"), "--out",
                                str(work / "bench"), "--device", args.device,
                                "--seed", str(args.seed)]
             + (DRY["bench"] if args.dry_run else []), limits["bench"]),
        Step("posttrain", python + ["-m", "tailext.cli", "validate", "posttrain", "--out",
                                    str(work / "posttrain"), "--device", args.device,
                                    "--quick", "--no-progress"], limits["posttrain"]),
    ]
    for name, (check, flags, fallback) in MONTE_CARLO.items():
        default = default_replications(check, fallback)
        replications = DRY["replications"] if args.dry_run else args.mc_factor * default
        command, dropped = monte_carlo_command(check, flags, out=work / name,
                                               device=args.device, replications=replications,
                                               quick=args.dry_run)
        steps.append(Step(name, command, limits[name], notes={
            "check": check, "replications": replications, "default_replications": default,
            "factor": replications / default, "dropped_flags": dropped}))
    for step in steps:
        if args.dry_run and step.name in SKIPPED_IN_DRY_RUN:
            step.skip = SKIPPED_IN_DRY_RUN[step.name]
        elif step.name not in args.steps:
            step.skip = "not selected (--steps)"
    return steps


# --- what each step produced ------------------------------------------------------------

def junit_summary(path):
    """Counts and failures of a pytest JUnit XML report (None if there is none)."""
    if not Path(path).exists():
        return None
    counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures, skips = [], set()
    try:
        cases = list(ElementTree.parse(path).getroot().iter("testcase"))
    except ElementTree.ParseError:  # pytest stopped while writing it
        return None
    for case in cases:
        counts["tests"] += 1
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome = next((child for child in case if child.tag in
                        ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
            continue
        key = {"failure": "failed", "error": "errors", "skipped": "skipped"}[outcome.tag]
        counts[key] += 1
        message = (outcome.get("message") or "").strip().splitlines()[:1]
        if outcome.tag == "skipped":
            skips.update(message)
        else:
            failures.append({"test": name, "message": message[0][:300] if message else ""})
    return {**counts, "failures": failures, "skip_reasons": sorted(skips)}


def _record(path):
    from tailext.validate.records import RecordError, read_record

    try:
        return read_record(path)
    except RecordError:
        return None


def bench_summary(folder):
    """Rows, errors and the TEA / Prefix-TEA ratios to GRPO-Z per shape, dtype, variant."""
    record = _record(Path(folder) / "bench_torch_device.json")
    if record is None:
        return None
    rows = record["results"]["rows"]
    ratios = {}
    for row in rows:
        if row["method"] in ("grpo", "tea", "prefix_tea") and row.get("seconds") is not None:
            cell = ratios.setdefault(f"{row['shape']} {row['dtype']} {row['variant']}", {})
            cell["grpo_ms" if row["method"] == "grpo" else row["method"]] = (
                1e3 * row["seconds"] if row["method"] == "grpo" else row["ratio"])
    return {"complete": record["completeness"]["complete"],
            "configurations": f"{record['completeness']['finished']} of "
                              f"{record['completeness']['total']}",
            "rows": len(rows), "wall_s": record["timing"]["wall_s"],
            "device_name": record["configuration"]["device_name"],
            "errors": [f"{r['shape']} {r['dtype']} {r['method']} {r['variant']}: {r['error']}"
                       for r in rows if r.get("error")],
            "ratios_to_grpo": ratios}


def _completeness(record):
    done = record["completeness"]
    return {"complete": done["complete"], "cells": f"{done['finished']} of {done['total']}",
            "mode": done["mode"], "wall_s": record["timing"]["wall_s"],
            "cpu_s": record["timing"]["cpu_s"]}


def posttrain_summary(folder):
    """Completeness, the record's own time and the report's verdict lines (its headline)."""
    record = _record(Path(folder) / "posttrain.json")
    if record is None:
        return None
    report = Path(folder) / "posttrain.md"
    headline = []
    if report.exists():
        lines = report.read_text(encoding="utf-8").splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("## Verdicts")),
                     None)
        if start is not None:
            for line in lines[start + 1:]:
                if line.startswith("## "):
                    break
                if line.strip():
                    headline.append(line)
    return {**_completeness(record), "headline": headline}


def monte_carlo_summary(folder):
    """Completeness, the record's time, every cell's time, the replications and verdicts."""
    folder = Path(folder)
    records = [_record(path) for path in sorted(folder.glob("*.json"))]
    record = next((r for r in records if r is not None), None)
    if record is None:
        return None
    studies = record["configuration"].get("studies", {})
    replications = {name: study.get("replications", [None])[0]
                    for name, study in studies.items()}
    cells = {cell: times["wall_s"] for cell, times in record["timing"].get("cells", {}).items()}
    # rewards simulated per second over the finished cells ("<study>/m=<m>"): what a longer
    # run would take, read even from a step that ran out of time
    drawn = sum((replications.get(cell.split("/")[0]) or 0) * int(cell.rsplit("m=", 1)[1])
                for cell in cells if "m=" in cell)
    seconds = sum(cells.values())
    return {**_completeness(record), "replications": replications,
            "backend": {name: f"{study.get('backend')} on {study.get('device')}"
                        for name, study in studies.items()},
            "cell_wall_s": cells,
            "rewards_per_s": drawn / seconds if seconds > 0 else None,
            "verdicts": [v.get("text") for v in record["results"].get("verdicts", [])]}


def collect(step, work):
    if step.name == "cuda_tests":
        return junit_summary(work / "tests" / "junit.xml")
    if step.name == "bench":
        return bench_summary(work / "bench")
    if step.name == "posttrain":
        return posttrain_summary(work / "posttrain")
    return monte_carlo_summary(work / step.name)


def log_tail(path, lines=15, width=300):
    if not Path(path).exists():
        return []
    text = Path(path).read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
    return [line[:width] for line in text.splitlines() if line.strip()][-lines:]


# --- outputs ------------------------------------------------------------------------------

def markdown(record):
    config = record["configuration"]
    lines = [f"# GPU check on {config['device_name']} ({config['device']})", "",
             f"Command: `{config['command']}`. "
             + ("**Dry run** (CPU, toy sizes). " if config["dry_run"] else "")
             + f"Budget {config['budget_s']:.0f} s; Monte Carlo at "
             + ("toy size" if config["dry_run"] else f"{config['mc_factor']}× the default "
                                                      "replications")
             + f". tailext {record['version']} (commit "
             f"{config['commit']}), torch {record['environment'].get('torch')}.", "",
             "| step | status | wall | limit | result |", "|---|---|---|---|---|"]
    steps = record["results"]["steps"]
    for name, step in steps.items():
        wall = "–" if step.get("wall_s") is None else f"{step['wall_s']:.1f} s"
        limit = "–" if step.get("limit_s") is None else f"{step['limit_s']:.0f} s"
        lines.append(f"| {name} | {step['status']} | {wall} | {limit} | "
                     f"{_headline(name, step)} |")
    for name, step in steps.items():
        result = step.get("result") or {}
        details = []
        if name == "cuda_tests":
            details += [f"- FAILED {failure['test']}: {failure['message']}"
                        for failure in result.get("failures", [])]
            details += [f"- skipped: {reason}" for reason in result.get("skip_reasons", [])]
        elif name == "bench":
            details += [f"- {key}: GRPO-Z {cell.get('grpo_ms', float('nan')):.3g} ms, TEA "
                        f"{_ratio(cell.get('tea'))}, Prefix-TEA "
                        f"{_ratio(cell.get('prefix_tea'))}"
                        for key, cell in result.get("ratios_to_grpo", {}).items()]
            details += [f"- error: {error}" for error in result.get("errors", [])]
        elif name == "posttrain":
            details += result.get("headline", [])
        elif result:
            details += [f"- replications per m: {result.get('replications')} "
                        f"({step['notes']['factor']:.3g}× the default "
                        f"{step['notes']['default_replications']}); backend "
                        f"{result.get('backend')}",
                        "- cell wall times: " + ", ".join(
                            f"{cell} {seconds:.1f} s"
                            for cell, seconds in result.get("cell_wall_s", {}).items())]
            if result.get("rewards_per_s"):
                details.append(f"- {result['rewards_per_s']:.3g} rewards simulated per "
                               "second over the finished cells")
            details += [f"- {text}" for text in result.get("verdicts", [])]
        if step.get("notes", {}).get("dropped_flags"):
            details.append(f"- flags dropped (not offered by this tailext): "
                           f"{', '.join(step['notes']['dropped_flags'])}")
        if step["status"] in ("failed", "timed out", "interrupted"):
            details += ["", "```", *step.get("log_tail", []), "```"]
        if details:
            lines += ["", f"## {name}", "", *details]
    return "\n".join(lines) + "\n"


def _ratio(value):
    return "n/a" if value is None else f"{value:.2f}×"


def _headline(name, step):
    result = step.get("result")
    if step["status"] == "skipped":
        return step["reason"]
    if not result:
        return "no result written"
    if name == "cuda_tests":
        return (f"{result['passed']} passed, {result['failed']} failed, {result['errors']} "
                f"errors, {result['skipped']} skipped")
    if name == "bench":
        return (f"{result['rows']} rows, {result['configurations']} configurations, "
                f"{len(result['errors'])} errors")
    wall = "" if result["wall_s"] is None else f", record wall {result['wall_s']:.1f} s"
    return f"{'complete' if result['complete'] else 'partial'}, {result['cells']} cells{wall}"


def write_outputs(record, work, out, clock, finished):
    """The summary (record + markdown), the benchmark's files and one tarball → ``out``."""
    from tailext.validate.records import atomic_path, write_record, write_text

    done = record["completeness"]
    steps = record["results"]["steps"]
    done["finished"] = sum(step["status"] in ("ok", "failed") for step in steps.values())
    done["complete"] = done["finished"] == done["total"]
    clock.stamp(record, cells_run=done["finished"], interrupted=not finished)
    write_record(work / f"{NAME}.json", record)
    write_text(work / f"{NAME}.md", markdown(record))
    for source in (work / f"{NAME}.json", work / f"{NAME}.md",
                   work / "bench" / "bench_torch_device.json",
                   work / "bench" / "bench_torch_device.md"):
        if source.exists():
            with atomic_path(out / source.name) as tmp:
                shutil.copyfile(source, tmp)

    def without_training_state(info):  # posttrain's checkpoints and samples: large, resumable
        parts = Path(info.name).parts
        return None if parts[1:2] == ("posttrain",) and parts[2:3] in (
            ("checkpoints",), ("eval",)) else info

    with atomic_path(out / f"{NAME}_results.tar.gz") as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(work, arcname=NAME, filter=without_training_state)


def _limit_argument(text):
    name, _, seconds = text.partition("=")
    if name not in LIMITS_S:
        raise argparse.ArgumentTypeError(f"step must be one of {', '.join(LIMITS_S)}, got "
                                         f"{name!r}")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"seconds must be a number > 0, got {seconds!r}")
    return name, value


def parse_args(argv):
    from tailext.validate.arguments import device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder for the {MAX_FILES} files or fewer that come back "
                             "(default: $OUT, else a new temporary folder)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder of the full results (default: a new temporary folder; "
                             "reuse one to resume its validation checks)")
    parser.add_argument("--device", type=device, default="cuda")
    parser.add_argument("--dry-run", action="store_true",
                        help="the whole pipeline on the CPU at toy sizes (about 30 s)")
    parser.add_argument("--budget", type=float, default=570.0,
                        help="seconds for all steps together (default 570)")
    parser.add_argument("--limit", type=_limit_argument, action="append", default=[],
                        metavar="STEP=SECONDS", help="override one step's time limit")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="steps to run (default: all)")
    parser.add_argument("--mc-factor", type=int, default=10,
                        help="Monte Carlo replications as a multiple of each check's "
                             "default (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the benchmark")
    args = parser.parse_args(argv)
    args.limit = dict(args.limit)
    if args.budget <= 0 or args.mc_factor < 1:
        parser.error(f"--budget must be > 0 and --mc-factor >= 1, got {args.budget} and "
                     f"{args.mc_factor}")
    if args.dry_run:
        args.device = "cpu"
    from tailext.validate.arguments import cuda_problem

    problem = cuda_problem(args.device)
    if problem:
        parser.error(problem + " (--dry-run runs the pipeline on the CPU)")
    return args


def main(argv=None):
    import torch

    from bench_advantages import benchmark_environment
    from bench_common import Clock, tailext_commit
    from tailext.validate.records import new_record

    args = parse_args(argv)
    clock, began = Clock(), time.perf_counter()
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else
                       Path(tempfile.mkdtemp(prefix=f"{NAME}_out_")))
    work = args.work or Path(tempfile.mkdtemp(prefix=f"{NAME}_work_"))
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("tests", "logs"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    steps = plan(args, work)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "PYTHONUNBUFFERED": "1",
           "HF_HUB_OFFLINE": "1"}
    where = torch.device(args.device)
    config = {"device": args.device, "dry_run": args.dry_run, "budget_s": args.budget,
              "mc_factor": args.mc_factor, "limits_s": {s.name: s.limit_s for s in steps},
              "device_name": (torch.cuda.get_device_name(where) if where.type == "cuda"
                              else "CPU"),
              "commit": tailext_commit(), "work": str(work),
              "command": " ".join(["python benchmarks/gpu_check.py",
                                   *(argv if argv is not None else sys.argv[1:])])}
    record = new_record(NAME, seed=args.seed, configuration=config,
                        mode="quick" if args.dry_run else "full", total=len(steps))
    record["environment"] = benchmark_environment()
    results = record["results"]
    results.pop("cells")
    results["steps"] = {s.name: {"status": "pending", "command": s.command, "notes": s.notes}
                        for s in steps}
    print(f"[{NAME}] work folder {work}, results into {out}", file=sys.stderr, flush=True)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # a timeout's SIGTERM: as Ctrl-C
        from tailext.validate.runner import stop_on_sigterm

        signal.signal(signal.SIGTERM, stop_on_sigterm)
    finished = False
    try:
        for step in steps:
            entry = results["steps"][step.name]
            limit = None if step.skip else limit_for(step.limit_s,
                                                     time.perf_counter() - began, args.budget)
            if step.skip or limit is None:
                entry.update(status="skipped", reason=step.skip or "the budget is spent")
                continue
            print(f"[{NAME}] {step.name}: limit {limit:.0f} s: {' '.join(step.command[1:])}",
                  file=sys.stderr, flush=True)
            log = work / "logs" / f"{step.name}.log"
            entry.update(limit_s=limit, status="running")
            entry.update(run_step(step.command, limit, log, env=env))
            entry.update(result=collect(step, work), log_tail=log_tail(log))
            print(f"[{NAME}] {step.name}: {entry['status']} in {entry['wall_s']:.1f} s",
                  file=sys.stderr, flush=True)
            write_outputs(record, work, out, clock, finished=False)
        finished = True
    except KeyboardInterrupt:
        print(f"[{NAME}] interrupted: writing what finished", file=sys.stderr)
        for name, entry in results["steps"].items():
            if entry["status"] == "running":
                log = work / "logs" / f"{name}.log"
                entry.update(status="interrupted", result=collect(
                    next(s for s in steps if s.name == name), work), log_tail=log_tail(log))
            elif entry["status"] == "pending":
                entry.update(status="skipped", reason="interrupted")
    write_outputs(record, work, out, clock, finished=finished)
    written = sorted(path.name for path in out.iterdir())
    print(markdown(record))
    print(f"[{NAME}] wrote {', '.join(written)} into {out}", file=sys.stderr)
    return 0 if finished else 130


if __name__ == "__main__":
    sys.exit(main())
