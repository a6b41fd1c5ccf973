"""Ops without a deterministic implementation, per model: the tidy table and the model x op table.

Built from the store's op probes (`nnr-profile ops`, `verify --db`): one probe per (workload,
framework version, GPU architecture). Only probes that ran (status ok) are shown; a model whose
probe found no op is still listed, without marks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nnr_profile.core.specs import STATUS_OK
from nnr_profile.reports.export import args_label, markdown_table, write_csv

OPS_COLUMNS = [
    "framework",
    "framework_version",
    "workload",
    "workload_args",
    "gpu_arch",
    "gpu_name",
    "op",
    "complete",
    "source",
    "finished_at",
]
"""Columns of `ops_table`: one row per (probe, op); ``op`` empty where the probe found none,
``complete`` False where the run stopped at the first op (TensorFlow), so later ops are unknown."""
PROBE_KEYS = ["framework", "framework_version", "workload", "workload_args", "gpu_arch"]
"""What one probe stands for (and one row of `op_matrix`)."""
MARK = "x"
"""The `op_matrix` cell of an op seen in a model's probe."""


def ops_table(probes: pd.DataFrame) -> pd.DataFrame:
    """The stored op probes (one row per probe and op, as `Store.op_probes` returns them) that
    ran, as `OPS_COLUMNS`, sorted by framework, workload, version, GPU architecture and op."""
    if probes is None or probes.empty:
        return pd.DataFrame(columns=OPS_COLUMNS)
    ran = probes[probes["status"] == STATUS_OK]
    table = ran.reindex(columns=OPS_COLUMNS).copy()
    table["complete"] = table["complete"].fillna(0).astype(int).astype(bool)
    table["framework_version"] = table["framework_version"].fillna("")
    table["op"] = table["op"].fillna("")
    order = ["framework", "workload", "workload_args", "framework_version", "gpu_arch", "op"]
    return table.sort_values(order, kind="stable").reset_index(drop=True)


def op_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Model x op: one row per probe of `ops_table` (model, with its arguments where a model
    was probed with several; framework and version; device), one column per op (most common
    first) holding `MARK` where the probe saw it, and a note where it stopped at the first op."""
    if table.empty:
        return pd.DataFrame()
    seen = table[table["op"] != ""]
    counts = seen.groupby("op")["workload"].size()
    ops = sorted(counts.index, key=lambda op: (-counts[op], op))
    variants = table.groupby("workload")["workload_args"].nunique()
    rows = []
    for key, group in table.groupby(PROBE_KEYS, sort=False, dropna=False):
        framework, version, workload, workload_args, gpu_arch = key
        args = args_label(workload_args) if variants[workload] > 1 else ""
        found = set(group["op"]) - {""}
        row = {
            "model": f"{workload} {args}".strip(),
            "framework": f"{framework} {version}".strip(),
            "device": f"{gpu_arch} ({group['gpu_name'].iloc[0]})",
        }
        row.update({op: MARK if op in found else "" for op in ops})
        row["note"] = "" if group["complete"].all() else "stopped at the first op"
        rows.append(row)
    matrix = pd.DataFrame(rows)
    if not (matrix["note"] != "").any():
        matrix = matrix.drop(columns="note")
    return matrix


def write_ops(table: pd.DataFrame, out: Path) -> list[Path]:
    """Write `table` as nondeterministic_ops.csv and the model x op nondeterministic_ops.md."""
    csv = write_csv(table, out / "nondeterministic_ops.csv")
    markdown = out / "nondeterministic_ops.md"
    text = markdown_table(op_matrix(table))
    legend = f"\n\n{MARK}: the op ran without a deterministic implementation in the probe.\n"
    markdown.write_text(text + legend, encoding="utf-8")
    return [csv, markdown]
