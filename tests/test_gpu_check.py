"""benchmarks/gpu_check.py: the GPU run's plan, its time limits, its summaries and its dry run.

The GPU run itself needs a CUDA device; here its commands are parsed by the real command
line, the budget logic is run on sleeping processes, the summaries are read from the
committed validation results, and the whole pipeline runs once on the CPU (``--dry-run``)
with one step given a limit it cannot meet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_torch_device  # noqa: E402
import gpu_check  # noqa: E402
from bench_common import rule_variants  # noqa: E402
from tailext.cli import build_parser  # noqa: E402
from tailext.validate.records import read_record  # noqa: E402
from tailext.validate.theory import rates as rates_module  # noqa: E402


def _gpu_args(**changes):
    args = argparse.Namespace(dry_run=False, device="cuda", limit={},
                              steps=list(gpu_check.STEPS), mc_factor=10, seed=0)
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def _flag(command, flag):
    return command[command.index(flag) + 1]


def test_the_gpu_plan_runs_every_step_with_commands_the_cli_accepts(tmp_path):
    from tailext.validate.theory import appendix_e, rates

    steps = {step.name: step for step in gpu_check.plan(_gpu_args(), tmp_path)}
    assert list(steps) == list(gpu_check.STEPS)
    assert not any(step.skip for step in steps.values())
    assert sum(step.limit_s for step in steps.values()) + gpu_check.GRACE_S <= 600
    tests = steps["cuda_tests"].command
    assert tests[1:3] == ["-m", "pytest"] and _flag(tests, "-m") == "pytest"
    assert "cuda" in tests and tests[-1] == "tests"
    bench = steps["bench"].command
    assert _flag(bench, "--device") == "cuda" and "--shapes" not in bench
    assert bench_torch_device.DEFAULT_SHAPES == ("4096x16", "4096x64", "1024x1024", "65536x64")
    assert bench_torch_device.DEFAULT_DTYPES == ("float32", "bfloat16")
    defaults = {"appendix_e": appendix_e.DEFAULT_REPLICATIONS,
                "rates": max(study.replications for study in rates.STUDIES.values()
                              if isinstance(study.replications, int))}
    for name in ("posttrain", "appendix_e", "rates"):
        command = steps[name].command
        assert command[1:4] == ["-m", "tailext.cli", "validate"]
        parsed = build_parser().parse_args(command[3:])  # the real parser accepts it
        assert parsed.device == "cuda"
        if name == "posttrain":
            assert parsed.quick
        else:
            assert parsed.backend == "torch" and not parsed.quick
            assert parsed.replications == 10 * defaults[name]
            assert steps[name].notes["factor"] == 10
            assert steps[name].notes["dropped_flags"] == []


def test_flags_the_check_does_not_offer_are_dropped_and_named(tmp_path):
    command, dropped = gpu_check.monte_carlo_command(
        "rates", {"--backend": "torch", "--no-such-option": "1", "--no-progress": None,
                  "--replications": gpu_check.REPLICATIONS}, out=tmp_path, device="cuda",
        replications=160, quick=False)
    assert dropped == ["--no-such-option"]
    assert "--no-such-option" not in command and "--no-progress" in command
    assert _flag(command, "--replications") == "160"
    build_parser().parse_args(command[3:])


def test_step_limits_are_clipped_to_what_is_left_of_the_budget():
    grace, reserve = gpu_check.GRACE_S, gpu_check.RESERVE_S
    assert gpu_check.limit_for(100, 0, 1000) == 100
    assert gpu_check.limit_for(100, 900, 1000) == 100 - grace - reserve
    assert gpu_check.limit_for(0.5, 0, 1000) == 0.5  # a limit asked for is kept
    too_late = 1000 - grace - reserve - gpu_check.MIN_STEP_S + 1
    assert gpu_check.limit_for(100, too_late, 1000) is None


def test_run_step_records_success_failure_and_a_step_past_its_limit(tmp_path, monkeypatch):
    ok = gpu_check.run_step([sys.executable, "-c", "print('done')"], 60, tmp_path / "ok.log")
    assert ok["status"] == "ok" and ok["returncode"] == 0
    assert (tmp_path / "ok.log").read_text().strip() == "done"
    failed = gpu_check.run_step([sys.executable, "-c", "raise SystemExit(3)"], 60,
                                tmp_path / "failed.log")
    assert failed["status"] == "failed" and failed["returncode"] == 3
    # ignores SIGTERM, so only the SIGKILL after the grace period ends it
    monkeypatch.setattr(gpu_check, "GRACE_S", 0.5)
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)")
    began = time.perf_counter()
    late = gpu_check.run_step([sys.executable, "-c", stubborn], 2.0, tmp_path / "late.log")
    assert late["status"] == "timed out" and late["returncode"] != 0
    assert 2.0 <= late["wall_s"] < 2.0 + 0.5 + 5 and time.perf_counter() - began < 10


def test_junit_summary_counts_outcomes(tmp_path):
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.a" name="test_ok"/>'
        '<testcase classname="tests.a" name="test_bad"><failure message="assert 1 == 2&#10;'
        'more">trace</failure></testcase>'
        '<testcase classname="tests.b" name="test_gpu"><skipped message="needs a CUDA '
        'device"/></testcase>'
        '<testcase classname="tests.b" name="test_gpu2"><skipped message="needs a CUDA '
        'device"/></testcase></testsuite></testsuites>')
    summary = gpu_check.junit_summary(tmp_path / "junit.xml")
    assert {k: summary[k] for k in ("tests", "passed", "failed", "errors", "skipped")} == {
        "tests": 4, "passed": 1, "failed": 1, "errors": 0, "skipped": 2}
    assert summary["failures"] == [{"test": "tests.a::test_bad", "message": "assert 1 == 2"}]
    assert summary["skip_reasons"] == ["needs a CUDA device"]
    assert gpu_check.junit_summary(tmp_path / "missing.xml") is None


def test_validation_summaries_read_the_committed_results():
    results = ROOT / "docs" / "results"
    posttrain = gpu_check.posttrain_summary(results / "posttrain" / "seed0")
    assert posttrain["complete"] and posttrain["wall_s"] > 0
    assert len(posttrain["headline"]) == 4
    assert all(line.startswith("- ") and "− GRPO" in line for line in posttrain["headline"])
    appendix = gpu_check.monte_carlo_summary(results / "appendix-e")
    assert appendix["complete"] and appendix["replications"] == {"table15": 131072}
    assert appendix["wall_s"] > 0 and len(appendix["verdicts"]) >= 4


def test_dry_run_writes_the_summary_and_records_a_step_past_its_limit(tmp_path):
    """The CPU pipeline end to end; ``cuda_tests`` gets 0.5 s, so it must be stopped and
    recorded as timed out while the steps after it still run."""
    out, work = tmp_path / "out", tmp_path / "work"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"),
                           "--dry-run", "--out", str(out), "--work", str(work),
                           "--limit", "cuda_tests=0.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(path.name for path in out.iterdir())
    assert len(files) <= gpu_check.MAX_FILES and all(path.is_file() for path in out.iterdir())
    assert files == ["bench_torch_device.json", "bench_torch_device.md", "gpu_check.json",
                     "gpu_check.md", "gpu_check_results.tar.gz"]
    record = read_record(out / "gpu_check.json")
    assert record["completeness"]["mode"] == "quick" and record["timing"]["wall_s"] > 0
    assert record["configuration"]["device"] == "cpu" and record["configuration"]["dry_run"]
    steps = record["results"]["steps"]
    assert list(steps) == list(gpu_check.STEPS)
    timed_out = steps["cuda_tests"]
    assert timed_out["status"] == "timed out" and timed_out["limit_s"] == 0.5
    assert 0.5 <= timed_out["wall_s"] < 0.5 + gpu_check.GRACE_S + 5
    for name in ("posttrain", "appendix_e"):
        assert steps[name]["status"] == "skipped" and steps[name]["reason"].startswith("dry")
    for name in ("bench", "rates"):
        assert steps[name]["status"] == "ok" and steps[name]["wall_s"] > 0
    assert record["completeness"]["finished"] == 2 and not record["completeness"]["complete"]
    bench = steps["bench"]["result"]
    assert bench["complete"] and bench["errors"] == []
    per_dtype = 2 * len(rule_variants()) + 1  # both variants of every row, and plain torch
    assert bench["rows"] == 2 * per_dtype  # float32 and bfloat16 on one shape
    for cell in bench["ratios_to_grpo"].values():
        assert cell["grpo_ms"] > 0 and cell["tea"] > 0 and cell["prefix_tea"] > 0
    rates = steps["rates"]["result"]
    # the dry run is a quick run: each study on its quick grid, studies with none left out
    grids = {name: (study.group_sizes if study.quick_group_sizes is None
                    else study.quick_group_sizes)
             for name, study in rates_module.STUDIES.items()}
    grids = {name: sizes for name, sizes in grids.items() if sizes}
    assert rates["complete"] and rates["replications"] == {name: 16 for name in grids}
    assert rates["backend"] == {name: "torch on cpu" for name in grids}
    cells = rates["cell_wall_s"]
    assert len(cells) == sum(len(sizes) for sizes in grids.values())
    assert all(seconds > 0 for seconds in cells.values())
    simulated = 16 * sum(sum(sizes) for sizes in grids.values())
    assert rates["rewards_per_s"] == pytest.approx(simulated / sum(cells.values()))
    benchmark = json.loads((out / "bench_torch_device.json").read_text())
    grpo = [row for row in benchmark["results"]["rows"] if row["method"] == "grpo"]
    assert len(grpo) == 4 and all(row["ratio"] == 1.0 for row in grpo)
    with tarfile.open(out / "gpu_check_results.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"gpu_check/bench/bench_torch_device.json", "gpu_check/rates/rates.json",
            "gpu_check/logs/cuda_tests.log", "gpu_check/logs/rates.log",
            "gpu_check/gpu_check.json"} <= names
    summary = (out / "gpu_check.md").read_text()
    assert "| cuda_tests | timed out |" in summary and "| rates | ok |" in summary
