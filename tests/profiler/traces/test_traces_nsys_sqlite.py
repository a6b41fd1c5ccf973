"""Nsight Systems SQLite exports: real fixtures, exact totals, GPU names, edge cases."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from fixtures_traces import fixture, sqlite_kernel_totals

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces import (
    KERNEL_COLUMNS,
    detect_format,
    kernel_stats,
    read_kernels,
    summarize_kernels,
    summarize_trace,
)

CASES = {
    "pipit_cloverleaf_a100_nsys2024.5.1.sqlite": ("NVIDIA A100-SXM4-80GB", 1312),
    "pipit_saxpy_a100_nsys2022.2.1.sqlite": ("NVIDIA A100-SXM4-40GB", 5),
    "fuser_pytorch_crossentropy_h200_nsys2025.1.1.sqlite": ("NVIDIA H200", 18),
    "extrap_con_kernel_gtx1060_win_nsys2022.1.1.sqlite": ("GeForce GTX 1060 with Max-Q Design", 9),
    "extrap_exgpu_a100_oldschema.sqlite": ("A100-PCIE-40GB", 6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernels_match_plain_sql(name: str) -> None:
    path = fixture(f"nsys_sqlite/{name}")
    gpu, expected_count = CASES[name]
    count, total = sqlite_kernel_totals(path, ("CUPTI_ACTIVITY_KIND_KERNEL",))
    assert count == expected_count
    assert detect_format(path) == "nsys-sqlite"
    df = read_kernels(path)
    assert list(df.columns) == list(KERNEL_COLUMNS)
    assert len(df) == count
    assert int(df["duration_ns"].sum()) == total
    assert (df["end_ns"] - df["start_ns"] == df["duration_ns"]).all()
    assert set(df["gpu_name"]) == {gpu}
    assert str(df["duration_ns"].dtype) == "int64"
    summary = summarize_trace(path)
    assert int(summary["calls"].sum()) == count
    assert int(summary["total_ns"].sum()) == total
    assert summary.equals(summarize_kernels(df))


def test_sql_grouping_matches_distinct_names() -> None:
    path = fixture("nsys_sqlite/pipit_cloverleaf_a100_nsys2024.5.1.sqlite")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = conn.execute(
        "SELECT COUNT(DISTINCT s.value) FROM CUPTI_ACTIVITY_KIND_KERNEL k "
        "JOIN StringIds s ON s.id = k.demangledName"
    ).fetchone()[0]
    conn.close()
    stats = kernel_stats(path)
    assert len(stats) == names
    assert [s.total_ns for s in stats] == sorted((s.total_ns for s in stats), reverse=True)


def test_short_names_come_from_export() -> None:
    df = read_kernels(fixture("nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite"))
    assert set(df["short_name"]) == {"saxpy"}
    assert set(df["name"]) == {"saxpy(double *, double *, double *, double, int)"}


def test_non_utf8_metadata_is_read() -> None:
    path = fixture("nsys_sqlite/extrap_con_kernel_gtx1060_win_nsys2022.1.1.sqlite")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT value FROM EXPORT_META_DATA").fetchall()
    conn.close()
    assert len(read_kernels(path)) == 9


def test_no_kernel_table_is_a_clear_error() -> None:
    path = fixture("nsys_sqlite/weatherbench2_nokernels_rtx4060_nsys2025.5.1.sqlite")
    with pytest.raises(TraceError, match="no kernels"):
        read_kernels(path)
    with pytest.raises(TraceError, match="no kernels"):
        kernel_stats(path)


def test_reader_never_writes(tmp_path) -> None:
    src = fixture("nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite")
    copy = tmp_path / "copy.sqlite"
    shutil.copy(src, copy)
    before = copy.read_bytes()
    read_kernels(copy)
    kernel_stats(copy)
    assert copy.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.sqlite"]


def test_truncated_copy_is_a_clear_error(tmp_path) -> None:
    src = fixture("nsys_sqlite/pipit_cloverleaf_a100_nsys2024.5.1.sqlite")
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(TraceError, match="truncated"):
        read_kernels(cut)


def test_corrupt_pages_are_a_clear_error(tmp_path) -> None:
    src = fixture("nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite")
    data = bytearray(src.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(bytes(data))
    with pytest.raises(TraceError):
        read_kernels(bad)


@pytest.mark.parametrize("end", ["start - 5", "'soon'"])
def test_bad_kernel_times_name_the_kernel(tmp_path, end: str) -> None:
    path = tmp_path / "edited.sqlite"
    shutil.copy(fixture("nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite"), path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            f'UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET "end" = {end} '
            "WHERE rowid = (SELECT MIN(rowid) FROM CUPTI_ACTIVITY_KIND_KERNEL)"
        )
    conn.close()
    for reader in (read_kernels, kernel_stats):
        with pytest.raises(TraceError, match=r"edited\.sqlite: kernel '.*saxpy.*' in CUPTI_"):
            reader(path)
