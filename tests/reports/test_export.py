"""Display tables: formatted strings kept as written, varying columns only, the paper table."""

import numpy as np
import pandas as pd

from nnr_profile.reports.export import display_table, markdown_table, paper_table
from nnr_profile.reports.overhead import OVERHEAD_COLUMNS


def _row(**values):
    row = dict.fromkeys(OVERHEAD_COLUMNS, np.nan)
    row.update(
        framework="torch",
        workload="resnet_50",
        workload_args="{}",
        batch_size=8,
        image_size=np.nan,
        gpu_arch="Volta",
        gpu_name="Tesla V100-SXM2-32GB",
        baseline_mode="default",
        mode="deterministic",
        baseline_median_ms=10.0,
        median_ms=17.19,
        ratio=1.719,
        overhead_pct=71.9,
        ci_low_pct=60.0,
        ci_high_pct=80.0,
        p_value=0.001,
        p_holm=0.002,
        n_pairs=3,
        n_failed=0,
        noisy=False,
        note="",
    )
    row.update(values)
    return row


def test_numbers_stay_as_formatted_and_ratio_sits_beside_the_overhead():
    shown = display_table(pd.DataFrame([_row(), _row(workload="b", overhead_pct=-3.04)]))
    assert list(shown["overhead (%)"]) == ["+71.9", "-3.0"]
    columns = list(shown.columns)
    assert columns.index("ratio") + 1 == columns.index("overhead (%)")
    markdown = markdown_table(shown)
    assert "+71.9" in markdown and "1.72x" in markdown and "[+60.0, +80.0]" in markdown
    assert "args" not in columns


def test_arguments_and_sizes_are_shown_only_when_they_differ():
    table = pd.DataFrame([_row(workload_args='{"kernel": 3}'), _row(workload_args='{"kernel": 5}')])
    shown = display_table(table)
    assert list(shown["args"]) == ["kernel=3", "kernel=5"]
    assert "batch" not in shown.columns
    sizes = display_table(pd.DataFrame([_row(image_size=32.0), _row(image_size=np.nan)]))
    assert list(sizes["image"]) == ["image=32", "image=default"]


def test_missing_intervals_read_as_not_available():
    shown = display_table(
        pd.DataFrame([_row(ci_low_pct=np.nan, ci_high_pct=np.nan, p_holm=np.nan)])
    )
    assert shown.loc[0, "95% CI (%)"] == "n/a" and shown.loc[0, "p (Holm)"] == "n/a"


def test_paper_table_has_model_gpu_ratio_overhead_and_n():
    table = pd.DataFrame([_row(), _row(baseline_mode="fast", mode="deterministic")])
    paper = paper_table(table)
    assert list(paper.columns) == ["Model", "GPU", "Ratio", r"Overhead (\%) [95\% CI]", "$n$"]
    assert paper.loc[0, "GPU"] == "V100-SXM2-32GB" and paper.loc[0, "Ratio"] == "1.72$\\times$"
    negative = paper_table(pd.DataFrame([_row(overhead_pct=-2.5, ci_low_pct=-4.0)]))
    assert negative.iloc[0, 3].startswith("$-$2.5 [$-$4.0")
