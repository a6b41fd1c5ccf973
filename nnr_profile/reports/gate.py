"""`nnr-profile gate`: judge an overhead against a maximum ratio, with its confidence interval.

Pure functions on the overhead table (`reports/overhead.py`: ratio and the paired 95 % interval
per cell) and the kernel attribution table (`reports/kernels.py`). A row fails when the whole
interval lies above the maximum ratio, passes when it lies below, and is inconclusive when it
straddles the maximum (or has no interval, with fewer than two paired repeats). A row whose
cell has failed timing trials of its baseline or mode fails whatever its interval says, and
names them: a mode that does not train must not pass a gate. The gate as a whole fails when
any row fails, else is inconclusive when any row is, else passes.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd

from nnr_profile.reports.export import args_label, format_ratio, write_csv
from nnr_profile.reports.overhead import GROUP_COLUMNS, group_keys

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
"""Verdict -> the process exit code of `nnr-profile gate` (2 stays a usage error)."""
TOP_KERNELS = 10
GATE_COLUMNS = [
    *GROUP_COLUMNS,
    "baseline_mode",
    "mode",
    "ratio",
    "ci_low_ratio",
    "ci_high_ratio",
    "interval",
    "n_pairs",
    "n_trials",
    "max_ratio",
    "verdict",
    "n_failed_trials",
    "noisy",
    "note",
]
FAILED_COLUMNS = [*GROUP_COLUMNS, "mode", "repeat", "status", "error"]
SHOWN_FAILURES = 3


def select_rows(
    overhead: pd.DataFrame,
    workloads: list[tuple[str, str]],
    baseline: str,
    mode: str,
    batch_size: int | None = None,
    image_size: int | None = None,
    workload_args: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The overhead rows the gate judges: these (framework, workload) pairs, `mode` against
    `baseline`, and (when given) this batch size, image size and workload arguments."""
    if overhead.empty:
        return overhead
    pairs = set(workloads)
    keep = pd.Series(
        [
            (framework, workload) in pairs
            for framework, workload in zip(overhead["framework"], overhead["workload"], strict=True)
        ],
        index=overhead.index,
    )
    keep &= (overhead["baseline_mode"] == baseline) & (overhead["mode"] == mode)
    if batch_size is not None:
        keep &= overhead["batch_size"].map(_key) == _key(batch_size)
    if image_size is not None:
        keep &= overhead["image_size"].map(_key) == _key(image_size)
    if workload_args:
        keep &= overhead["workload_args"].map(lambda text: _has_args(text, workload_args))
    return overhead[keep].reset_index(drop=True)


def _has_args(text: str, wanted: dict[str, Any]) -> bool:
    try:
        args = json.loads(text)
    except (TypeError, ValueError):
        return False
    return isinstance(args, dict) and all(args.get(k) == v for k, v in wanted.items())


