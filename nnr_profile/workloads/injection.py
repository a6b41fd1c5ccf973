"""Injected work (`calibrate`): extra real work in each step, sized to a share of the step time.

`calibrate` must make its deterministic mode cost a known share of *time*: extra layers do not
give that, because the loss, the optimizer and the framework's own overhead do not grow with
them. So after warm-up, in the trial's own process, `size_injection` runs pairs of neighbouring
steps, one without and one with some units of extra work (the order alternating, so a trend
cancels), and reads the median step time without it and the median paired ratio: what the
extra work adds to a whole step, including any slowing of the default work. It then sets the
units so that the extra work adds `share` x the step time. Both modes run the same sizing steps
(sized for the workload's `overhead`); only the default mode then keeps none of it.

The units are a fixed amount of work, not a fixed time, so the extra work slows down and speeds
up with the machine as the default work does. The search and the slope use the injector's clock:
on a CPU trial with one intra-op thread the process's CPU time, which a busy neighbour does not
make noisy; else the session's own timer (wall time, or a GPU's events). The final round, which
sets the amount, uses the session's own timer, the clock the timed iterations and the report use:
on a quiet 2-core machine a CPU-time target of 100 % gave 77 % in the report (steps wait outside
the CPU too), and under load 34 %; sized on the session's timer it gave 89-129 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np

SEARCH_ROUNDS = 4
"""Rounds that find the time one unit adds: from one unit, ten times more while none shows."""
SEARCH_PAIRS = 2
"""Pairs of steps per search round."""
SLOPE_PAIRS = 6
"""Pairs at MEASURED_SHARE: the time one unit adds."""
FINAL_PAIRS = 16
"""Pairs at the amount to keep: what it adds there, then one Newton step to the target."""
MEASURED_SHARE = 1.0
"""The slope is measured at no less than this share of the step, well above the steps' noise."""
SEARCH_GROWTH = 10.0
"""Factor the units grow by while the extra work cannot yet be told from noise."""
INJECTING_MODE = "deterministic"


@runtime_checkable
class WorkInjector(Protocol):
    """Extra work a model does in each step, in units of a fixed amount of work."""

    share: float
    """Extra time over the default step time this trial keeps (0 in the default mode)."""
    probe_share: float
    """Extra time share sized in every mode, so that modes run the same sizing steps."""

    def set_units(self, units: float) -> None:
        """Do `units` of extra work in each following step."""

    def sizing_timer(self, session: Any) -> Any:
        """A fresh step timer (an IterationTimer) in the clock sizing should use."""

    def sizing_block(self) -> int:
        """Steps timed together as one sample (more on a GPU, whose queue carries over)."""


class StepSession(Protocol):
    """What sizing needs from a training session."""

    def step(self) -> Any: ...

    def sync(self) -> None: ...

    def timer(self) -> Any: ...


def calibrate_shares(overhead: float, mode: str) -> tuple[float, float]:
    """(share kept, share sized) for `calibrate`: `overhead` kept only in the deterministic mode."""
    return (float(overhead) if mode == INJECTING_MODE else 0.0), float(overhead)


def find_injector(parts: Iterable[object]) -> WorkInjector | None:
    """The first of a model's parts (modules, layers) that injects work, or None."""
    return next((part for part in parts if isinstance(part, WorkInjector)), None)


def paired_steps(
    session: StepSession,
    injector: WorkInjector,
    units: float,
    pairs: int,
    timer: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Step times (ms) without and with `units` of extra work, per pair.

    The clock is `timer` (an IterationTimer), else the injector's sizing clock. Each sample
    times `sizing_block()` steps in a row and gives their mean.
    """
    timer = injector.sizing_timer(session) if timer is None else timer
    block = injector.sizing_block()
    with_extra: list[bool] = []
    for index in range(pairs):
        for extra in (False, True) if index % 2 == 0 else (True, False):
            injector.set_units(units if extra else 0.0)
            timer.start()
            for _ in range(block):
                session.step()
            timer.stop()
            with_extra.append(extra)
    session.sync()
    times = np.asarray(timer.times_ms()) / block
    flags = np.asarray(with_extra)
    return times[~flags], times[flags]


def _added_share(
    session: StepSession, injector: WorkInjector, units: float, pairs: int, timer: Any = None
) -> tuple[float, float]:
    """(median step ms without extra work, median share `units` add to the paired step).

    Shares are per-pair ratios, so a change of the machine's speed between pairs cancels.
    """
    base, extra = paired_steps(session, injector, units, pairs, timer)
    return float(np.median(base)), float(np.median(extra / base)) - 1


def _search(session: StepSession, injector: WorkInjector, share: float) -> tuple[float, float]:
    """(units for `share` of the step time, share each unit adds), from SEARCH_ROUNDS rounds.

    Each round runs at the units the last one suggests (at most SEARCH_GROWTH**2 times more; ten
    times more while none shows). Always the same number of steps, so modes train alike.
    """
    units, per_unit, step_ms = 1.0, math.nan, math.nan
    for _ in range(SEARCH_ROUNDS):
        step_ms, added = _added_share(session, injector, units, SEARCH_PAIRS)
        if added > 0 and math.isfinite(added):
            per_unit = added / units
            units = min(share / per_unit, units * SEARCH_GROWTH**2)
        elif math.isnan(per_unit):
            units *= SEARCH_GROWTH
    if math.isnan(per_unit):
        raise RuntimeError(
            f"calibrate: {units / SEARCH_GROWTH:g} units of extra work did not lengthen a "
            f"{step_ms:.3f} ms step; use a larger --batch-size or more layers"
        )
    return units, per_unit


def size_injection(session: StepSession, injector: WorkInjector) -> dict[str, float]:
    """Size `injector`'s work to `probe_share` x the step time, keep `share` x the step time.

    A search from one unit, then SLOPE_PAIRS pairs at max(`probe_share`, MEASURED_SHARE) of the
    step time give the share one unit adds (the injector's clock); FINAL_PAIRS pairs at
    `probe_share`, on the session's own timer, measure what that amount adds there (any fixed
    cost of switching the work on included), and one Newton step with that slope lands on the
    target. Every mode runs the same steps. Returns the kept and sized shares (%), the median
    step time without the extra work and the time one unit adds (ms, the session's timer), the
    units kept, and the share the final round measured (%).
    """
    probe = float(injector.probe_share)
    if probe <= 0:
        injector.set_units(0.0)
        return {"target_pct": 0.0, "units": 0.0}
    wide, per_unit = _search(session, injector, max(probe, MEASURED_SHARE))
    _, added = _added_share(session, injector, wide, SLOPE_PAIRS)
    if added > 0:
        per_unit = added / wide
    near = probe / per_unit
    step_ms, added = _added_share(session, injector, near, FINAL_PAIRS, session.timer())
    sized = max(0.0, near + (probe - added) / per_unit)
    kept = sized * float(injector.share) / probe
    injector.set_units(kept)
    return {
        "target_pct": float(injector.share) * 100,
        "sized_pct": probe * 100,
        "step_ms": step_ms,
        "unit_ms": per_unit * step_ms,
        "units": kept,
        "measured_pct": added * 100,
    }
