"""Self-contained pages (`report.html`, `gate.html`, `compare.html`): summary, notes, tables,
figures.

`write_page` renders one with jinja2 (autoescape on), every text going through
`core.text.html_text` first; `write_html` is the report's page, from what `write_report` built,
and `gate` and `compare` write theirs beside their other files. The PNG figures the table
writers drew are embedded as data URIs (up to FIGURE_BUDGET_BYTES in all; the page names any
left out), and the CSS and the sort/filter script (`templates/report.js`, no library) are
inline: nothing is fetched, so the page opens from file:// offline.

Each non-empty table is a ``<table data-table="NAME">`` with one row per row of NAME.csv (the
first MAX_ROWS; the page says when more are left out), PAGE_ROWS of them shown until "show
all". Columns are the CSV's, except that an estimate and its ``*ci_low*`` / ``*ci_high*``
bounds share one cell (``+20.6 [+17.6, +23.6]``, sorted by the estimate; these come right
after the ``mode`` column), a column with one value in every row is shown once above the
table, and columns empty in every row are named under it.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from nnr_profile.core.modes import ladder_order
from nnr_profile.core.specs import STATUS_OK
from nnr_profile.core.text import html_text
from nnr_profile.reports.export import args_label, format_p
from nnr_profile.reports.load import ReportInputs
from nnr_profile.store.database import Store
from nnr_profile.store.versions import versions

if TYPE_CHECKING:
    from nnr_profile.reports.report import Report

PAGE_ROWS = 200
"""Rows of a table shown before its "show all" control."""
MAX_ROWS = 5000
"""Most rows of one table put in the page (its CSV has them all)."""
FIGURE_BUDGET_BYTES = 4 * 2**20
"""Most bytes of PNG embedded in one page (base64 adds a third)."""
CSS_DPI = 96
"""CSS pixels per inch: a figure is shown at the size it was drawn in inches."""
BESIDE_WIDTH = 700
"""Figures at most this wide (CSS pixels) stand beside a table of at most BESIDE_COLUMNS
columns; others follow their table."""
BESIDE_COLUMNS = 8
LONG_TEXT = 80
"""A text cell longer than this wraps (error messages, tracebacks)."""
TABLE_TITLES = {
    "overhead": (
        "Overhead",
        "Each mode against its baseline: paired ratio of median iteration time and its 95 % "
        "CI over paired repeats (unit: trial).",
    ),
    "ladder": ("Knob ladder", "Each ladder step's cost over the step before it."),
    "failures": ("Failed trials", "Trials that did not succeed, keyed by their full cell."),
    "skipped_iterations": ("Skipped iterations", "Stored iteration times left out as unusable."),
    "kernels": ("Kernels", "Kernel calls and time per iteration, per trial cell and mode."),
    "attribution": (
        "Kernel attribution",
        "Which kernels changed between the baseline and the mode, in ms per iteration.",
    ),
    "variability": (
        "Variability",
        "Replica spread per noise setting: accuracy, churn and weight distance, with "
        "bootstrap 95 % CIs.",
    ),
    "per_class": ("Per-class accuracy", "Per-class accuracy spread over replicas."),
    "accuracy_points": ("Replica accuracy", "Test accuracy of every successful replica."),
    "subgroups": ("Subgroups", "Error rates per attribute subgroup over replicas."),
    "outputs": (
        "Outputs",
        "Multi-label replicas: accuracy, churn and error rates per output and pooled over all.",
    ),
    "replica_failures": ("Failed replicas", "Replicas that did not succeed."),
    "nondeterministic_ops": (
        "Non-deterministic ops",
        "Ops without a deterministic implementation, per framework version and device.",
    ),
    "gate": (
        "Gate",
        "Each mode's paired time ratio against its baseline, its 95 % CI and the verdict "
        "against the largest ratio allowed.",
    ),
    "gate_kernels": ("Kernel deltas", "The kernels behind each judged row, in ms per iteration."),
    "compare": (
        "Comparison",
        "The determinism tax in the old and the new store, and whether it changed.",
    ),
    "kernel_diff": ("Kernel differences", "Kernels whose time per iteration changed."),
}
"""Heading and one-line description of the built-in tables (others: their name)."""
TRIAL_CELL = [
    "framework",
    "workload",
    "workload_args",
    "batch_size",
    "device",
    "host",
    "collector",
    "mode",
]
"""What tells the trials of one cell and mode apart (their repeats are its trials)."""
_TEMPLATES = "templates"

Cell = tuple[str, "str | None", str]
"""(text, numeric sort key or None, CSS class)."""


@dataclass(frozen=True)
class Column:
    """One shown column: its header, whether it sorts as numbers, its source columns."""

    header: str
    numeric: bool
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Figure:
    """One embedded figure: its file name, data URI and display size (CSS pixels)."""

    name: str
    uri: str
    width: int
    height: int


@dataclass
class HtmlTable:
    """One report table as the page shows it."""

    name: str
    title: str
    description: str
    columns: list[Column]
    rows: list[list[Cell]]
    total_rows: int
    hidden_columns: list[str] = field(default_factory=list)
    constants: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    figures_left_out: list[str] = field(default_factory=list)

    @property
    def beside(self) -> bool:
        """Whether its figures stand beside the table (narrow figures, few columns); else they
        follow it."""
        narrow = all(0 < f.width <= BESIDE_WIDTH for f in self.figures)
        return bool(self.figures) and narrow and len(self.columns) <= BESIDE_COLUMNS


def environment_facts(store: Store) -> pd.DataFrame:
    """One row per distinct (host, gpu_arch, gpu_name, framework, fingerprint) that the store's
    trials, replicas and op probes ran with; ``data`` is the stored fingerprint (JSON text)."""
    parts = " UNION ".join(
        f"SELECT host, gpu_arch, gpu_name, framework, environment_id FROM {table}"
        for table in ("trials", "replicas", "op_probes")
    )
    return store.query(
        f"SELECT x.host, x.gpu_arch, x.gpu_name, x.framework, e.data FROM ({parts}) x "
        "LEFT JOIN environments e ON e.id = x.environment_id "
        "ORDER BY x.gpu_arch, x.gpu_name, x.host, x.framework"
    )


def write_html(
    report: Report,
    inputs: ReportInputs,
    environment: pd.DataFrame,
    out: Path,
    store_name: str = "",
) -> Path:
    """Write `out`/report.html from the built `report`, its `inputs` and `environment`
    (`environment_facts`); returns its path."""
    devices = device_environments(environment)
    return write_page(
        out / "report.html",
        "nnr-profile report",
        {name: t for name, t in report.tables.items() if t is not None},
        report.table_files,
        summary(inputs, devices),
        _report_notes(report),
        devices,
        store_name,
    )


def write_page(
    path: Path,
    title: str,
    tables: dict[str, pd.DataFrame],
    files: dict[str, list[Path]],
    facts: dict[str, Any],
    notes: Sequence[str] = (),
    devices: Sequence[Device] = (),
    store_name: str = "",
) -> Path:
    """Write one self-contained page at `path`: `facts` (`summary`'s keys: measured, counts,
    failures, devices), the notes, each non-empty table with its PNG `files`; returns `path`."""
    budget = [FIGURE_BUDGET_BYTES]
    shown = [
        html_table(name, table, files.get(name, []), budget)
        for name, table in tables.items()
        if not table.empty
    ]
    page = _template().render(
        title=title,
        store=store_name,
        written=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        summary={"measured": [], "counts": [], "failures": [], "devices": [], **facts},
        notes=[*notes, *_table_notes(shown)],
        tables=shown,
        devices=list(devices),
        page_rows=PAGE_ROWS,
        style=Markup(_resource("report.css")),
        script=Markup(_resource("report.js")),
    )
    path.write_text(page, encoding="utf-8")
    return path


def html_table(
    name: str, table: pd.DataFrame, files: Sequence[Path] = (), budget: list[int] | None = None
) -> HtmlTable:
    """The page's form of one report table: shown columns, formatted cells, its PNG figures
    (embedded while `budget` [bytes left, shared between tables] allows)."""
    title, description = TABLE_TITLES.get(name, (name, ""))
    shown = table.head(MAX_ROWS)
    columns, hidden = _columns(shown)
    cells = [_column_cells(shown, column) for column in columns]
    same = [len(shown) > 1 and len({cell[0] for cell in column}) == 1 for column in cells]
    if all(same):
        same = [False] * len(cells)
    constants = [(c.header, cells[i][0][0]) for i, c in enumerate(columns) if same[i]]
    columns = [c for i, c in enumerate(columns) if not same[i]]
    cells = [column for i, column in enumerate(cells) if not same[i]]
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    figures, left_out = _figures(files, budget if budget is not None else [FIGURE_BUDGET_BYTES])
    return HtmlTable(
        name, title, description, columns, rows, len(table), hidden, constants, figures, left_out
    )


def _columns(table: pd.DataFrame) -> tuple[list[Column], list[str]]:
    """The shown columns (intervals joined to their estimate) and the names of empty ones."""
    names = [str(c) for c in table.columns]
    intervals = _intervals(names)
    joined = {part for parts in intervals.values() for part in parts if part}
    columns, hidden = [], []
    for name in names:
        if name in intervals:
            estimate, low, high = intervals[name]
            header = f"{estimate or low.replace('ci_low', 'ci')} (95% CI)"
            sources = (estimate or "", low, high)
            empty = all(_empty_column(table[s]) for s in sources if s)
            numeric = True
        elif name in joined:
            continue
        else:
            header, sources = name, (name,)
            empty = _empty_column(table[name])
            numeric = _numbers(table[name]) is not None
        if empty:
            hidden.append(header)
        else:
            columns.append(Column(header, numeric, sources))
    return _results_first(columns), hidden


def _results_first(columns: list[Column]) -> list[Column]:
    """The interval columns moved forward, right after the `mode` column (else before the
    first numeric column), so a row's estimate is read beside what it is of."""
    intervals = [c for c in columns if len(c.sources) == 3]
    rest = [c for c in columns if len(c.sources) != 3]
    headers = [c.header for c in rest]
    numeric = [i for i, c in enumerate(rest) if c.numeric]
    at = headers.index("mode") + 1 if "mode" in headers else (numeric or [len(rest)])[0]
    return rest[:at] + intervals + rest[at:]


