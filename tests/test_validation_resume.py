"""Resume of every check: an interrupted and resumed run equals an uninterrupted one.

Interruptions are deterministic: ``tailext.validate.runner.cell_saved`` (called after each
cell is saved) is replaced by a hook that raises KeyboardInterrupt after ``n`` cells, as a
Ctrl-C at that point would. Each check runs a tiny configuration: uninterrupted into one
directory; interrupted twice, then resumed to the end, into another. The finished cells and
every derived result (slopes, verdicts, comparisons) must be identical; timing and
environment are the only fields allowed to differ.
"""

import json

import pytest

from tailext.cli import main
from tailext.validate import runner

#: (check, arguments of a tiny configuration, cells before the 1st and the 2nd interruption)
CASES = {
    "appendix-e": (["--replications", "64"], 2, 1),
    "rates": (["--replications", "64"], 1, 2),
    "lemmas": ([], 1, 2),
    "binary-rewards": (["--quick", "--batches", "50", "--groups", "20"], 2, 1),
    "simulator": (["--quick", "--steps", "5"], 3, 2),
    "posttrain": (["--quick", "--steps", "4", "--rules", "GRPO", "TEA"], 1, 1),
    "posttrain-risky": (["--quick", "--steps", "2", "--rules", "GRPO", "TEA", "--scales",
                         "raw", "--tasks", "risky"], 2, 2),
}
RECORD = {"appendix-e": "appendix_e.json", "rates": "rates.json", "lemmas": "lemmas.json",
          "binary-rewards": "binary_rewards.json",
          "simulator": "simulator.json", "posttrain": "posttrain.json",
          "posttrain-risky": "posttrain_risky.json"}


def _run(check, out, args, *, interrupt_after=None, monkeypatch=None, capsys=None):
    if interrupt_after is not None:
        saved = []

        def hook(record):
            saved.append(1)
            if len(saved) == interrupt_after:
                raise KeyboardInterrupt

        monkeypatch.setattr(runner, "cell_saved", hook)
    try:
        return main(["validate", check, "--out", str(out), "--no-progress", *args])
    finally:
        monkeypatch.setattr(runner, "cell_saved", lambda record: None)


def _record(out, check):
    return json.loads((out / RECORD[check]).read_text())


@pytest.mark.parametrize("check", list(CASES))
def test_resumed_run_equals_uninterrupted_run(check, tmp_path, monkeypatch, capsys):
    if check.startswith("posttrain"):
        pytest.importorskip("torch")
    args, first, second = CASES[check]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _run(check, straight, args, monkeypatch=monkeypatch) == 0
    reference = _record(straight, check)
    total = reference["completeness"]["total"]
    assert first + second < total

    # first interruption: a consistent partial record, report and figures, one clear line
    capsys.readouterr()
    assert _run(check, resumed, args, interrupt_after=first, monkeypatch=monkeypatch) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"interrupted: kept {first} of {total} cells of {check}"), err
    assert "Traceback" not in err
    partial = _record(resumed, check)
    assert partial["completeness"]["finished"] == first
    assert not partial["completeness"]["complete"]
    report = next(resumed.glob("*.md")).read_text()
    assert f"PARTIAL: {first} of {total} cells finished" in report

    # second interruption: the record only gains cells (never a less complete record)
    assert _run(check, resumed, args, interrupt_after=second, monkeypatch=monkeypatch) == 130
    partial = _record(resumed, check)
    assert partial["completeness"]["finished"] == first + second
    assert list(partial["results"]["cells"]) == list(reference["results"]["cells"])[
        :first + second]

    # resumed to the end: identical cells and derived results
    assert _run(check, resumed, args, monkeypatch=monkeypatch) == 0
    final = _record(resumed, check)
    assert final["completeness"] == reference["completeness"]
    assert final["configuration"] == reference["configuration"]
    assert final["results"] == reference["results"]
    assert [i["cells_run"] for i in final["timing"]["invocations"]] == [
        first, second, total - first - second]
    assert final["timing"]["wall_s"] == pytest.approx(
        sum(i["wall_s"] for i in final["timing"]["invocations"]))
    assert "PARTIAL" not in next(resumed.glob("*.md")).read_text()


def test_a_complete_record_is_kept_and_only_its_outputs_rewritten(tmp_path, monkeypatch,
                                                                    capsys):
    args = CASES["lemmas"][0]
    assert _run("lemmas", tmp_path, args, monkeypatch=monkeypatch) == 0
    before = (tmp_path / "lemmas.json").read_text()
    (tmp_path / "lemmas.md").unlink()
    capsys.readouterr()
    assert _run("lemmas", tmp_path, args, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "4 cell(s) from the record, 0 computed" in out
    assert (tmp_path / "lemmas.json").read_text() == before  # not even the timing moved
    assert (tmp_path / "lemmas.md").exists()


def test_interrupt_before_any_cell_writes_nothing(tmp_path, monkeypatch, capsys):
    from tailext.validate.theory import lemmas

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(lemmas, "lemma2_row", interrupted)
    out = tmp_path / "lemmas"
    assert main(["validate", "lemmas", "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert err == ("interrupted: no cell of lemmas had finished; nothing written; run the "
                   "same command to resume " + err.split("resume ")[1])
    assert not out.exists()


def test_quick_and_full_results_are_kept_apart(tmp_path, monkeypatch, capsys):
    assert _run("lemmas", tmp_path, ["--quick"], monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        _run("lemmas", tmp_path, [], monkeypatch=monkeypatch)
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        f"tailext validate lemmas: error: {tmp_path} holds a quick run of lemmas; a full run "
        f"needs another --out (quick and full results are kept apart).\n")
    assert _record(tmp_path, "lemmas")["completeness"]["mode"] == "quick"


def test_another_configuration_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    assert _run("lemmas", tmp_path, ["--quick"], monkeypatch=monkeypatch) == 0
    before = (tmp_path / "lemmas.json").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        _run("lemmas", tmp_path, ["--quick", "--n-target", "64"], monkeypatch=monkeypatch)
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        f"tailext validate lemmas: error: {tmp_path / 'lemmas.json'} was written with another "
        f"configuration (configuration.n_target: 128 there, 64 now); use another --out, or "
        f"the options that run used.\n")
    assert (tmp_path / "lemmas.json").read_text() == before


def test_a_file_that_is_not_a_record_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "lemmas.json").write_text('{"check": "lemmas"}')
    with pytest.raises(SystemExit) as exit:
        _run("lemmas", tmp_path, ["--quick"], monkeypatch=monkeypatch)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tailext validate lemmas: error: ") and err.count("\n") == 1
    assert "has no 'schema' field" in err and err.endswith("Use another --out.\n")


@pytest.mark.parametrize("number", ["SIGINT", "SIGTERM"])
def test_a_signal_while_writing_is_deferred_until_the_files_are_written(number):
    # SIGTERM as the command line installs it (tailext.cli.main), SIGINT as Python does
    import os
    import signal

    from tailext.validate.runner import deferred_interrupt, stop_on_sigterm

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    finished = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupt():
                os.kill(os.getpid(), getattr(signal, number))
                finished.append("outputs written")  # reached: the signal waited
        assert finished == ["outputs written"]
    finally:
        signal.signal(signal.SIGTERM, previous)
