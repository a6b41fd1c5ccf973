"""Writers: report DataFrames to CSV, Markdown and LaTeX, every cell escaped by core.text.

CSV keeps full precision and every column, each text cell passed through `csv_safe_frame`
(formula injection). Markdown and LaTeX show formatted strings that are never parsed back as
numbers (`+71.9` stays `+71.9`), `workload_args` (and batch/image size) only when they differ
between rows, and the ratio (`1.30x`) beside the overhead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from nnr_profile.core.text import csv_safe_frame, latex_text, markdown_cell

VARYING_COLUMNS = {"workload_args": "args", "batch_size": "batch", "image_size": "image"}
"""Cell columns shown in the display tables only when their value differs between rows."""


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV (full precision, text cells spreadsheet-safe); returns `path`."""
    csv_safe_frame(frame).to_csv(path, index=False)
    return path


def markdown_table(shown: pd.DataFrame) -> str:
    """A Markdown (pipe) table of `shown`; cells kept as written (no number re-parsing),
    columns named in NUMERIC_HEADERS right-aligned."""
    headers = [markdown_cell(c) for c in shown.columns]
    rows = [[markdown_cell(v) for v in row] for row in shown.itertuples(index=False)]
    align = ["right" if c in NUMERIC_HEADERS else "left" for c in shown.columns]
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True, colalign=align)


def args_label(workload_args: str) -> str:
    """`{"kernel": 5, "depth": 2}` as `depth=2 kernel=5` ('' when there are none)."""
    try:
        args = json.loads(workload_args)
    except (TypeError, ValueError):
        return str(workload_args)
    if not isinstance(args, dict):
        return str(workload_args)
    return " ".join(f"{k}={v}" for k, v in sorted(args.items()))


def varying(table: pd.DataFrame) -> list[str]:
    """The VARYING_COLUMNS whose value differs between rows of `table`."""
    return [
        column
        for column in VARYING_COLUMNS
        if column in table.columns and table[column].astype(str).nunique(dropna=False) > 1
    ]


def cell_label(table: pd.DataFrame, with_framework: bool = False) -> pd.Series:
    """Per row: the workload, with its varying arguments and sizes (e.g. `mediumcnn kernel=3`)."""
    label = table["workload"].astype(str)
    if with_framework:
        label = label + " (" + table["framework"].astype(str) + ")"
    for column in varying(table):
        label = label + " " + _shown_value(table[column], column)
    return label.str.strip()


def _shown_value(values: pd.Series, column: str) -> pd.Series:
    if column == "workload_args":
        return values.map(args_label)
    prefix = VARYING_COLUMNS[column]
    return values.map(lambda v: f"{prefix}={_integer(v)}" if _finite(v) else f"{prefix}=default")


def format_ratio(ratio: float) -> str:
    """`1.30x` ('n/a' when unknown)."""
    return f"{ratio:.2f}x" if _finite(ratio) else "n/a"


def format_pct(value: float) -> str:
    """`+30.1` ('n/a' when unknown)."""
    return f"{value:+.1f}" if _finite(value) else "n/a"


def format_ci(low: float, high: float) -> str:
    """`[+28.0, +32.3]` ('n/a' when there is no interval)."""
    return f"[{low:+.1f}, {high:+.1f}]" if _finite(low) and _finite(high) else "n/a"


