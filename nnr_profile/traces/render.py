"""Tables of plain dict rows as CSV, Markdown or JSON text (no pandas needed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

OUTPUT_FORMATS = ("markdown", "csv", "json")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def to_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table; floats shown with one decimal."""
    numeric = [bool(rows) and isinstance(rows[0][c], int | float) for c in columns]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    for row in rows:
        cells = (_cell(row[c]).replace("|", "\\|") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header row; floats written with full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    return buffer.getvalue()


def to_json(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A JSON array of objects with the given keys, in order."""
    payload = [{c: row[c] for c in columns} for row in rows]
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n"


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as text in ``fmt`` (one of :data:`OUTPUT_FORMATS`)."""
    writers = {"markdown": to_markdown, "csv": to_csv, "json": to_json}
    return writers[fmt](rows, columns)
