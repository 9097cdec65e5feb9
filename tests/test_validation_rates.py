"""``tailext validate rates --quick`` (about 5 s once numba's cache is warm)."""

import json

from tailext.cli import main


def test_quick_rates_tea_bias_slope_is_minus_one(tmp_path):
    # Theorem 1 on the δ = 0 grid m = 160·2^k: the 95 % CI of the fitted log-log slope of
    # the TEA bias (SE-weighted, widened by lack of fit, with the 1/m term) contains −1.
    assert main(["validate", "rates", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "rates.json").read_text())
    assert record["completeness"]["complete"]
    (tea_bias, *_) = record["results"]["verdicts"]
    assert tea_bias["claim"].startswith("TEA bias") and tea_bias["holds"], tea_bias
    fit = record["results"]["slopes"]["theorem1"]["tea"]["bias"]["corrected"]
    assert fit["ci_low"] <= -1.0 <= fit["ci_high"]
    report = (tmp_path / "rates.md").read_text()
    assert "**Quick run**" in report and "**holds**" in report
    assert "_contains_" not in report  # verdicts in words, not raw keys
    assert (tmp_path / "rates.png").stat().st_size > 0
