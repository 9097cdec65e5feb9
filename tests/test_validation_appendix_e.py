"""CI check of ``tailext validate appendix-e --quick``, asserting on its record.

The diagnostic is described in docs/math.md#diagnostic.
"""

import json

import pytest

from tailext.cli import main
from tailext.validate.montecarlo.check import study_rows


@pytest.fixture(scope="module")
def quick_record(tmp_path_factory):
    out = tmp_path_factory.mktemp("appendix_e")
    assert main(["validate", "appendix-e", "--quick", "--no-progress", "--out", str(out)]) == 0
    record = json.loads((out / "appendix_e.json").read_text())
    return record, out


def test_record_is_complete_and_reproducible_metadata(quick_record):
    record, out = quick_record
    import tailext

    assert record["completeness"] == {"mode": "quick", "finished": 5, "total": 5,
                                      "complete": True, "overrides": {}}
    assert record["version"] == tailext.__version__
    assert record["seed"] == record["configuration"]["studies"]["table15"]["seed"]
    rows = study_rows(record, "table15")
    assert {(r["estimator"], r["m"]) for r in rows} == {
        (name, m) for name in ("tea", "prefix_tea_L2_J3", "prefix_tea_L2_J4")
        for m in (256, 512, 1024, 2048, 4096)}
    for row in rows:
        assert set(row["mse"]) == {"1", "2048", "65536"}
        # an unresolved bias is never reported as a measured value
        assert (row["bias_norm"] is None) == (not row["resolved"])
        assert row["resolved"] == (row["bias_estimate"] > 2 * row["bias_se"])
    text = (out / "appendix_e.md").read_text()
    assert "9.972e-03" in text  # the paper's Table 15 sits beside ours
    assert "**Quick run**" in text and "## Verdicts" in text
    assert (out / "figure4.png").stat().st_size > 0 and (out / "figure5.png").stat().st_size > 0


def test_tea_bias_rate_is_one_over_m(quick_record):
    # Theorem 1: the CI of the fitted log-log slope (WLS on SE-weighted logs, widened by the
    # lack of fit) must contain -1, and every TEA bias must be resolved.
    record, _ = quick_record
    tea = [r for r in study_rows(record, "table15") if r["estimator"] == "tea"]
    assert all(r["resolved"] for r in tea)
    slope = record["results"]["slopes"]["tea"]["bias"]
    assert slope["ci_low"] <= -1.0 <= slope["ci_high"], slope
    verdict = record["results"]["verdicts"][0]
    assert verdict["holds"] and verdict["text"].startswith("TEA bias falls like 1/m")


def test_prefix_tea_bias_below_tea_for_large_m(quick_record):
    # Theorem 2: at m >= 1024 Prefix-TEA's bias is below TEA's, or not resolved by 2 SE
    # (then it cannot be told apart from zero at this replication count).
    record, _ = quick_record
    rows = study_rows(record, "table15")
    tea = {r["m"]: r for r in rows if r["estimator"] == "tea"}
    for row in rows:
        if row["estimator"] != "tea" and row["m"] >= 1024:
            assert (not row["resolved"]) or row["bias_norm"] < tea[row["m"]]["bias_norm"], row
