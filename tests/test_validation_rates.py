"""``tailext validate rates --quick`` (opt-in: a few minutes on the shared 2-core machine)."""

import json

import pytest

from tailext.cli import main


@pytest.mark.slow
def test_quick_rates_tea_bias_slope_is_minus_one(tmp_path):
    # Theorem 1 on the δ = 0 grid m = 160·2^k: the 95 % CI of the fitted log-log slope of
    # the TEA bias (SE-weighted, widened by lack of fit) contains −1.
    assert main(["validate", "rates", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "rates.json").read_text())
    assert record["complete"]
    assert record["verdicts"]["tea_bias_slope_contains_-1"], record["slopes"]["tea"]
    assert (tmp_path / "rates.png").stat().st_size > 0
