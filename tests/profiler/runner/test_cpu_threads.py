"""CPU trials get every core but one for their intra-op threads, and the store records it."""

import os

import pytest

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.child import child_environment, cpu_threads
from nnr_profile.profiler.runner.process import spawn_trial


def test_cpu_children_leave_the_parent_a_core_unless_told_otherwise():
    mode = MODES["default"]
    cores = len(os.sched_getaffinity(0))
    assert cpu_threads() == max(1, cores - 1)
    cpu = child_environment("torch", "mlp", mode, None, 0, base={})
    assert cpu["OMP_NUM_THREADS"] == str(cpu_threads())
    told = child_environment("torch", "mlp", mode, None, 0, base={"OMP_NUM_THREADS": "3"})
    assert told["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in child_environment("torch", "mlp", mode, 0, 0, base={})


@pytest.mark.slow
def test_a_cpu_trial_records_the_threads_it_ran_with(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spec = TrialSpec("torch", "mlp", MODES["default"], batch_size=2, warmup=0, iterations=1)
    result = spawn_trial(spec, timeout_s=120)
    assert result.status == STATUS_OK, result.error
    framework = result.environment["framework"]
    assert framework["num_threads"] == cpu_threads()
    assert framework["omp_num_threads"] == str(cpu_threads())
