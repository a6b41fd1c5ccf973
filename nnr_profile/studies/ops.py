"""`nnr-profile ops`: which ops lack a deterministic implementation, per model, kept in the store.

Each model runs once per device in the `deterministic` mode, in its own process, through the
`verify` child (`studies.verify.launch_run`): a few training iterations, nothing timed.
PyTorch warns (``warn_only=True``) for every such op, so a run lists them all; TensorFlow
raises at the first one, so its probe names that op and is marked incomplete. Each probe is
stored per (workload, framework version, GPU architecture) in the ``op_probes`` table, as
`verify --db` stores what its runs found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import OpProbe, TrialSpec
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.store.database import Store
from nnr_profile.studies.verify import RunRecord, launch_run, op_probe

PROBE_MODE = MODES["deterministic"]
"""The mode a probe runs in: every determinism knob on, so every op without one is flagged."""


def plan_probes(
    workloads: Sequence[tuple[str, str]],
    devices: Sequence[int | None],
    iterations: int = 2,
    batch_size: int | None = None,
    image_size: int | None = None,
    seed: int = 0,
    workload_args: dict[str, Any] | None = None,
) -> list[TrialSpec]:
    """One probe run per (device, workload): the deterministic mode, no warm-up, `iterations`.

    Batch sizes default to each workload's; `workload_args` go to the workloads that declare
    the key (a key no selected workload declares is a usage error), as in a sweep.
    """
    spec = SweepSpec(
        workloads=tuple(workloads),
        modes=(PROBE_MODE,),
        devices=tuple(devices),
        repeats=1,
        iterations=iterations,
        warmup=0,
        batch_size=batch_size,
        image_size=image_size,
        seed=seed,
        workload_args=dict(workload_args or {}),
    )
    return [cell for cells in plan_sweep(spec).values() for cell in cells]


def probe_ops(
    cells: Sequence[TrialSpec],
    db: str | Path,
    timeout_s: float | None = 1800.0,
    on_probe: Callable[[OpProbe], None] | None = None,
    launch: Callable[[TrialSpec, float | None], RunRecord] = launch_run,
) -> list[OpProbe]:
    """Run each probe in its own process and store what it found in the store `db`."""
    probes = []
    with Store(db) as store:
        for cell in cells:
            probe = op_probe(cell, [launch(cell, timeout_s)], "ops")
            store.record_op_probe(probe)
            probes.append(probe)
            if on_probe:
                on_probe(probe)
    return probes


def record_probe(probe: OpProbe | None, db: str | Path) -> bool:
    """Store `probe` (from `verify`) in the store `db`; False when there is none to store."""
    if probe is None:
        return False
    with Store(db) as store:
        store.record_op_probe(probe)
    return True
