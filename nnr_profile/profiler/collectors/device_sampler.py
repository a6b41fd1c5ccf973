"""A background sampler of GPU clocks, temperature, power and throttle reasons (NVML).

It runs in its own thread during the timed iterations (never inside the timed path) and keeps
one row per sample. Without NVML (the CPU, or no driver) it records nothing and says so:
`summarize_samples` then reports "not measured" (None), never zeros.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd

from nnr_profile.profiler.collectors.nvml import nvml_module

SAMPLE_COLUMNS = ("t_s", "sm_clock_mhz", "temperature_c", "power_w", "throttle_reasons")
"""Columns of a sample table: seconds since start, SM clock (MHz), GPU temperature (°C),
board power (W), and the NVML clocks-event (throttle) reason bit mask."""

THROTTLE_BITS: dict[int, str] = {
    0x0000000000000004: "sw_power_cap",
    0x0000000000000008: "hw_slowdown",
    0x0000000000000020: "sw_thermal_slowdown",
    0x0000000000000040: "hw_thermal_slowdown",
    0x0000000000000080: "hw_power_brake_slowdown",
}
"""NVML clocks-event reasons that slow a busy GPU (idle, application clocks, sync boost and
display clocks are not throttling and are ignored)."""

CLOCK_DROP_FRACTION = 0.05
"""A trial whose lowest SM clock is more than this fraction below its median is flagged."""


class DeviceSampler:
    """Samples NVML every `period_s` seconds in a thread between `start` and `stop`."""

    def __init__(self, index: int | None, period_s: float = 0.05) -> None:
        self._nvml = nvml_module() if index is not None else None
        self._handle = None
        self._period_s = period_s
        self._rows: list[tuple[Any, ...]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._nvml is not None:
            try:
                self._handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            except self._nvml.NVMLError:
                self._nvml = None

    @property
    def available(self) -> bool:
        """Whether NVML answers for this device."""
        return self._nvml is not None

    def _read(self, began: float) -> tuple[Any, ...]:
        nvml, handle = self._nvml, self._handle

        def ask(call: Any, *args: Any) -> Any:
            try:
                return call(handle, *args)
            except nvml.NVMLError:
                return None

        power_mw = ask(nvml.nvmlDeviceGetPowerUsage)
        return (
            time.perf_counter() - began,
            ask(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM),
            ask(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
            None if power_mw is None else power_mw / 1000.0,
            ask(nvml.nvmlDeviceGetCurrentClocksThrottleReasons),
        )

    def _loop(self, began: float) -> None:
        while not self._stop.is_set():
            self._rows.append(self._read(began))
            self._stop.wait(self._period_s)

    def start(self) -> None:
        """Start sampling in a background thread (no-op without NVML)."""
        if self._nvml is None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(time.perf_counter(),))
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> pd.DataFrame:
        """Stop sampling; the samples as a DataFrame with `SAMPLE_COLUMNS` (empty without NVML)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return pd.DataFrame(self._rows, columns=list(SAMPLE_COLUMNS))


def sample_records(samples: pd.DataFrame) -> list[dict[str, Any]]:
    """The samples as JSON-ready dicts (keys `SAMPLE_COLUMNS`; None where NVML gave nothing)."""
    frame = samples.astype(object).where(samples.notna(), None)
    return [
        {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}
        for row in frame.to_dict("records")
    ]


def throttle_names(mask: int | None) -> list[str]:
    """The throttling reasons set in an NVML clocks-event bit mask."""
    if mask is None:
        return []
    return [name for bit, name in THROTTLE_BITS.items() if int(mask) & bit]


def summarize_samples(samples: pd.DataFrame) -> dict[str, Any]:
    """One trial's samples -> medians, minimum clock, throttle reasons and a `noisy` reason.

    Keys: n_samples, sm_clock_median_mhz, sm_clock_min_mhz, temperature_max_c,
    power_median_w, throttled (list of reason names), clock_noise (text, or None when the
    clocks held). Every value is None ("not measured") when there are no samples.
    """
    if samples.empty:
        return {
            "n_samples": 0,
            "sm_clock_median_mhz": None,
            "sm_clock_min_mhz": None,
            "temperature_max_c": None,
            "power_median_w": None,
            "throttled": None,
            "clock_noise": None,
        }
    clocks = pd.to_numeric(samples["sm_clock_mhz"], errors="coerce").dropna()
    reasons = sorted(
        {n for mask in samples["throttle_reasons"].dropna() for n in throttle_names(mask)}
    )
    median = float(clocks.median()) if len(clocks) else None
    low = float(clocks.min()) if len(clocks) else None
    notes = []
    if median and low is not None and low < median * (1 - CLOCK_DROP_FRACTION):
        notes.append(f"SM clock dropped to {low:.0f} MHz (median {median:.0f})")
    if reasons:
        notes.append("throttled: " + ", ".join(reasons))
    temperature = pd.to_numeric(samples["temperature_c"], errors="coerce")
    power = pd.to_numeric(samples["power_w"], errors="coerce")
    return {
        "n_samples": len(samples),
        "sm_clock_median_mhz": median,
        "sm_clock_min_mhz": low,
        "temperature_max_c": None if temperature.isna().all() else float(temperature.max()),
        "power_median_w": None if power.isna().all() else float(power.median()),
        "throttled": reasons,
        "clock_noise": "; ".join(notes) or None,
    }
