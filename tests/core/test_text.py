"""The one escaping layer: Markdown cells, CSV formula injection, HTML text, file slugs."""

import pandas as pd

from nnr_profile.core.text import csv_safe, csv_safe_frame, html_text, markdown_cell, slug


def test_markdown_cell_cannot_break_its_row():
    assert markdown_cell("a|b\nc\r") == "a\\|b c "


def test_formulas_are_defused_and_numbers_untouched():
    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_safe("@SUM") == "'@SUM"
    assert csv_safe("\rname") == "'\rname"
    assert csv_safe("volta_sgemm") == "volta_sgemm"
    assert csv_safe(-5.0) == -5.0
    frame = csv_safe_frame(pd.DataFrame({"name": ["+x", "y"], "total_ns": [-1, 2]}))
    assert frame["name"].tolist() == ["'+x", "y"]
    assert frame["total_ns"].tolist() == [-1, 2]


def test_slug_keeps_files_in_their_folder():
    assert slug("../../x") == "_.._x"
    assert "/" not in slug("a/b\\c")
    assert slug("...") == "unnamed"
    assert slug("resnet50") == "resnet50"


def test_html_text_shows_markup_and_never_runs_it():
    assert html_text('<script>alert("x")</script>') == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    )
    assert html_text("a & 'b'\x00\nc") == "a &amp; &#x27;b&#x27; \nc"
    assert html_text(1.5) == "1.5"
