"""Environment fingerprints: host facts, a stable id, and the device identity they name."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import socket
from functools import cache
from importlib import metadata
from typing import Any

from nnr_profile import __version__


@cache
def installed_version(package: str) -> str | None:
    """The installed distribution's version, from its metadata (never imported), or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def version_numbers(version: str, parts: int = 3) -> tuple[int, ...]:
    """The first `parts` numbers of a version string: '0.4.29rc1' -> (0, 4, 29)."""
    return tuple(int(n) for n in re.findall(r"\d+", version)[:parts])


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else `platform.processor()`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def host_facts() -> dict[str, Any]:
    """Host-level facts: versions, platform, host name, CPU (no GPU: see runner.environment)."""
    info: dict[str, Any] = {
        "nnr_profile": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "image": os.environ.get("NNR_PROFILE_IMAGE"),
    }
    return info


def fingerprint_id(fingerprint: dict[str, Any]) -> str:
    """A short stable hash of a fingerprint, for deduplicating stored environments."""
    blob = json.dumps(fingerprint, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def device_identity(fingerprint: dict[str, Any]) -> tuple[str, str]:
    """(gpu_arch, gpu_name) for a fingerprint; on the CPU ('CPU', the CPU model)."""
    gpu = fingerprint.get("gpu")
    if gpu:
        return gpu.get("arch", "unknown"), gpu.get("name", "unknown GPU")
    return "CPU", fingerprint.get("cpu_model", "unknown CPU")


FRAMEWORK_PACKAGES = {"torch": "torch", "tf": "tensorflow", "jax": "jax"}
"""The package whose version a fingerprint's ``framework`` facts give, per framework."""


def framework_version(fingerprint: dict[str, Any], framework: str) -> str | None:
    """The version of `framework` ('torch' -> torch, 'tf' -> tensorflow) a fingerprint names."""
    facts = fingerprint.get("framework")
    if not isinstance(facts, dict):
        return None
    version = facts.get(FRAMEWORK_PACKAGES.get(framework, framework))
    return None if version is None else str(version)
