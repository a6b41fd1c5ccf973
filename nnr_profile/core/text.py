"""Safe text for the files users open: Markdown, CSV, LaTeX and HTML cells, file slugs.

One escaping layer for every writer (reports and traces):

- `markdown_cell`: a table cell that cannot break its row (``|`` escaped, line breaks and
  other control characters shown as spaces).
- `csv_safe`: the usual mitigation of CSV formula injection (OWASP): a text cell that a
  spreadsheet would read as a formula (it begins with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return) gets a leading single quote. Numbers are left alone; full precision stays
  in the CSV.
- `slug`: a file-name-safe form of a name (no path separators, no leading dots), so a
  plugin's name cannot place a file outside its folder.
- `latex_text`: text for a LaTeX table cell (the ten special characters escaped, line breaks
  and other control characters shown as spaces).
- `html_text`: text for an HTML page, element or attribute (``& < > " '`` as entities, control
  characters other than line breaks and tabs shown as spaces), so a name holding ``<script>``
  is shown, never run.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_HTML_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_UNSAFE_FILE = re.compile(r"[^A-Za-z0-9._=+-]+")


def markdown_cell(value: Any) -> str:
    """`value` as text that stays inside one Markdown table cell."""
    return _CONTROL.sub(" ", str(value)).replace("\\", "\\\\").replace("|", "\\|")


def csv_safe(value: Any) -> Any:
    """`value`, with a leading quote when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell passed through `csv_safe` (numbers untouched)."""
    import pandas as pd

    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(csv_safe)
    return safe


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_text(value: Any) -> str:
    """`value` as text that LaTeX prints as written inside one table cell."""
    text = _CONTROL.sub(" ", str(value))
    return _LATEX_PATTERN.sub(lambda m: _LATEX_SPECIAL[m.group(0)], text)


def html_text(value: Any) -> str:
    """`value` as HTML text, safe inside an element or a quoted attribute value."""
    return html.escape(_HTML_CONTROL.sub(" ", str(value)), quote=True)


def slug(name: str, fallback: str = "unnamed") -> str:
    """A file-name-safe form of `name`: letters, digits and ``._=+-`` only, no leading dot."""
    text = _UNSAFE_FILE.sub("_", str(name)).lstrip(".")
    return text[:120] or fallback
