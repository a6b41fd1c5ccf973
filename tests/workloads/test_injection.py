"""calibrate's injected work: sized in time after warm-up, the only difference between modes."""

import numpy as np
import pytest

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.trial import run_trial
from nnr_profile.workloads.adapter import get_adapter
from nnr_profile.workloads.injection import find_injector
from nnr_profile.workloads.registry import get_workload
from nnr_profile.workloads.timing import PerfCounterTimer


def _session(overhead, mode, layers=2, batch_size=8):
    workload = get_workload("torch", "calibrate")
    adapter = get_adapter("torch")
    adapter.seed(0)
    args = workload.validate({"overhead": overhead, "layers": layers}, None)
    return adapter.prepare(workload, args, MODES[mode], batch_size, workload.input_shape, "cpu")


def _spec(mode, overhead, **sizes):
    sizes = {"batch_size": 8, "warmup": 1, "iterations": 3, **sizes}
    args = {"overhead": overhead, "layers": sizes.pop("layers", 2)}
    return TrialSpec("torch", "calibrate", MODES[mode], workload_args=args, **sizes)


def test_modes_differ_only_by_the_injected_work():
    runs = {mode: run_trial(_spec(mode, 0.5)) for mode in ("default", "deterministic")}
    default, deterministic = runs["default"], runs["deterministic"]
    assert default.status == deterministic.status == STATUS_OK
    assert default.losses == deterministic.losses
    assert default.weights_hash == deterministic.weights_hash
    for result in runs.values():
        assert set(result.knobs_applied) == {"none", "injected_work", "recipe"}
    kept, sized = (
        default.knobs_applied["injected_work"],
        deterministic.knobs_applied["injected_work"],
    )
    assert kept["target_pct"] == 0 and kept["units"] == 0 and kept["sized_pct"] == 50
    assert sized["target_pct"] == sized["sized_pct"] == 50 and sized["units"] > 0
    assert 0.25 < sized["units"] * sized["unit_ms"] / sized["step_ms"] < 1.0


def test_no_overhead_runs_no_sizing_steps():
    session = _session(0.0, "deterministic")
    assert session.size_injected_work() == {"target_pct": 0.0, "units": 0.0}
    assert find_injector(session.model.modules()).units == 0


def test_other_workloads_inject_nothing():
    workload = get_workload("torch", "mlp")
    adapter = get_adapter("torch")
    session = adapter.prepare(
        workload, workload.validate({}, None), MODES["default"], 2, (784,), "cpu"
    )
    assert session.size_injected_work() == {}


def test_sizing_can_time_blocks_of_steps_as_on_a_gpu(monkeypatch):
    session = _session(1.0, "deterministic", layers=4, batch_size=32)
    injector = find_injector(session.model.modules())
    monkeypatch.setattr(injector, "sizing_block", lambda: 3)
    sized = session.size_injected_work()
    assert sized["units"] > 0 and 30 < sized["measured_pct"] < 300


def _alternating_ratio(session, steps=40):
    """Median step time with the sized work over the median without it, in alternation."""
    injector = find_injector(session.model.modules())
    kept = injector.units
    timer = PerfCounterTimer()
    for index in range(steps):
        injector.set_units(kept if index % 2 else 0.0)
        timer.start()
        session.step()
        timer.stop()
    injector.set_units(kept)
    times = np.asarray(timer.times_ms())
    return float(np.median(times[1::2]) / np.median(times[::2]))


@pytest.mark.slow
def test_the_sized_work_adds_roughly_the_injected_share_of_time():
    session = _session(0.5, "deterministic", layers=4, batch_size=32)
    for _ in range(5):
        session.step()
    sized = session.size_injected_work()
    ratio = _alternating_ratio(session)
    assert 1.2 < ratio < 1.9, (ratio, sized)
