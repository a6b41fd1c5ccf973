"""The device sampler in a real trial: on the CPU nothing is measured, and the store says NULL."""

import pytest

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.process import spawn_trial
from nnr_profile.store.database import Store
from nnr_profile.store.schema import ADDED_COLUMNS


@pytest.mark.slow
def test_a_cpu_trial_carries_no_device_samples_and_stores_null(db, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = TrialSpec("torch", "mlp", MODES["default"], batch_size=2, warmup=1, iterations=3)
    result = spawn_trial(spec, timeout_s=300)
    assert result.status == "ok", result.error
    assert result.device == {} and result.device_samples == []
    assert len(result.times_ms) == 3
    with Store(db) as store:
        store.record(result)
        row = store.trials().iloc[0]
        assert store.device_samples().empty
    assert all(row[name] is None for name, _ in ADDED_COLUMNS["trials"])
