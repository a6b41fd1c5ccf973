"""`analyze grad-snr` and `analyze landscape`: files with finite values; the pure helpers."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from nnr_profile.studies.grad_snr import snr_summary
from nnr_profile.studies.landscape import filter_normalised_direction, project


def test_snr_summary_matches_the_definition():
    grads = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0], [2.0, 0.0, 2.0]])  # B=3 batches
    snr, std = snr_summary(grads.sum(0), (grads**2).sum(0), 3)
    expected = 2.0 / np.sqrt(np.var(grads[:, 0], ddof=1) / 3)
    assert snr[0] == pytest.approx(expected)
    assert snr[1] == 0.0 and np.isinf(snr[2])
    assert std[0] == pytest.approx(1.0)


def test_directions_are_filter_normalised_and_projection_recovers_coordinates():
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((4, 3)).astype(np.float32), np.ones(4, np.float32)]
    d = filter_normalised_direction(weights, rng)
    assert np.allclose(np.linalg.norm(d[0], axis=1), np.linalg.norm(weights[0], axis=1))
    assert not d[1].any()
    d1, d2 = rng.standard_normal(20), rng.standard_normal(20)
    assert project(0.3 * d1 - 2 * d2, d1, d2) == pytest.approx((0.3, -2.0))


@pytest.mark.slow
def test_grad_snr_writes_finite_csv_and_figure(tmp_path):
    proc = run_cli(
        "analyze",
        "grad-snr",
        "--model",
        "mlp",
        "--dataset",
        "digits",
        "--gpu",
        "cpu",
        "--batches",
        "4",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "grad_snr.csv")
    assert set(table["mode"]) == {"default", "deterministic"}
    assert len(table) == 12  # 6 parameter tensors per mode
    values = table[["share_snr_below_1", "sampling_std_l2", "impl_diff_l2", "impl_to_sampling"]]
    assert np.isfinite(values.to_numpy(float)).all()
    assert ((table["share_snr_below_1"] >= 0) & (table["share_snr_below_1"] <= 1)).all()
    # CPU kernels are deterministic: the same minibatch gives the same gradient bit for bit
    assert (table["impl_diff_l2"] == 0).all()
    assert (tmp_path / "grad_snr.png").stat().st_size > 5_000


@pytest.mark.slow
def test_landscape_writes_a_finite_grid_and_figures(tmp_path):
    proc = run_cli(
        "analyze",
        "landscape",
        "--model",
        "mlp",
        "--dataset",
        "digits",
        "--gpu",
        "cpu",
        "--epochs",
        "1",
        "--steps",
        "5",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    surface = pd.read_csv(tmp_path / "landscape.csv")
    assert len(surface) == 25 and np.isfinite(surface["loss"]).all()
    centre = surface[(surface["alpha"] == 0) & (surface["beta"] == 0)]["loss"].item()
    assert centre <= surface["loss"].max()
    for name in ("landscape_contour", "landscape_surface"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
        assert (tmp_path / f"{name}.pdf").stat().st_size > 1_000


def test_landscape_without_replicas_in_the_store_is_one_line(tmp_path):
    proc = run_cli(
        "analyze",
        "landscape",
        "--model",
        "mlp",
        "--gpu",
        "cpu",
        "--steps",
        "3",
        "--db",
        str(tmp_path / "missing.db"),
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no results store" in proc.stderr