def format_p(p: float) -> str:
    """`0.012`, `3.1e-05`, or 'n/a'."""
    if not _finite(p):
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The overhead table as strings for reading: ratio beside overhead, CI, Holm p, notes;
    the ladder step over the previous step and the energy overhead when a row has them."""
    shown = pd.DataFrame(
        {"framework": table["framework"].astype(str), "workload": table["workload"].astype(str)}
    )
    for column in varying(table):
        shown[VARYING_COLUMNS[column]] = _shown_value(table[column], column)
    shown["arch"] = table["gpu_arch"].astype(str)
    shown["device name"] = table["gpu_name"].astype(str)
    shown["baseline"] = table["baseline_mode"].astype(str)
    shown["mode"] = table["mode"].astype(str)
    shown["baseline median (ms)"] = table["baseline_median_ms"].map(_ms)
    shown["median (ms)"] = table["median_ms"].map(_ms)
    shown = shown.assign(**_estimate(table, "", ""))
    if _any_finite(table, "step_overhead_pct"):
        shown["step from"] = table["step_from"].fillna("").astype(str)
        shown = shown.assign(**_estimate(table, "step_", "step", ratio=False, p=False))
    if _any_finite(table, "energy_ratio"):
        shown = shown.assign(**_estimate(table, "energy_", "energy", p=False))
    shown["pairs"] = table["n_pairs"].map(_integer)
    shown["failed"] = table["n_failed"].map(lambda n: str(int(n)) if n else "")
    shown["note"] = _notes(table)
    return shown.reset_index(drop=True)


def ladder_display_table(steps: pd.DataFrame) -> pd.DataFrame:
    """The ladder table (`ladder.step_table`) as strings: each step over the previous one
    (ratio, %, CI, Holm p) beside the running total over default."""
    shown = pd.DataFrame({"framework": steps["framework"].astype(str)})
    shown["workload"] = cell_label(steps).to_numpy()
    shown["device name"] = _gpu_labels(steps)
    shown["step"] = steps["step"].map(_integer)
    shown["from"] = steps["step_from"].astype(str)
    shown["mode"] = steps["mode"].astype(str)
    shown["adds"] = steps["step_label"].astype(str)
    shown["median (ms)"] = steps["median_ms"].map(_ms)
    shown = shown.assign(**_estimate(steps, "step_", "step"))
    shown = shown.assign(**_estimate(steps, "", "total", ratio=False, p=False))
    shown["pairs"] = steps["n_pairs"].map(_integer)
    shown["note"] = _notes(steps)
    return shown.reset_index(drop=True)


def _estimate(
    table: pd.DataFrame, prefix: str, label: str, ratio: bool = True, p: bool = True
) -> dict[str, Any]:
    """The display columns of one estimate, read from the `prefix`ed columns (ratio,
    overhead_pct, ci_low_pct and ci_high_pct, p_holm) and headed by `label` ('' for the
    overhead itself: ratio, overhead (%), 95% CI (%), p (Holm))."""
    head = f"{label} " if label else ""
    columns: dict[str, Any] = {}
    if ratio:
        columns[f"{head}ratio"] = table[f"{prefix}ratio"].map(format_ratio)
    columns[f"{label or 'overhead'} (%)"] = table[f"{prefix}overhead_pct"].map(format_pct)
    columns[f"{head}95% CI (%)"] = _cis(table, f"{prefix}ci_low_pct", f"{prefix}ci_high_pct")
    if p:
        columns[f"{head}p (Holm)"] = table[f"{prefix}p_holm"].map(format_p)
    return columns


def _notes(table: pd.DataFrame) -> list[str]:
    """Per row: 'noisy' (when flagged) and the row's note, joined by '; '."""
    return [
        "; ".join(filter(None, ["noisy" if noisy else "", str(note or "")]))
        for noisy, note in zip(table["noisy"], table["note"], strict=True)
    ]


def write_tables(
    table: pd.DataFrame, stem: Path, display: Callable[[pd.DataFrame], pd.DataFrame] | None = None
) -> list[Path]:
    """Write `stem`.csv (all columns, full precision), `stem`.md and `stem`.tex (the display
    form, `display_table` unless `display` is given)."""
    csv_path, md_path, tex_path = (stem.with_suffix(s) for s in (".csv", ".md", ".tex"))
    write_csv(table, csv_path)
    shown = (display or display_table)(table)
    md_path.write_text(markdown_table(shown) + "\n", encoding="utf-8")
    tex_path.write_text(latex_table(shown), encoding="utf-8")
    return [csv_path, md_path, tex_path]


NUMERIC_HEADERS = {
    "baseline median (ms)",
    "median (ms)",
    "ratio",
    "overhead (%)",
    "95% CI (%)",
    "p (Holm)",
    "pairs",
    "failed",
    "step (%)",
    "step 95% CI (%)",
    "energy ratio",
    "energy (%)",
    "energy 95% CI (%)",
    "step",
    "step ratio",
    "step p (Holm)",
    "total (%)",
    "total 95% CI (%)",
}


def latex_table(shown: pd.DataFrame, column_format: str | None = None) -> str:
    """A booktabs tabular of the string table `shown`, text escaped, numbers right-aligned."""
    if column_format is None:
        column_format = "".join("r" if c in NUMERIC_HEADERS else "l" for c in shown.columns)
    return tabular(
        [latex_text(c) for c in shown.columns],
        [[latex_text(v) for v in row] for row in shown.itertuples(index=False)],
        column_format,
    )


