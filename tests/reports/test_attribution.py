"""Per-kernel overhead attribution and kernel-name normalisation."""

from __future__ import annotations

import pandas as pd
import pytest
from fixtures_traces import fixture

from nnr_profile.profiler.traces import summarize_trace
from nnr_profile.reports.attribution import (
    ATTRIBUTION_COLUMNS,
    attribute_overhead,
    normalize_kernel_name,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("kernel_vectorAdd(float const *, int) [218]", "kernel_vectorAdd(float const*, int)"),
        (
            "void at::native::<unnamed>::k<float, (int)4, X::[lambda(float) (instance 1)]>(long)",
            "void at::native::(anonymous namespace)::k<float, 4, X::{lambda(float)#1}>(long)",
        ),
        (
            "void f<(int)4, std::array<char *, (unsigned long)3>>(int)",
            "void f<4, std::array<char*, 3ul> >(int)",
        ),
        (
            "at::cuda::_GLOBAL__N__54_tmpxft_0000849d_00000000_11_Dropout_cpp1_ii_275f3a05::k<(bool)1>(int)",
            "at::cuda::(anonymous namespace)::k<true>(int)",
        ),
        ("foo(int)  <<<(40,1,1), (256,1,1)>>>", "  foo( int )"),
    ],
)
def test_same_kernel_normalises_equal(a: str, b: str) -> None:
    assert normalize_kernel_name(a) == normalize_kernel_name(b)


def test_algorithm_template_arguments_are_kept() -> None:
    a = "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x64_16x6_nn_align4>(Params)"
    b = "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x64_16x6_nn_align4>(Params)"
    assert normalize_kernel_name(a) != normalize_kernel_name(b)
    assert normalize_kernel_name("gemm<128, 64>(int)") != normalize_kernel_name("gemm<64, 64>(int)")


def _table(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "calls", "total_ns"])


def test_attribution_on_two_tables() -> None:
    base = _table(
        [("gemm<4>(int)", 100, 3_000_000), ("relu(float *)", 100, 1_000_001), ("old", 10, 7)]
    )
    other = _table(
        [("gemm<(int)4>(int)", 300, 12_000_000), ("relu(float*)", 300, 2_999_999), ("new", 3, 5)]
    )
    result = attribute_overhead(base, other, base_iterations=10, other_iterations=30)
    assert list(result.columns) == list(ATTRIBUTION_COLUMNS)
    rows = result.set_index("kernel")
    assert rows.loc["gemm<4>(int)", "change"] == "slower"
    assert rows.loc["gemm<4>(int)", "base_ms_per_iter"] == pytest.approx(0.3)
    assert rows.loc["gemm<4>(int)", "other_ms_per_iter"] == pytest.approx(0.4)
    assert rows.loc["relu(float*)", "change"] == "faster"
    assert rows.loc["old", "change"] == "removed" and rows.loc["new", "change"] == "added"
    delta = result["delta_ms_per_iter"].sum()
    assert delta == result["other_ms_per_iter"].sum() - result["base_ms_per_iter"].sum()
    exact = (12_000_000 + 2_999_999 + 5) / 30e6 - (3_000_000 + 1_000_001 + 7) / 10e6
    assert delta == pytest.approx(exact, abs=2**-30)
    assert result["delta_ms_per_iter"].abs().is_monotonic_decreasing


def test_attribution_on_real_hta_pair() -> None:
    base = summarize_trace(fixture("kineto/hta_trace_diff_control.json.gz"))
    other = summarize_trace(fixture("kineto/hta_trace_diff_test.json.gz"))
    result = attribute_overhead(base, other, 1, 1)
    total = result["delta_ms_per_iter"].sum()
    assert total == result["other_ms_per_iter"].sum() - result["base_ms_per_iter"].sum()
    expected = (int(other["total_ns"].sum()) - int(base["total_ns"].sum())) / 1e6
    assert total == pytest.approx(expected, abs=2**-30)
    assert set(result["change"]) <= {"added", "removed", "slower", "faster", "same"}


def test_bad_iterations() -> None:
    with pytest.raises(ValueError, match="positive"):
        attribute_overhead(_table([]), _table([]), 0, 1)