def _intervals(names: list[str]) -> dict[str, tuple[str | None, str, str]]:
    """Interval columns by the column they are shown at: (estimate or None, low, high)."""
    found: dict[str, tuple[str | None, str, str]] = {}
    for low in names:
        high = low.replace("ci_low", "ci_high")
        if "ci_low" not in low or high not in names:
            continue
        prefix, suffix = low.split("ci_low", 1)
        candidates = (f"{prefix}overhead{suffix}", f"{prefix}mean{suffix}", prefix[:-1] + suffix)
        estimate = next((c for c in candidates if c in names), None)
        at = estimate if estimate is not None and names.index(estimate) < names.index(low) else low
        found[at] = (estimate, low, high)
    return found


def _column_cells(table: pd.DataFrame, column: Column) -> list[Cell]:
    if len(column.sources) == 3:
        estimate, low, high = column.sources
        return _interval_cells(table, estimate, low, high)
    values = table[column.sources[0]]
    numbers = _numbers(values) if column.numeric else None
    if numbers is not None:
        name = column.sources[0]
        return [
            (_number(v, name), repr(v), "num") if math.isfinite(v) else ("", None, "num")
            for v in numbers.tolist()
        ]
    return [_text_cell(v) for v in values.tolist()]


def _interval_cells(table: pd.DataFrame, estimate: str, low: str, high: str) -> list[Cell]:
    lows = pd.to_numeric(table[low], errors="coerce").astype(float).tolist()
    highs = pd.to_numeric(table[high], errors="coerce").astype(float).tolist()
    if estimate:
        estimates = pd.to_numeric(table[estimate], errors="coerce").astype(float).tolist()
    else:
        estimates = [(a + b) / 2 for a, b in zip(lows, highs, strict=True)]
    name = estimate or low
    cells: list[Cell] = []
    for value, a, b in zip(estimates, lows, highs, strict=True):
        parts = [_number(value, name)] if estimate and math.isfinite(value) else []
        if math.isfinite(a) and math.isfinite(b):
            parts.append(f"[{_number(a, name)}, {_number(b, name)}]")
        key = repr(value) if math.isfinite(value) else None
        cells.append((" ".join(parts), key, "num"))
    return cells