def tabular(header: list[str], rows: list[list[str]], column_format: str) -> str:
    """A booktabs tabular from cells that are LaTeX already (escape text with `latex_text`)."""
    lines = [f"\\begin{{tabular}}{{{column_format}}}", "\\toprule", " & ".join(header) + r" \\"]
    lines.append("\\midrule")
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def paper_table(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's table: model, GPU, ratio, overhead % [95 % CI], n (cells in LaTeX).

    Rows against `default` when there are any (else all rows); a mode column only when more
    than one comparison remains; the framework in the model name when there are several; a
    Step column (cost over the previous ladder step) and an Energy column when a row has them.
    Model, Mode and GPU are plain text (the writer escapes them); the rest is LaTeX already.
    """
    rows = table[table["baseline_mode"] == "default"]
    rows = rows if not rows.empty else table
    frameworks = rows["framework"].nunique() > 1
    paper = pd.DataFrame({"Model": cell_label(rows, with_framework=frameworks).to_numpy()})
    paper["GPU"] = _gpu_labels(rows)
    comparison = rows["mode"].astype(str)
    if rows["baseline_mode"].nunique() > 1:
        comparison = comparison + " vs " + rows["baseline_mode"].astype(str)
    if comparison.nunique() > 1:
        paper.insert(1, "Mode", comparison.to_numpy())
    paper["Ratio"] = [f"{r:.2f}$\\times$" if _finite(r) else "--" for r in rows["ratio"]]
    paper[r"Overhead (\%) [95\% CI]"] = _paper_estimates(rows, "")
    if _any_finite(rows, "step_overhead_pct"):
        paper[r"Step (\%) [95\% CI]"] = _paper_estimates(rows, "step_")
    if _any_finite(rows, "energy_ratio"):
        paper[r"Energy (\%) [95\% CI]"] = _paper_estimates(rows, "energy_")
    paper["$n$"] = [str(int(n)) for n in rows["n_pairs"]]
    return paper


def write_paper_table(table: pd.DataFrame, path: Path) -> Path:
    """Write `paper_table` as a one-column booktabs tabular (needs \\usepackage{booktabs})."""
    paper = paper_table(table)
    text = [c for c in ("Model", "Mode", "GPU") if c in paper.columns]
    rows = [
        [latex_text(v) if c in text else str(v) for c, v in zip(paper.columns, row, strict=True)]
        for row in paper.itertuples(index=False)
    ]
    numbers = len(paper.columns) - len(text)
    body = tabular(list(paper.columns), rows, "@{}" + "l" * len(text) + "r" * numbers + "@{}")
    header = (
        "% nnr-profile: overhead over default; needs \\usepackage{booktabs}. Ratio: geometric\n"
        "% mean of the paired per-repeat ratios of median iteration time; CI: 95 % t-interval\n"
        "% over paired repeats; n: paired repeats.\n"
    )
    if any(c.startswith("Step") for c in paper.columns):
        header += "% Step: cost over the previous step of the knob ladder (same statistics).\n"
    if any(c.startswith("Energy") for c in paper.columns):
        header += "% Energy: NVML energy per iteration over default's (same statistics).\n"
    path.write_text(header + "{\\small\n" + body + "}\n", encoding="utf-8")
    return path


def _paper_estimates(rows: pd.DataFrame, prefix: str) -> list[str]:
    """Per row: `_paper_overhead` of the `prefix`ed overhead_pct, ci_low_pct and ci_high_pct."""
    columns = (rows[f"{prefix}{c}"] for c in ("overhead_pct", "ci_low_pct", "ci_high_pct"))
    return [_paper_overhead(v, lo, hi) for v, lo, hi in zip(*columns, strict=True)]


def _paper_overhead(value: float, low: float, high: float) -> str:
    """`+30.1 [+28.0, +32.3]` with LaTeX minus signs; '--' when unknown."""
    if not _finite(value):
        return "--"
    text = format_pct(value)
    if _finite(low) and _finite(high):
        text += " " + format_ci(low, high)
    return text.replace("-", "$-$")


def gpu_label(arch: str, name: str) -> str:
    """The GPU's short name ('H100 80GB HBM3'), 'CPU', or its architecture when unnamed."""
    if arch == "CPU":
        return "CPU"
    for prefix in ("NVIDIA ", "Tesla "):
        name = name.removeprefix(prefix)
    return name or arch or "unknown"


def _gpu_labels(table: pd.DataFrame) -> list[str]:
    """`gpu_label` of each row's gpu_arch and gpu_name."""
    return [gpu_label(a, n) for a, n in zip(table["gpu_arch"], table["gpu_name"], strict=True)]


def _cis(table: pd.DataFrame, low: str, high: str) -> list[str]:
    return [format_ci(lo, hi) for lo, hi in zip(table[low], table[high], strict=True)]


def _any_finite(table: pd.DataFrame, column: str) -> bool:
    """Whether `column` exists and holds a finite number (ladder and energy columns)."""
    if column not in table.columns:
        return False
    return bool(np.isfinite(pd.to_numeric(table[column], errors="coerce")).any())


def _ms(value: float) -> str:
    return f"{value:.3f}" if _finite(value) else "n/a"


def _integer(value: float) -> str:
    return str(int(value))


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
