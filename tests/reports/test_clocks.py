"""Trials whose GPU clocks dropped or throttled are named in the report's noisy reasons."""

import numpy as np
import pandas as pd

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.profiler.collectors.device_sampler import summarize_samples
from nnr_profile.reports.clocks import SHOWN, clock_noise_by_mode, with_clock_noise
from nnr_profile.reports.report import write_report
from nnr_profile.store.database import Store

GPU = {"host": "node1", "gpu": {"arch": "Hopper", "name": "NVIDIA H100 80GB HBM3"}}


def _trial(trial_id, mode, repeat, clock_noise, workload="resnet50"):
    return {
        "trial_id": trial_id,
        "framework": "torch",
        "workload": workload,
        "workload_args": "{}",
        "batch_size": 8,
        "image_size": None,
        "device": "gpu0",
        "host": "node1",
        "gpu_arch": "Hopper",
        "gpu_name": "H100",
        "mode": mode,
        "repeat": repeat,
        "clock_noise": clock_noise,
    }


def _row(workload, baseline, mode, note=""):
    return {
        "framework": "torch",
        "workload": workload,
        "workload_args": "{}",
        "batch_size": 8,
        "image_size": np.nan,
        "device": "cuda",
        "gpu_arch": "Hopper",
        "gpu_name": "H100",
        "baseline_mode": baseline,
        "mode": mode,
        "noisy": False,
        "note": note,
    }


def test_each_mode_names_its_trials_whose_clocks_dropped():
    per_trial = pd.DataFrame(
        [
            _trial(1, "default", 0, None),
            _trial(2, "deterministic", 0, "SM clock dropped to 1410 MHz (median 1980)"),
            _trial(3, "deterministic", 1, "throttled: sw_power_cap"),
            _trial(4, "default", 1, np.nan),
            _trial(5, "default", 2, "  "),
        ]
    )
    by_mode = clock_noise_by_mode(per_trial)
    assert list(by_mode["mode"]) == ["deterministic"]
    text = by_mode["clock_noise"].iloc[0]
    assert text == (
        "deterministic repeat 0 (SM clock dropped to 1410 MHz (median 1980)), "
        "deterministic repeat 1 (throttled: sw_power_cap)"
    )
    assert by_mode["device"].iloc[0] == "cuda" and np.isnan(by_mode["image_size"].iloc[0])


def test_many_noisy_trials_are_counted_not_all_listed():
    per_trial = pd.DataFrame(
        [_trial(i, "default", i, "throttled: hw_slowdown") for i in range(SHOWN + 2)]
    )
    text = clock_noise_by_mode(per_trial)["clock_noise"].iloc[0]
    assert text.count("repeat") == SHOWN and text.endswith("and 2 more trial(s)")


def test_a_row_is_noisy_when_either_side_throttled_and_says_why():
    per_trial = pd.DataFrame(
        [
            _trial(1, "default", 0, "throttled: sw_thermal_slowdown"),
            _trial(2, "deterministic", 0, None),
            _trial(3, "default", 0, None, workload="quiet"),
            _trial(4, "deterministic", 0, None, workload="quiet"),
        ]
    )
    table = pd.DataFrame(
        [
            _row("resnet50", "default", "deterministic", "2 paired repeats"),
            _row("quiet", "default", "deterministic"),
        ]
    )
    out = with_clock_noise(table, clock_noise_by_mode(per_trial)).set_index("workload")
    assert out.loc["resnet50", "noisy"] and not out.loc["quiet", "noisy"]
    assert out.loc["resnet50", "note"] == (
        "2 paired repeats; clocks dropped or throttled: "
        "default repeat 0 (throttled: sw_thermal_slowdown)"
    )
    assert out.loc["quiet", "note"] == ""


def test_without_a_clock_noise_column_nothing_changes():
    per_trial = pd.DataFrame([_trial(1, "default", 0, None)]).drop(columns="clock_noise")
    assert clock_noise_by_mode(per_trial).empty
    table = pd.DataFrame([_row("resnet50", "default", "deterministic")])
    assert with_clock_noise(table, clock_noise_by_mode(per_trial)).equals(table)


def _series(clocks, masks):
    """An NVML-like sample series as the device sampler records it (50 ms apart)."""
    return pd.DataFrame(
        {
            "t_s": [i * 0.05 for i in range(len(clocks))],
            "sm_clock_mhz": clocks,
            "temperature_c": [70.0] * len(clocks),
            "power_w": [650.0] * len(clocks),
            "throttle_reasons": masks,
        }
    )


def test_a_stored_thermal_slowdown_marks_its_report_rows_noisy(tmp_path):
    steady = summarize_samples(_series([1980] * 20, [0] * 20))
    slowed = summarize_samples(_series([1980] * 15 + [1410] * 5, [0] * 15 + [0x40] * 5))
    rng = np.random.default_rng(0)
    with Store(tmp_path / "nnr.db") as store:
        for repeat in range(3):
            for mode, ms in (("default", 10.0), ("deterministic", 13.0)):
                spec = TrialSpec("torch", "mlp", MODES[mode], gpu_index=0, repeat=repeat)
                device = slowed if (mode, repeat) == ("deterministic", 1) else steady
                times = list(ms * (1 + 0.001 * rng.standard_normal(20)))
                store.record(
                    TrialResult(spec, "ok", times_ms=times, environment=GPU, device=device)
                )
    report = write_report(tmp_path / "nnr.db", tmp_path / "out")
    row = report.overhead.iloc[0]
    assert row["noisy"]
    assert "deterministic repeat 1 (SM clock dropped to 1410 MHz" in row["note"]
    assert "hw_thermal_slowdown" in row["note"]
    assert "noisy; " in (tmp_path / "out" / "overhead.md").read_text()
