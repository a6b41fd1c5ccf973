"""A small run of benchmarks/stats_calibration.py: the report's statistics hold their rates."""

import importlib.util
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "stats_calibration.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("stats_calibration", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_coverage_and_false_positive_rate_hold_at_3_and_10_trials():
    calibration = _benchmark()
    table = calibration.calibrate((3, 10), 400, 30, calibration.Noise(), seed=1)
    for row in table.itertuples():
        assert 90 <= row.coverage_null_pct <= 99, row
        assert 90 <= row.coverage_20pct <= 99, row
        assert row.false_positive_pct <= 9, row
    assert table.set_index("trials").loc["10", "power_20pct"] > 90


def test_the_replaced_pooled_method_fails_the_same_check():
    calibration = _benchmark()
    table = calibration.alternatives((3,), 60, 30, calibration.Noise(), seed=2)
    pooled = table[table["method"] == "pooled"].iloc[0]
    assert pooled["false_positive_pct"] > 30