def _numbers(values: pd.Series) -> pd.Series | None:
    """`values` as floats when every present value is a number (not a flag), else None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    present = [v for v in values.tolist() if not _missing(v)]
    if not present or any(isinstance(v, (bool, np.bool_, str)) for v in present):
        return None
    converted = pd.to_numeric(values, errors="coerce")
    if converted.notna().sum() < len(present):
        return None
    return converted.astype(float)


def _number(value: float, column: str) -> str:
    if column.endswith("_pct"):
        return f"{value:+.1f}"
    if "p_value" in column or "p_holm" in column:
        return format_p(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _text_cell(value: Any) -> Cell:
    if _missing(value):
        return ("", None, "")
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no", None, "")
    text = str(value)
    return (text, None, "long" if len(text) > LONG_TEXT else "")


def _missing(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return value in (None, "")
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _empty_column(values: pd.Series) -> bool:
    return all(_missing(v) for v in values.tolist())


def _figures(files: Iterable[Path], budget: list[int]) -> tuple[list[Figure], list[str]]:
    """Each PNG in `files` that fits the shared `budget`, and the names of those that did not."""
    shown, left_out = [], []
    for path in files:
        if path.suffix != ".png" or not path.is_file():
            continue
        data = path.read_bytes()
        if len(data) > budget[0]:
            left_out.append(path.name)
            continue
        budget[0] -= len(data)
        width, height = png_size(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        shown.append(Figure(path.name, uri, width, height))
    return shown, left_out


def png_size(data: bytes) -> tuple[int, int]:
    """The size a PNG is meant to be shown at, in CSS pixels (96 per inch): its pixels scaled
    by its pHYs density (matplotlib writes the dpi there); (0, 0) when it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return 0, 0
    width, height = struct.unpack(">II", data[16:24])
    scale, at = 1.0, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"pHYs" and length == 9:
            per_unit, _, unit = struct.unpack(">IIB", data[at + 8 : at + 17])
            if unit == 1 and per_unit > 0:
                scale = CSS_DPI / (per_unit * 0.0254)
            break
        if kind == b"IDAT":
            break
        at += 12 + length
    return round(width * scale), round(height * scale)