def gated_failures(trials: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Failed timing trials in the cells of `rows` of their baseline or mode (FAILED_COLUMNS).

    `trials` as `Store.trials()`; `rows` overhead rows (GROUP_COLUMNS, baseline_mode, mode).
    """
    bad = trials[(trials["status"] != "ok") & (trials["collector"] == "timing")]
    if bad.empty or rows.empty:
        return pd.DataFrame(columns=FAILED_COLUMNS)
    bad = group_keys(bad).reindex(columns=FAILED_COLUMNS)
    wanted = pd.concat(
        [rows[[*GROUP_COLUMNS, side]].rename(columns={side: "mode"}) for side in _SIDES]
    ).drop_duplicates()
    keys = [*GROUP_COLUMNS, "mode"]
    found = bad.assign(_key=_row_keys(bad, keys)).merge(
        pd.DataFrame({"_key": _row_keys(wanted, keys)}), on="_key"
    )
    return found.drop(columns="_key").reset_index(drop=True)


_SIDES = ("baseline_mode", "mode")


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """One comparable text key per row over `columns` (see `_key`)."""
    return ["\x1f".join(_key(v) for v in row) for row in frame[columns].itertuples(index=False)]


def judge(
    overhead: pd.DataFrame, max_ratio: float, failures: pd.DataFrame | None = None
) -> pd.DataFrame:
    """GATE_COLUMNS per overhead row: ratio, its 95 % interval as ratios, and the verdict; a
    row with `failures` (`gated_failures`) of its baseline or mode fails and names them."""
    table = overhead.copy()
    table["ci_low_ratio"] = 1 + table["ci_low_pct"].astype(float) / 100
    table["ci_high_ratio"] = 1 + table["ci_high_pct"].astype(float) / 100
    table["max_ratio"] = float(max_ratio)
    table["verdict"] = [
        verdict(low, high, max_ratio)
        for low, high in zip(table["ci_low_ratio"], table["ci_high_ratio"], strict=True)
    ]
    table["n_failed_trials"] = 0
    if failures is None or failures.empty:
        return table.reindex(columns=GATE_COLUMNS).reset_index(drop=True)
    groups = dict(tuple(failures.groupby(_row_keys(failures, [*GROUP_COLUMNS, "mode"]))))
    cells = _row_keys(table, GROUP_COLUMNS)
    for index, cell in zip(table.index, cells, strict=True):
        sides = dict.fromkeys([table.at[index, "baseline_mode"], table.at[index, "mode"]])
        found = [groups[key] for m in sides if (key := f"{cell}\x1f{m}") in groups]
        if found:
            failed = pd.concat(found)
            note = table.at[index, "note"]
            table.at[index, "n_failed_trials"] = len(failed)
            table.at[index, "verdict"] = FAIL
            kept = note if isinstance(note, str) else ""
            table.at[index, "note"] = "; ".join(filter(None, [failure_line(failed), kept]))
    return table.reindex(columns=GATE_COLUMNS).reset_index(drop=True)


def failure_line(failed: pd.DataFrame) -> str:
    """'2 trial(s) failed: deterministic repeat 0 (error: boom); ...' for failed trials."""
    named = "; ".join(
        f"{r.mode} repeat {r.repeat} ({r.status}: {str(r.error or 'no error recorded')[:200]})"
        for r in failed.head(SHOWN_FAILURES).itertuples(index=False)
    )
    more = f" and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
    return f"{len(failed)} trial(s) failed: {named}{more}"


def verdict(low: float, high: float, max_ratio: float) -> str:
    """fail when `low` > max_ratio, pass when `high` < max_ratio, else inconclusive."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if low > max_ratio:
        return FAIL
    if high < max_ratio:
        return PASS
    return INCONCLUSIVE


def overall(verdicts: pd.Series) -> str:
    """The gate's verdict over its rows: fail > inconclusive > pass."""
    values = set(verdicts)
    if FAIL in values:
        return FAIL
    if INCONCLUSIVE in values or not values:
        return INCONCLUSIVE
    return PASS


def kernel_deltas(
    attribution: pd.DataFrame, row: pd.Series, top: int = TOP_KERNELS
) -> pd.DataFrame:
    """The `top` kernels by |delta ms per iteration| for one gate row (empty without kernels)."""
    if attribution.empty:
        return attribution
    match = (attribution["baseline_mode"] == row["baseline_mode"]) & (
        attribution["mode"] == row["mode"]
    )
    for column in GROUP_COLUMNS:
        match &= attribution[column].map(_key) == _key(row[column])
    chosen = attribution[match]
    order = chosen["delta_ms_per_iter"].abs().sort_values(ascending=False).index
    return chosen.loc[order].head(top).reset_index(drop=True)


def gate_document(
    table: pd.DataFrame, attribution: pd.DataFrame, settings: dict[str, Any]
) -> dict[str, Any]:
    """The gate's JSON document (schema in the README): settings, verdict, rows with deltas."""
    rows = []
    for _, row in table.iterrows():
        deltas = kernel_deltas(attribution, row)
        rows.append(
            {
                "framework": row["framework"],
                "workload": row["workload"],
                "workload_args": args_label(row["workload_args"]),
                "batch_size": _int(row["batch_size"]),
                "image_size": _int(row["image_size"]) or None,
                "device": row["device"],
                "gpu_arch": row["gpu_arch"],
                "gpu_name": row["gpu_name"],
                "baseline_mode": row["baseline_mode"],
                "mode": row["mode"],
                "ratio": _float(row["ratio"]),
                "ci_low": _float(row["ci_low_ratio"]),
                "ci_high": _float(row["ci_high_ratio"]),
                "interval": row["interval"] if isinstance(row["interval"], str) else "t",
                "n": _int(row["n_pairs"]),
                "n_trials": _int(row["n_trials"]),
                "n_failed_trials": _int(row["n_failed_trials"]) or 0,
                "verdict": row["verdict"],
                "noisy": bool(row["noisy"]) if pd.notna(row["noisy"]) else None,
                "note": row["note"] if isinstance(row["note"], str) and row["note"] else None,
                "kernel_deltas": [
                    {
                        "kernel": k["kernel"],
                        "change": k["change"],
                        "base_ms_per_iter": float(k["base_ms_per_iter"]),
                        "other_ms_per_iter": float(k["other_ms_per_iter"]),
                        "delta_ms_per_iter": float(k["delta_ms_per_iter"]),
                    }
                    for _, k in deltas.iterrows()
                ],
            }
        )
    result = overall(table["verdict"])
    return {**settings, "verdict": result, "exit_code": EXIT_CODES[result], "rows": rows}


def describe_row(row: dict[str, Any], max_ratio: float) -> str:
    """One line per judged row, e.g. 'resnet18 (torch) on cpu: 1.12x [1.08x, 1.16x] <= 1.30x';
    a row with failed trials says so first."""
    where = f"{row['workload']} ({row['framework']}"
    where += f", {row['workload_args']})" if row["workload_args"] else ")"
    gpu = row["gpu_name"] or row["device"]
    if row.get("n_failed_trials"):
        return f"{where} on {gpu}: {row['mode']}/{row['baseline_mode']}: {row['note']}: FAIL"
    kind = " sequential" if row.get("interval") == "sequential" else ""
    ci = (
        f"[{format_ratio(row['ci_low'])}, {format_ratio(row['ci_high'])}{kind}]"
        if row["ci_low"] is not None
        else "[no interval]"
    )
    sign = {PASS: "<", FAIL: ">", INCONCLUSIVE: "straddles"}[row["verdict"]]
    return (
        f"{where} on {gpu}: {row['mode']}/{row['baseline_mode']} = {format_ratio(row['ratio'])} "
        f"{ci} {sign} {max_ratio:.2f}x (n={row['n']} paired repeats): {row['verdict'].upper()}"
    )


def junit_xml(document: dict[str, Any]) -> str:
    """JUnit XML: one testcase per row; fail -> <failure>, inconclusive -> <skipped>."""
    rows = document["rows"]
    failures = sum(r["verdict"] == FAIL for r in rows)
    skipped = sum(r["verdict"] == INCONCLUSIVE for r in rows)
    suite = ET.Element(
        "testsuite",
        name="nnr-profile gate",
        tests=str(len(rows)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    for row in rows:
        line = describe_row(row, document["max_ratio"])
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"nnr-profile.gate.{row['framework']}.{row['workload']}",
            name=f"{row['mode']} vs {row['baseline_mode']} on {row['gpu_name'] or row['device']}"
            f" <= {document['max_ratio']:.2f}x",
        )
        if row["verdict"] == FAIL:
            kind = "trials_failed" if row.get("n_failed_trials") else "ratio_above_max"
            ET.SubElement(case, "failure", message=line, type=kind).text = line
        elif row["verdict"] == INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=f"inconclusive: {line}")
        details = [line, *(_delta_line(k) for k in row["kernel_deltas"])]
        ET.SubElement(case, "system-out").text = "\n".join(details)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode")


def _delta_line(kernel: dict[str, Any]) -> str:
    delta, change = kernel["delta_ms_per_iter"], kernel["change"]
    return f"  {delta:+.4f} ms/iter {change:7} {kernel['kernel'][:160]}"


def write_gate(document: dict[str, Any], table: pd.DataFrame, out: Path) -> list[Path]:
    """gate.json, gate.xml (JUnit), gate.csv, gate.html and, with kernels, gate_kernels.csv in
    `out`."""
    from nnr_profile.reports.html import write_page

    paths = [out / "gate.json", out / "gate.xml"]
    paths[0].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(junit_xml(document), encoding="utf-8")
    paths.append(write_csv(table, out / "gate.csv"))
    kernels = pd.DataFrame(
        [
            {**{k: r[k] for k in ("framework", "workload", "gpu_name", "mode")}, **delta}
            for r in document["rows"]
            for delta in r["kernel_deltas"]
        ]
    )
    if not kernels.empty:
        paths.append(write_csv(kernels, out / "gate_kernels.csv"))
    facts = {
        "measured": [
            ("verdict", document["verdict"]),
            ("exit status", str(document["exit_code"])),
            ("largest ratio allowed", f"{document['max_ratio']:.2f}x"),
            ("rows judged", str(len(document["rows"]))),
        ]
    }
    lines = [describe_row(row, document["max_ratio"]) for row in document["rows"]]
    tables = {"gate": table, "gate_kernels": kernels}
    paths.append(write_page(out / "gate.html", "nnr-profile gate", tables, {}, facts, lines))
    return paths


def _key(value: Any) -> str:
    """A cell value comparable across tables: unset image sizes (None, NaN, 0) are ''."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "" if value == 0 else str(int(value)) if float(value).is_integer() else str(value)
    return str(value)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)
