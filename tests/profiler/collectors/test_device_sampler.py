"""GPU clock/temperature/power sampling: the CPU path and recorded NVML-like series."""

import pandas as pd

from nnr_profile.profiler.collectors.device_sampler import (
    SAMPLE_COLUMNS,
    DeviceSampler,
    sample_records,
    summarize_samples,
    throttle_names,
)


def test_without_a_gpu_nothing_is_measured_and_nothing_is_zero():
    sampler = DeviceSampler(None)
    assert not sampler.available
    sampler.start()
    samples = sampler.stop()
    assert list(samples.columns) == list(SAMPLE_COLUMNS) and samples.empty
    summary = summarize_samples(samples)
    assert summary["n_samples"] == 0
    assert all(v is None for k, v in summary.items() if k != "n_samples")


def _series(clocks, masks, power=300.0):
    return pd.DataFrame(
        {
            "t_s": [i * 0.05 for i in range(len(clocks))],
            "sm_clock_mhz": clocks,
            "temperature_c": [60 + i for i in range(len(clocks))],
            "power_w": [power] * len(clocks),
            "throttle_reasons": masks,
        }
    )


def test_steady_clocks_are_not_flagged():
    summary = summarize_samples(_series([1980] * 20, [0x1] * 20))  # 0x1: GPU idle, not a slowdown
    assert summary["clock_noise"] is None
    assert summary["throttled"] == []
    assert summary["sm_clock_median_mhz"] == 1980 and summary["temperature_max_c"] == 79


def test_a_thermal_slowdown_and_a_clock_drop_are_flagged():
    clocks = [1980] * 15 + [1410] * 5
    masks = [0] * 15 + [0x40] * 5  # hardware thermal slowdown
    summary = summarize_samples(_series(clocks, masks))
    assert summary["throttled"] == ["hw_thermal_slowdown"]
    assert "1410 MHz" in summary["clock_noise"] and "hw_thermal_slowdown" in summary["clock_noise"]


def test_throttle_bits_are_decoded():
    assert throttle_names(0x4 | 0x80) == ["sw_power_cap", "hw_power_brake_slowdown"]
    assert throttle_names(None) == []


def test_sample_records_are_json_ready_with_none_where_nvml_gave_nothing():
    series = _series([1980, 1410], [0, 0x40]).assign(power_w=[250.5, None])
    records = sample_records(series)
    assert records[1] == {
        "t_s": 0.05,
        "sm_clock_mhz": 1410,
        "temperature_c": 61,
        "power_w": None,
        "throttle_reasons": 0x40,
    }
    assert all(type(value) in (int, float) for value in records[0].values())
