"""Device samples and op probes in the store: NULL where not measured, round trips, merges,
and stores written before these tables and columns existed."""

import json
import sqlite3

import pandas as pd
import pytest
from store_samples import trial

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import OpProbe, TrialSpec
from nnr_profile.profiler.collectors.device_sampler import sample_records, summarize_samples
from nnr_profile.store.database import Store
from nnr_profile.store.merge import merge_stores
from nnr_profile.store.schema import ADDED_COLUMNS

SUMMARY_COLUMNS = [name for name, _ in ADDED_COLUMNS["trials"]]
A100 = {"gpu": {"arch": "Ampere", "name": "NVIDIA A100-SXM4-40GB"}}


def nvml_series() -> pd.DataFrame:
    """A recorded-like NVML series: clocks hold, then a hardware thermal slowdown."""
    return pd.DataFrame(
        {
            "t_s": [0.0, 0.05, 0.1, 0.15],
            "sm_clock_mhz": [1410, 1410, 1410, 1095],
            "temperature_c": [71, 72, 74, 83],
            "power_w": [301.5, 310.25, None, 254.0],
            "throttle_reasons": [0, 0, 0, 0x40],
        }
    )


def sampled_trial(repeat: int = 0):
    """A trial result carrying the recorded NVML series and its summary."""
    result = trial(repeat=repeat)
    result.environment = dict(A100)
    samples = nvml_series()
    result.device = summarize_samples(samples)
    result.device_samples = sample_records(samples)
    return result


def probe(ops=("put_",), status="ok", arch=None, version="2.4.0", workload="resnet50", **kw):
    """An op probe of `workload` under torch `version` on `arch` (None: the CPU)."""
    environment = {"framework": {"framework": "torch", "torch": version}}
    if arch:
        environment["gpu"] = {"arch": arch, "name": f"some {arch} GPU"}
    spec = TrialSpec("torch", workload, MODES["deterministic"], iterations=2, warmup=0)
    return OpProbe(spec, status, list(ops), environment=environment, **kw)


def test_a_cpu_trial_stores_not_measured_as_null_never_zero(db):
    with Store(db) as store:
        store.record(trial())
        row = store.trials().iloc[0]
        samples = store.device_samples()
    assert all(row[column] is None for column in SUMMARY_COLUMNS)
    assert samples.empty


def test_recorded_nvml_samples_and_their_summary_round_trip(db):
    with Store(db) as store:
        trial_id = store.record(sampled_trial())
        row = store.trials().iloc[0]
        samples = store.device_samples()
    assert row["n_device_samples"] == 4
    assert row["sm_clock_median_mhz"] == 1410 and row["sm_clock_min_mhz"] == 1095
    assert row["temperature_max_c"] == 83 and row["power_median_w"] == pytest.approx(301.5)
    assert json.loads(row["throttled"]) == ["hw_thermal_slowdown"]
    assert "1095 MHz" in row["clock_noise"] and "hw_thermal_slowdown" in row["clock_noise"]
    expected = nvml_series().assign(trial_id=trial_id, sample=range(4))
    columns = ["trial_id", "sample", "t_s", "sm_clock_mhz", "temperature_c", "throttle_reasons"]
    pd.testing.assert_frame_equal(
        samples[columns].astype(float), expected[columns].astype(float), check_like=True
    )
    assert samples["power_w"].isna().tolist() == [False, False, True, False]


def test_samples_follow_their_trial_when_it_is_rerun_and_merged(db, tmp_path):
    with Store(db) as store:
        store.record(sampled_trial())
        store.record(sampled_trial())
        assert len(store.device_samples()) == 4
    target = tmp_path / "merged.db"
    merge_stores([db], target)
    merge_stores([db], target)
    with Store(target, create=False) as store:
        assert len(store.device_samples()) == 4
        assert store.trials().iloc[0]["n_device_samples"] == 4


def test_a_probe_is_kept_per_workload_framework_version_and_gpu_arch(db):
    with Store(db) as store:
        store.record_op_probe(probe(["index_add_cuda_"], arch="Ampere"))
        store.record_op_probe(probe(["index_add_cuda_", "put_"], arch="Ampere"))
        store.record_op_probe(probe([], arch="Hopper"))
        store.record_op_probe(probe(["put_"], version="2.5.0", arch="Ampere"))
        store.record_op_probe(probe([], status="failed", arch="Hopper", error="OOM"))
        probes = store.op_probes()
    ampere = probes[(probes["gpu_arch"] == "Ampere") & (probes["framework_version"] == "2.4.0")]
    assert sorted(ampere["op"]) == ["index_add_cuda_", "put_"]
    hopper = probes[probes["gpu_arch"] == "Hopper"]
    assert len(hopper) == 1 and pd.isna(hopper.iloc[0]["op"]) and hopper.iloc[0]["status"] == "ok"
    assert probes["probe_id"].nunique() == 3


def test_probes_merge_with_their_ops(db, tmp_path):
    other = tmp_path / "other.db"
    with Store(db) as store:
        store.record_op_probe(probe(["put_"], arch="Ampere"))
    with Store(other) as store:
        store.record_op_probe(probe(["index_add_cuda_"], arch="Ampere", workload="vgg16"))
    target = tmp_path / "merged.db"
    merge_stores([db, other], target)
    with Store(target, create=False) as store:
        probes = store.op_probes()
    assert sorted(zip(probes["workload"], probes["op"], strict=True)) == [
        ("resnet50", "put_"),
        ("vgg16", "index_add_cuda_"),
    ]


def _make_older(path):
    """Turn the store at `path` into one written before device samples and op probes."""
    with sqlite3.connect(path) as conn:
        for table in ("device_samples", "nondeterministic_ops", "op_probes"):
            conn.execute(f"DROP TABLE {table}")
        for column in SUMMARY_COLUMNS:
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")


def test_an_older_store_reads_as_not_measured_and_gains_the_columns_when_written(db):
    with Store(db) as store:
        store.record(trial(repeat=0))
    _make_older(db)
    with Store(db, create=False) as store:
        row = store.trials().iloc[0]
        assert all(row[column] is None for column in SUMMARY_COLUMNS)
        assert store.device_samples().empty and store.op_probes().empty
    with Store(db) as store:
        store.record(sampled_trial(repeat=1))
        store.record_op_probe(probe())
        trials = store.trials()
        assert trials["n_device_samples"].isna().tolist() == [True, False]
        assert len(store.device_samples()) == 4 and store.op_probes()["op"].tolist() == ["put_"]
