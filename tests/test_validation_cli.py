"""The command line: every argument is checked before any work, with one line and exit 2.

Each bad command line is here with its exact message; none of them may create ``--out``.
"""

import importlib.util

import pytest

from tailext import cli
from tailext.cli import VALIDATIONS, build_parser, main


def _error(capsys, argv) -> str:
    """Run ``argv``; it must exit 2 with one line on stderr, which is returned."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


@pytest.mark.parametrize("check, extra, message", [
    ("appendix-e", ["--seed", "-1"], "argument --seed: must be an integer from 0 to 2**63 - 1 "
                                     "(numpy seeds cannot be negative), got '-1'"),
    ("rates", ["--seed", "x"], "argument --seed: must be an integer, got 'x'"),
    ("simulator", ["--seed", "-1"], "argument --seed: must be an integer from 0 to 2**63 - 1 "
                                    "(numpy seeds cannot be negative), got '-1'"),
    ("simulator", ["--steps", "-5"], "argument --steps: must be a positive integer, got '-5'"),
    ("simulator", ["--steps", "0"], "argument --steps: must be a positive integer, got '0'"),
    ("lemmas", ["--tail-fraction", "1.5"],
     "argument --tail-fraction: must lie strictly between 0 and 1, got '1.5'"),
    ("lemmas", ["--tail-fraction", "nan"],
     "argument --tail-fraction: must be a finite number, got 'nan'"),
    ("lemmas", ["--tail-fraction", "0.5"],
     "--tail-fraction must be below 0.3: Lemma 1's density is Gaussian only above its 70% "
     "quantile, got 0.5."),
    ("lemmas", ["--n-target", "0"], "argument --n-target: must be a positive integer, got '0'"),
    ("lemmas", ["--bogus"], "unrecognized arguments: --bogus"),
    ("appendix-e", ["--replications", "1001"],
     "--replications must be a multiple of 8 and at least 16 (they are split into 8 or more "
     "seeded blocks), got 1001."),
    ("appendix-e", ["--tail-fraction", "0"],
     "argument --tail-fraction: must lie strictly between 0 and 1, got '0'"),
    ("appendix-e", ["--device", "cuda"],
     "--device cuda needs --backend torch (numba runs on the CPU)."),
    ("appendix-e", ["--device", "gpu0"],
     "argument --device: must be cpu, cuda, cuda:N or mps, got 'gpu0'"),
    ("rates", ["--threads", "0"], "argument --threads: must be a positive integer, got '0'"),
])
def test_bad_arguments_are_one_line_errors_before_any_work(check, extra, message, tmp_path,
                                                            capsys):
    out = tmp_path / "out"
    err = _error(capsys, ["validate", check, "--out", str(out), *extra])
    assert err == f"tailext validate {check}: error: {message}"
    assert not out.exists()


def test_choices_are_checked(tmp_path, capsys):
    # argparse's own wording (its quoting of the choices differs between Python versions)
    err = _error(capsys, ["validate", "appendix-e", "--out", str(tmp_path / "o"), "--backend",
                          "jax"])
    assert err.startswith("tailext validate appendix-e: error: argument --backend: invalid "
                          "choice: 'jax' (choose from ")


def test_posttrain_argument_errors(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "out"
    err = _error(capsys, ["validate", "posttrain", "--out", str(out), "--rules", "TEA"])
    assert err == ("tailext validate posttrain: error: --rules must include the reference "
                   "rule GRPO, got TEA.")
    err = _error(capsys, ["validate", "posttrain", "--out", str(out), "--kl-coef", "-1"])
    assert err.endswith("argument --kl-coef: must be non-negative, got '-1'")
    err = _error(capsys, ["validate", "posttrain", "--out", str(out), "--rules", "grpo"])
    assert "argument --rules: invalid choice: 'grpo'" in err
    assert not out.exists()


def test_out_naming_an_existing_file_is_refused(tmp_path, capsys):
    path = tmp_path / "a_file"
    path.write_text("x")
    err = _error(capsys, ["validate", "rates", "--quick", "--out", str(path)])
    assert err == (f"tailext validate rates: error: argument --out: {path} exists and is not "
                   f"a directory")
    assert path.read_text() == "x"


def test_out_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    err = _error(capsys, ["validate", "lemmas", "--out", str(tmp_path / "a_file" / "sub")])
    assert err.endswith(f"argument --out: {tmp_path / 'a_file'} is not a directory, so "
                        f"{tmp_path / 'a_file' / 'sub'} cannot be created")


def test_missing_extras_name_what_to_install(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec

    def without_plotting(name, *args):
        return None if name in ("matplotlib", "tqdm") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_plotting)
    out = tmp_path / "out"
    err = _error(capsys, ["validate", "lemmas", "--out", str(out)])
    assert err == ("tailext validate lemmas: error: needs matplotlib and tqdm, which are not "
                   "installed (pip install 'tailext[validate]')")
    # without a progress bar tqdm is not needed
    err = _error(capsys, ["validate", "lemmas", "--out", str(out), "--no-progress"])
    assert err == ("tailext validate lemmas: error: needs matplotlib, which is not installed "
                   "(pip install 'tailext[validate]')")
    assert not out.exists()


def test_the_same_flags_mean_the_same_everywhere():
    parser = build_parser()
    checks = parser._subparsers._group_actions[0].choices["validate"]
    flags = {name: {s for a in sub._actions for s in a.option_strings}
             for name, sub in checks._subparsers._group_actions[0].choices.items()}
    for name, options in flags.items():
        assert {"--out", "--quick", "--no-progress"} <= options, name
    for name in ("appendix-e", "rates", "simulator", "posttrain"):
        assert {"--seed", "--threads"} <= flags[name], name
    for name in ("appendix-e", "rates", "posttrain"):
        assert "--device" in flags[name], name
    assert "--backend" in flags["appendix-e"] and "--backend" in flags["rates"]


def test_help_is_plain_text(capsys):
    for argv in (["-h"], ["validate", "-h"], *[["validate", name, "-h"] for name in VALIDATIONS]):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 0
        text = capsys.readouterr().out
        for markup in ("``", ":func:", ":mod:", ":class:", ":data:"):
            assert markup not in text, (argv, markup)


def test_ctrl_c_before_any_check_is_one_line(capsys, monkeypatch):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_main", interrupted)
    assert main(["validate", "lemmas", "--out", "x"]) == 130
    assert capsys.readouterr().err == "interrupted before any work: nothing written.\n"
