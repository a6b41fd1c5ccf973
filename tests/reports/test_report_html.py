"""report.html: every table and figure in one self-contained page; a real chromium sorts it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PageTables, paired_store

from nnr_profile.core.modes import MODES, parse_modes
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.reports.html import MAX_ROWS, html_table
from nnr_profile.reports.report import Report, write_report
from nnr_profile.store.database import Store

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<script>window.nnrInjected = 1</script> CUDA error: out of memory"
H100 = {
    "host": "node1",
    "python": "3.11.9",
    "gpu": {"arch": "Hopper", "name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15"},
    "framework": {"torch": "2.4.1", "cuda": "12.4", "cudnn": "90100"},
}


def html_store(path: Path) -> Path:
    """`paired_store` (CPU, one throttled trial) plus a ladder sweep and kernel trials on an
    H100, and a failed trial whose error holds a script tag."""
    paired_store(path)
    rng = np.random.default_rng(3)
    ladder = parse_modes("ladder")
    with Store(path) as store:
        for repeat in range(3):
            for step, mode in enumerate(ladder):
                spec = TrialSpec(
                    "torch", "smallcnn", mode, gpu_index=0, iterations=8, repeat=repeat
                )
                times = 8.0 * (1 + 0.04 * step) * np.exp(rng.normal(0, 0.01, 8))
                store.record(TrialResult(spec, "ok", times_ms=list(times), environment=H100))
        for mode, factor in (("default", 1), ("deterministic", 3)):
            spec = TrialSpec(
                "torch", "smallcnn", MODES[mode], gpu_index=0, iterations=4, collector="nsys"
            )
            kernels = [
                {"name": f"kernel_{k}", "calls": 4, "total_ns": 1000 * (k + 1) * factor**k}
                for k in range(4)
            ]
            store.record(
                TrialResult(spec, "ok", times_ms=[8.0] * 4, environment=H100, kernels=kernels)
            )
        failed = TrialSpec("torch", "smallcnn", MODES["default"], gpu_index=0, repeat=7)
        store.record(TrialResult(failed, "failed", environment=H100, error=HOSTILE))
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    """The report of `html_store`, written once for this module's tests."""
    folder = tmp_path_factory.mktemp("html")
    report = write_report(html_store(folder / "nnr.db"), folder / "out")
    return report, folder / "out" / "report.html"


def _csv_rows(out: Path, report: Report) -> dict[str, int]:
    """Rows of each CSV the report wrote, by table name."""
    names = {p.stem for p in report.files if p.suffix == ".csv"}
    return {name: len(pd.read_csv(out / f"{name}.csv")) for name in names if name in report.tables}


def test_every_table_is_in_the_page_with_its_csv_rows_and_figures(written):
    report, page = written
    parsed = PageTables()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert page in report.files
    expected = _csv_rows(page.parent, report)
    assert {"overhead", "ladder", "kernels", "attribution", "failures"} <= set(expected)
    assert {k: parsed.rows[k] for k in expected} == expected
    non_empty = {name for name, table in report.tables.items() if not table.empty}
    assert set(parsed.rows) == non_empty
    assert len(parsed.images) >= 3
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert page.stat().st_size < 2 * 2**20


def test_summary_names_versions_devices_and_why_trials_failed(written):
    _, page = written
    text = page.read_text(encoding="utf-8")
    assert "torch 2.4.1, CUDA 12.4, cuDNN 90100" in text and "driver 550.54.15" in text
    assert "Hopper: NVIDIA H100 80GB HBM3" in text
    assert "1 did not succeed" in text
    assert "failed: &lt;script&gt;window.nnrInjected = 1&lt;/script&gt; CUDA error" in text
    assert "Notes and warnings" in text and "1 overhead row(s) are noisy" in text


def test_text_from_the_store_is_escaped_never_run(written):
    _, page = written
    parsed = PageTables()
    text = page.read_text(encoding="utf-8")
    parsed.feed(text)
    assert parsed.scripts == 1
    assert "<script>window.nnrInjected" not in text
    assert "&lt;script&gt;window.nnrInjected = 1&lt;/script&gt;" in text


