"""The `nsys` collector: the trial runs under Nsight Systems, captured only over the timed loop.

The capture range is bound to the NVTX range `nnr-timed` (each iteration is an NVTX range
inside it), the report is exported to SQLite, and the kernels inside the range are read with
the project's nsys SQLite reader. Without a GPU the capture still runs for real (NVTX and OS
runtime only) and stores no kernels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.core.environment import installed_version, version_numbers
from nnr_profile.core.errors import MissingDependencyError, TraceError
from nnr_profile.profiler.collectors.base import Collector, kernel_rows
from nnr_profile.profiler.collectors.nvtx_ranges import (
    DOMAIN,
    TIMED_RANGE,
    nvtx_range,
    read_nvtx_ranges,
)

if TYPE_CHECKING:
    from nnr_profile.core.specs import TrialResult, TrialSpec

INSTALL_HINT = (
    "install Nsight Systems (NVIDIA's installer or CUDA toolkit; on Debian: "
    "'apt-get install nsight-systems' from contrib/non-free, see scripts/install-nsys.sh)"
)


def find_nsys() -> str:
    """Path of the `nsys` executable, or a MissingDependencyError naming the install."""
    path = shutil.which("nsys")
    if path is None:
        raise MissingDependencyError(f"--collector nsys needs the nsys command: {INSTALL_HINT}")
    return path


def find_nvtx() -> None:
    """The `nvtx` package must import: without it no NVTX range opens the capture, and nsys
    records nothing."""
    try:
        import nvtx  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"--collector nsys needs the nvtx package, whose range {TIMED_RANGE!r} starts the "
            f"capture ({exc}); install it: pip install 'nvtx>=0.2.11,<0.2.12' (a dependency of "
            "nnr-profile: reinstall nnr-profile to get it)"
        ) from None


def no_capture_reason(release: str | None) -> str:
    """Why an nsys capture bound to the timed range wrote nothing, given the nvtx release."""
    if release is None:
        return f"the nvtx package is missing, so no range {TIMED_RANGE!r} opened the capture"
    if version_numbers(release) >= (0, 2, 12):
        return (
            f"nvtx {release} emits ranges that Nsight Systems 2022.4 and older never see; "
            "pip install 'nvtx<0.2.12' (nnr-profile's pin) or a newer Nsight Systems"
        )
    return f"the timed range {TIMED_RANGE!r} did not run"


def _importer(nsys: str) -> Path | None:
    """QdstrmImporter near nsys, following each symlink hop (Debian's package splits them)."""
    path = Path(nsys)
    for _ in range(8):
        for folder in (path.parent, path.parent.parent / "host-linux-x64"):
            if (folder / "QdstrmImporter").exists():
                return folder / "QdstrmImporter"
        if not path.is_symlink():
            return None
        path = path.parent / os.readlink(path)
    return None


def export_sqlite(base: Path) -> Path:
    """Turn the capture at `base` (.nsys-rep, or a raw .qdstrm) into `base`.sqlite."""
    nsys = find_nsys()
    report = base.with_name(base.name + ".nsys-rep")
    raw = base.with_name(base.name + ".qdstrm")
    if not report.exists() and raw.exists():
        importer = _importer(nsys)
        if importer is None:
            raise TraceError(
                f"nsys left {raw} but its QdstrmImporter was not found: {INSTALL_HINT}"
            )
        subprocess.run([str(importer), "-i", str(raw)], check=True, capture_output=True)
        raw.unlink()
    if not report.exists():
        raise TraceError(
            f"nsys wrote no report at {report}: {no_capture_reason(installed_version('nvtx'))}"
        )
    sqlite = base.with_name(base.name + ".sqlite")
    subprocess.run(
        [
            nsys,
            "export",
            "--type",
            "sqlite",
            "--force-overwrite",
            "true",
            "-o",
            str(sqlite),
            str(report),
        ],
        check=True,
        capture_output=True,
    )
    return sqlite


class NsysCollector(Collector):
    """Nsight Systems over the timed iterations; kernels from its SQLite export."""

    name = "nsys"
    kernel_level = True
    description = "Nsight Systems, capture limited to the timed iterations (NVTX range)"

    def check(self, framework: str, gpus: Any) -> None:
        """nsys must be installed, and the `nvtx` package that opens the capture range."""
        find_nsys()
        find_nvtx()

    def command_prefix(self, artifact_base: Path) -> list[str]:
        """`nsys profile` bound to the `nnr-timed` NVTX range."""
        return [
            find_nsys(),
            "profile",
            "--trace=cuda,nvtx,osrt",
            "--sample=none",
            "--cpuctxsw=none",
            "--capture-range=nvtx",
            f"--nvtx-capture={TIMED_RANGE}@{DOMAIN}",
            "--capture-range-end=stop",
            "--force-overwrite=true",
            "-o",
            str(artifact_base),
        ]

    def environment(self) -> dict[str, str]:
        """Let the capture range match an unregistered NVTX string."""
        return {"NSYS_NVTX_PROFILER_REGISTER_ONLY": "0"}

    def timed_region(self, spec: TrialSpec) -> Any:
        """The NVTX range the capture is bound to."""
        return nvtx_range(TIMED_RANGE)

    def iteration(self, index: int) -> Any:
        """One NVTX range per timed iteration."""
        return nvtx_range(f"iteration {index}")

    def finish(self, result: TrialResult, artifact_base: Path) -> None:
        """Export to SQLite; store the kernels and the NVTX iteration count."""
        from nnr_profile.profiler.traces import kernel_stats

        sqlite = export_sqlite(artifact_base)
        result.artifacts += [str(sqlite.with_suffix(".nsys-rep")), str(sqlite)]
        iterations = [r for r in read_nvtx_ranges(sqlite) if r[0].startswith("iteration ")]
        result.environment["nsys_nvtx_iterations"] = len(iterations)
        try:
            stats = kernel_stats(sqlite, "nsys-sqlite")
        except TraceError:
            stats = []
        result.kernels = kernel_rows(stats)
