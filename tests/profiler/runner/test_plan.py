"""Sweep planning: modes interleaved within a repeat, counterbalanced across repeats."""

from nnr_profile.core.modes import parse_modes
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep


def test_mode_order_alternates_between_repeats_so_drift_cancels():
    spec = SweepSpec(
        workloads=(("torch", "mlp"),),
        modes=tuple(parse_modes("default,fast,deterministic")),
        devices=(None,),
        repeats=4,
        iterations=2,
        warmup=0,
        batch_size=4,
    )
    cells = plan_sweep(spec)[None]
    by_repeat = {}
    for cell in cells:
        by_repeat.setdefault(cell.repeat, []).append(cell.mode.name)
    forward = ["default", "fast", "deterministic"]
    assert by_repeat == {0: forward, 1: forward[::-1], 2: forward, 3: forward[::-1]}
    assert len({c.cell_key for c in cells}) == len(cells)