def test_intervals_share_a_cell_sorted_by_estimate_and_constant_or_empty_columns_are_named():
    table = pd.DataFrame(
        {
            "framework": ["torch", "torch"],
            "workload": ["a", "b"],
            "overhead_pct": [20.5, 3.25],
            "ci_low_pct": [18.0, 1.0],
            "ci_high_pct": [23.0, 5.5],
            "t_ci_low_pct": [1.0, np.nan],
            "t_ci_high_pct": [3.0, np.nan],
            "energy_j": [np.nan, np.nan],
            "batch_size": [128.0, 64.0],
        }
    )
    shown = html_table("overhead", table)
    headers = [c.header for c in shown.columns]
    assert headers == ["workload", "overhead_pct (95% CI)", "t_ci_pct (95% CI)", "batch_size"]
    assert shown.hidden_columns == ["energy_j"]
    assert shown.constants == [("framework", "torch")]
    assert shown.rows[0][1] == ("+20.5 [+18.0, +23.0]", "20.5", "num")
    assert shown.rows[0][2] == ("[+1.0, +3.0]", "2.0", "num")
    assert shown.rows[1][2] == ("", None, "num")
    assert shown.rows[1][3] == ("64", "64.0", "num")


def test_a_long_table_is_capped_and_says_so():
    table = pd.DataFrame({"kernel": [f"k{i}" for i in range(MAX_ROWS + 5)], "calls": 1})
    shown = html_table("kernels", table)
    assert len(shown.rows) == MAX_ROWS and shown.total_rows == MAX_ROWS + 5


def _driver(log_dir: Path):
    """Headless Debian chromium through its chromedriver, browser console logged."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver"), log_output=str(log_dir / "chromedriver.log"))
    return webdriver.Chrome(options=options, service=service)


def _screenshot(driver, folder: Path) -> Path:
    """The whole page as first shown, in `folder`/report_html.png (window back to 1400x1000)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 100, 10000))
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.images].map((i) => i.decode()))"
        ".then(() => requestAnimationFrame(() => done(true)));"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report_html.png"
    assert driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def _column(driver, table: str, header: str) -> list[str]:
    """The shown cells of column `header` of `table`, top to bottom."""
    script = """
        const table = document.querySelector(`table[data-table="${arguments[0]}"]`);
        const index = [...table.tHead.rows[0].cells].findIndex(
            (th) => th.textContent.trim() === arguments[1]);
        return [...table.tBodies[0].rows].filter((r) => !r.hidden)
            .map((r) => r.cells[index].textContent);
    """
    return driver.execute_script(script, table, header)


@pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromedriver") is None,
    reason="needs Debian's chromium and chromium-driver (bash scripts/install-chromium.sh)",
)
def test_report_html_in_chromium_sorts_filters_and_shows_figures(written, tmp_path):
    from selenium.webdriver.common.by import By

    report, page = written
    driver = _driver(tmp_path)
    try:
        driver.get(page.as_uri())
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
        _screenshot(driver, Path(os.environ.get("NNR_SCREENSHOTS") or tmp_path))
        for name, count in _csv_rows(page.parent, report).items():
            rows = driver.find_elements(By.CSS_SELECTOR, f'table[data-table="{name}"] tbody tr')
            assert len(rows) == count, name

        header = driver.find_element(
            By.XPATH, '//table[@data-table="overhead"]//th[normalize-space()="median_ms"]'
        )
        header.click()
        ascending = [float(v) for v in _column(driver, "overhead", "median_ms")]
        assert ascending == sorted(ascending) and ascending[0] < 10 <= ascending[-1]
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert [float(v) for v in _column(driver, "overhead", "median_ms")] == ascending[::-1]

        box = driver.find_element(By.CSS_SELECTOR, '[data-section="overhead"] [data-filter]')
        box.send_keys("mlp")
        workloads = _column(driver, "overhead", "workload")
        assert workloads == ["mlp"]
        box.clear()
        box.send_keys(" ")
        assert len(_column(driver, "overhead", "workload")) == len(report.overhead)

        failures = " ".join(_column(driver, "failures", "error"))
        assert "<script>window.nnrInjected" in failures
        assert driver.execute_script("return window.nnrInjected === undefined")

        images = driver.find_elements(By.CSS_SELECTOR, "section[data-section] figure img")
        assert len(images) >= 3
        assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
        assert driver.find_elements(By.CSS_SELECTOR, '[data-section="ladder"] img')

        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()