@dataclass
class Device:
    """One device of the store: its label, host(s), and its fingerprints' facts merged."""

    label: str
    hosts: list[str]
    frameworks: list[str]
    drivers: list[str]
    facts: list[tuple[str, str]]


def device_environments(environment: pd.DataFrame) -> list[Device]:
    """Per device (architecture and name), the distinct values of every fingerprint fact."""
    devices = []
    keys = ["gpu_arch", "gpu_name"]
    for (arch, name), rows in environment.fillna("").groupby(keys, sort=True):
        facts: dict[str, list[str]] = {}
        frameworks, drivers = [], []
        for framework, data in zip(rows["framework"], rows["data"], strict=True):
            fingerprint = _fingerprint(data)
            found = versions(fingerprint, str(framework))
            version = found["framework_version"]
            named = f"{framework} {version}" if version else str(framework)
            extra = [f"{k} {v}" for k, v in (("CUDA", found["cuda"]), ("cuDNN", found["cudnn"]))]
            frameworks.append(", ".join([named] + [e for e in extra if not e.endswith("None")]))
            drivers += [found["driver"]] if found["driver"] else []
            for key, value in _flat(fingerprint):
                facts.setdefault(key, [])
                if value not in facts[key]:
                    facts[key].append(value)
        label = f"{arch}: {name}" if arch and name else str(arch or name or "unknown device")
        devices.append(
            Device(
                label,
                sorted({str(h) for h in rows["host"] if h}),
                list(dict.fromkeys(frameworks)),
                list(dict.fromkeys(drivers)),
                [(k, "; ".join(v)) for k, v in sorted(facts.items())],
            )
        )
    return devices


