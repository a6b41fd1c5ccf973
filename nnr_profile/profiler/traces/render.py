"""Tables of plain dict rows as CSV, Markdown or JSON text (no pandas needed).

Text goes through the project's one escaping layer (:mod:`nnr_profile.core.text`): a name
with ``|`` or a line break stays in its Markdown cell, and a CSV cell a spreadsheet would
run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return first) gets a leading
quote; CSV text cells are always quoted. JSON needs neither.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from nnr_profile.core.text import csv_safe, markdown_cell

OUTPUT_FORMATS = ("markdown", "csv", "json")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def to_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table; floats shown with one decimal."""
    numeric = [bool(rows) and isinstance(rows[0][c], int | float) for c in columns]
    lines = [
        "| " + " | ".join(markdown_cell(c) for c in columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    for row in rows:
        cells = (markdown_cell(_cell(row[c])) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header row; floats written with full precision, text made spreadsheet-safe
    and always quoted (a carriage return inside a name cannot split its row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(columns)
    writer.writerows([csv_safe(row[c]) for c in columns] for row in rows)
    return buffer.getvalue()


def to_json(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A JSON array of objects with the given keys, in order."""
    payload = [{c: row[c] for c in columns} for row in rows]
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n"


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as text in ``fmt`` (one of :data:`OUTPUT_FORMATS`)."""
    writers = {"markdown": to_markdown, "csv": to_csv, "json": to_json}
    return writers[fmt](rows, columns)


def render_notes(notes: Sequence[str], fmt: str) -> str:
    """Reader notes to print with a table: Markdown lines after it (empty for csv/json)."""
    if fmt != "markdown" or not notes:
        return ""
    return "\n" + "".join(f"Note: {markdown_cell(note)}\n" for note in notes)
