"""``tailext validate binary-rewards`` (0/1 rewards against the pass@N oracle), quick mode."""

import json
import math

import numpy as np
import pytest

from tailext.cli import main
from tailext.validate.theory import binary_rewards as br


@pytest.fixture(scope="module")
def quick_record(tmp_path_factory):
    out = tmp_path_factory.mktemp("binary")
    status = main(["validate", "binary-rewards", "--out", str(out), "--quick", "--seed", "0",
                   "--no-progress"])
    return status, out, json.loads((out / "binary_rewards.json").read_text())


def test_self_checks_pass_and_the_record_is_complete(quick_record):
    status, out, record = quick_record
    assert status == 0, record["results"]["summary"]
    assert record["completeness"]["complete"] and record["seed"] == 0
    assert {"configuration", "environment", "timing", "version"} <= set(record)
    assert len(record["results"]["cells"]) == len(br.TARGETS) * len(br.GROUP_SIZES)
    report = (out / "binary_rewards.md").read_text()
    assert "**Quick run**" in report and "Self-checks **all pass**" in report
    assert "| N | m | tea |" in report


def test_tea_aligns_with_pass_at_n_better_than_grpo(quick_record):
    # The main finding: GRPO (z-scored) and mean-centring spend their update on prompts that
    # pass@N already solves; TEA, which targets N, does not. The exact alignment has no
    # sampling error; the realized cosine's difference must exceed 4 standard errors
    # (SE = sd / sqrt(batches) of each, combined in quadrature).
    for key, cell in quick_record[2]["results"]["cells"].items():
        tea, grpo, centred = (cell["rules"][r] for r in ("tea", "grpo", "mean_centred"))
        assert tea["alignment"] > grpo["alignment"] > centred["alignment"], key
        se = math.hypot(tea["realized_cosine_se"], grpo["realized_cosine_se"])
        assert tea["realized_cosine"] - grpo["realized_cosine"] > 4 * se, key


def test_unbiased_max_at_k_is_best_for_pass_at_n_with_large_groups(quick_record):
    cells = quick_record[2]["results"]["cells"]
    for n_target in br.TARGETS:
        rules = cells[f"N={n_target},m=64"]["rules"]
        assert rules["maxk_loo1"]["alignment"] > rules["tea"]["alignment"]
    # k = N <= m: maxk_loo1 estimates the pass@N gradient without bias.
    assert cells["N=16,m=16"]["rules"]["maxk_loo1"]["alignment"] == pytest.approx(1, abs=1e-9)


@pytest.mark.parametrize("m, n_target, nonzero", [
    (8, 128, [1]),        # k = ceil(m/4) = 2: two successes already fill the tail
    (16, 128, [1, 2]),    # s = 3 < k = 4, but psi(1) < 0 there and is clipped
    (16, 16, [1, 2, 3]),  # a smaller kappa_N keeps psi(1) > 0 up to s = k - 1
    (64, 16, list(range(1, 14))),
])
def test_tea_gives_signal_only_when_successes_are_rare_in_the_group(m, n_target, nonzero):
    _, _, zero = br.success_table("tea", m, n_target)
    assert np.flatnonzero(~zero).tolist() == nonzero


def test_oracle_update_is_the_derivative_of_pass_at_n():
    # dV_N/dθ for V_N = 1 - (1 - p)^N and p = sigmoid(θ), by central differences in θ.
    for p, n_target in ((0.05, 16), (0.3, 128), (0.01, 128)):
        theta, h = math.log(p / (1 - p)), 1e-6
        value = lambda t: 1 - (1 - 1 / (1 + math.exp(-t))) ** n_target  # noqa: E731
        numeric = (value(theta + h) - value(theta - h)) / (2 * h)
        update, error = br.oracle_update(p, n_target)
        assert update == pytest.approx(numeric, rel=1e-6) and error <= 1e-12


def test_cells_are_seeded_and_finished_cells_are_reused(tmp_path, monkeypatch):
    settings = {"batches": 50, "prompts_per_rate": 2, "groups": 20}
    assert br.cell(8, 16, 3, settings) == br.cell(8, 16, 3, settings)
    assert br.cell(8, 16, 3, settings) != br.cell(8, 16, 4, settings)
    argv = ["validate", "binary-rewards", "--out", str(tmp_path), "--batches", "50",
            "--groups", "20", "--no-progress"]
    assert main(argv) == 0
    first = json.loads((tmp_path / "binary_rewards.json").read_text())["results"]["cells"]

    def recompute(*_):
        raise AssertionError("a finished cell was computed again")

    monkeypatch.setattr(br, "cell", recompute)
    assert main(argv) == 0
    again = json.loads((tmp_path / "binary_rewards.json").read_text())["results"]["cells"]
    assert again == first