def _fingerprint(data: Any) -> dict[str, Any]:
    try:
        value = json.loads(data) if isinstance(data, str) and data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _flat(facts: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, value text) of every non-empty fact, nested dicts flattened."""
    pairs = []
    for key, value in facts.items():
        if isinstance(value, dict):
            pairs += _flat(value, f"{prefix}{key}.")
        elif not _missing(value):
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            pairs.append((f"{prefix}{key}", text))
    return pairs


def summary(inputs: ReportInputs, devices: list[Device]) -> dict[str, Any]:
    """What the store measured, on which devices, how many trials and why any failed."""
    trials, replicas, probes = inputs.trials, inputs.replicas, inputs.op_probes
    measured = []
    if not trials.empty:
        cells = trials[["framework", "workload", "workload_args"]].drop_duplicates()
        workloads = [
            f"{fw} {w}" + (f" ({args_label(a)})" if args_label(a) else "")
            for fw, w, a in cells.itertuples(index=False)
        ]
        measured += [
            ("workloads", ", ".join(workloads)),
            ("modes", ", ".join(ladder_order(sorted(set(trials["mode"].astype(str)))))),
            ("collectors", ", ".join(sorted(set(trials["collector"].astype(str))))),
            ("trials per cell and mode", _counts(trials.groupby(TRIAL_CELL, dropna=False).size())),
            ("iterations per trial", _counts(trials["iterations"])),
        ]
        if "preset" in trials.columns and trials["preset"].notna().any():
            measured.append(("preset", _values(trials["preset"])))
    if not replicas.empty:
        measured += [
            ("replica studies", _values(replicas["workload"] + " on " + replicas["dataset"])),
            ("noise settings", _values(replicas["setting"])),
        ]
    if not probes.empty:
        measured.append(("op probes", _values(probes["workload"])))
    counts = [_count("trials", trials), _count("replicas", replicas), _count("op probes", probes)]
    return {
        "measured": measured,
        "counts": [c for c in counts if c],
        "failures": _why_failed([trials, replicas, probes]),
        "devices": devices,
    }


def _values(values: pd.Series) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values.dropna().tolist()))


def _counts(values: pd.Series) -> str:
    """The distinct whole numbers of `values`, smallest first."""
    return ", ".join(str(v) for v in sorted({int(v) for v in values.dropna().tolist()}))


def _count(what: str, rows: pd.DataFrame) -> tuple[str, int, int] | None:
    """(what, how many, how many did not succeed); None when there are none."""
    if rows.empty:
        return None
    return what, len(rows), int((rows["status"] != STATUS_OK).sum())


def _why_failed(frames: list[pd.DataFrame], most: int = 10) -> list[tuple[int, str]]:
    """(count, 'status: first line of the error') of the commonest reasons, commonest first."""
    reasons: dict[str, int] = {}
    for rows in frames:
        if rows.empty:
            continue
        failed = rows[rows["status"] != STATUS_OK]
        for status, error in zip(failed["status"], failed["error"], strict=True):
            line = str(error).strip().splitlines()[0][:200] if not _missing(error) else ""
            reason = f"{status}: {line}" if line else str(status)
            reasons[reason] = reasons.get(reason, 0) + 1
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return [(count, reason) for reason, count in ranked[:most]]


def _report_notes(report: Report) -> list[str]:
    """The report's notes and the warnings a reader should see first."""
    notes = list(report.notes)
    failed = len(report.failures)
    if failed:
        notes.append(f"{failed} trial(s) did not succeed: see the failed trials table.")
    overhead = report.overhead
    if not overhead.empty and "noisy" in overhead.columns:
        noisy = int(overhead["noisy"].fillna(False).astype(bool).sum())
        if noisy:
            notes.append(
                f"{noisy} overhead row(s) are noisy (clocks throttled or dropped, or a wide "
                "spread): read their note column before trusting the estimate."
            )
    return notes


def _table_notes(tables: list[HtmlTable]) -> list[str]:
    """What the page left out of its tables: rows past MAX_ROWS, figures over the budget."""
    notes = []
    for table in tables:
        if table.total_rows > len(table.rows):
            notes.append(
                f"{table.name}: the page holds the first {len(table.rows)} of "
                f"{table.total_rows} rows; {table.name}.csv has them all."
            )
        if table.figures_left_out:
            notes.append(
                f"{table.name}: figures left out of the page to keep it small: "
                f"{', '.join(table.figures_left_out)} (beside the page)."
            )
    return notes


def _resource(name: str) -> str:
    return resources.files(__package__).joinpath(_TEMPLATES, name).read_text(encoding="utf-8")


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    environment.filters["t"] = lambda value: Markup(html_text(value))
    return environment.from_string(_resource("report.html.j2"))
