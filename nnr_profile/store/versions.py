"""Software versions of stored trials, read from their environment fingerprints.

The fingerprint of a trial holds the framework's own report (`framework`: torch or tensorflow
version, the CUDA and cuDNN it was built with) and, on a GPU, NVML's facts (`gpu.driver`).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from nnr_profile.core.environment import framework_version
from nnr_profile.store.database import Store

VERSION_COLUMNS = ["framework_version", "cuda", "cudnn", "driver"]


def versions(fingerprint: dict[str, Any], framework: str) -> dict[str, str | None]:
    """framework_version, cuda, cudnn and driver named by one fingerprint (None: unknown)."""
    facts = fingerprint.get("framework") if isinstance(fingerprint, dict) else None
    facts = facts if isinstance(facts, dict) else {}
    gpu = fingerprint.get("gpu") if isinstance(fingerprint, dict) else None
    gpu = gpu if isinstance(gpu, dict) else {}

    def text(value: Any) -> str | None:
        return None if value in (None, "") else str(value)

    return {
        "framework_version": framework_version(fingerprint, framework)
        if isinstance(fingerprint, dict)
        else None,
        "cuda": text(facts.get("cuda")),
        "cudnn": text(facts.get("cudnn")),
        "driver": text(gpu.get("driver")),
    }


def trial_versions(store: Store) -> pd.DataFrame:
    """One row per trial: trial_id and VERSION_COLUMNS from its stored fingerprint."""
    rows = store.query(
        "SELECT t.id AS trial_id, t.framework, e.data FROM trials t "
        "LEFT JOIN environments e ON e.id = t.environment_id ORDER BY t.id"
    )
    records = []
    for trial_id, framework, data in rows.itertuples(index=False):
        try:
            fingerprint = json.loads(data) if isinstance(data, str) else {}
        except ValueError:
            fingerprint = {}
        records.append({"trial_id": trial_id, **versions(fingerprint, str(framework))})
    return pd.DataFrame(records, columns=["trial_id", *VERSION_COLUMNS])
