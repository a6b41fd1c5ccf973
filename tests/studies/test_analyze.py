"""`analyze grad-snr` and `analyze landscape`: files with finite values; the pure helpers.

TensorFlow runs in child processes only (TF and torch crash when loaded in one process).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_usage_error, run_cli, run_probe

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_FAILED
from nnr_profile.studies.grad_snr import (
    GradSnrRun,
    GradSnrSpec,
    Measured,
    grad_snr_table,
    measure_grad_snr,
    plan_runs,
    snr_summary,
)
from nnr_profile.studies.landscape import filter_normalised_direction, project
from nnr_profile.studies.variability import parse_settings


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


def test_keras_filters_are_normalised_along_the_last_axis():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 2, 5)).astype(np.float32)  # (kh, kw, in, out)
    (d,) = filter_normalised_direction([kernel], rng, axis=-1)
    assert d.shape == kernel.shape
    norms = np.linalg.norm(d.reshape(-1, 5), axis=0)
    assert np.allclose(norms, np.linalg.norm(kernel.reshape(-1, 5), axis=0))


def _measured(setting, mode, replica, layers, gradient):
    """A run's rows for `layers` {name: (n_weights, sampling_std_l2)}, and its first gradient."""
    rows = [
        {
            "layer": name,
            "n_weights": n,
            "snr_median": 1.0,
            "share_snr_below_1": 0.5,
            "sampling_std_l2": sampling,
            "impl_diff_l2": 0.0,
            "impl_max_abs_diff": 0.0,
            "impl_to_sampling": 0.0,
        }
        for name, (n, sampling) in layers.items()
    ]
    run = GradSnrRun(setting, MODES[mode], replica, replica, replica)
    return Measured(run, rows, None if gradient is None else np.asarray(gradient, np.float32))


def test_replica_noise_is_the_std_over_replicas_of_the_first_gradient_per_layer():
    layers = {"a": (2, 1.0), "b": (1, 2.0)}
    measured = [
        _measured("algo", "deterministic", 0, layers, [0, 0, 1]),
        _measured("algo", "deterministic", 1, layers, [3, 4, 1]),
        _measured("control", "deterministic", 0, layers, [1, 1, 1]),
        _measured("control", "deterministic", 1, layers, [1, 1, 1]),
    ]
    table = grad_snr_table("torch", measured).set_index(["setting", "layer"])
    # per weight std over 2 replicas (ddof 1) = |x1 - x2| / sqrt(2): (3, 4) -> L2 5 / sqrt(2)
    assert table.loc[("algo", "a"), "replica_std_l2"] == pytest.approx(5 / np.sqrt(2))
    assert table.loc[("algo", "a"), "replica_to_sampling"] == pytest.approx(5 / np.sqrt(2))
    assert table.loc[("algo", "b"), "replica_std_l2"] == 0
    assert (table.loc["control", "replica_std_l2"] == 0).all()
    assert (table["replicas"] == 2).all() and (table["mode"] == "deterministic").all()


def test_comparing_modes_has_one_run_per_mode_and_no_replica_noise():
    layers = {"a": (2, 1.0)}
    measured = [_measured(None, m, 0, layers, None) for m in ("default", "deterministic")]
    table = grad_snr_table("tf", measured)
    assert table["mode"].tolist() == ["default", "deterministic"]
    assert table["setting"].isna().all() and table["replica_std_l2"].isna().all()
    assert (table["framework"] == "tf").all()


def test_runs_follow_the_variability_seeds_and_modes():
    spec = GradSnrSpec("mlp", settings=parse_settings("algo+impl,control"), replicas=2)
    runs = {(r.setting, r.replica): r for r in plan_runs(spec)}
    assert len(runs) == 4
    assert runs[("algo+impl", 0)].init_seed != runs[("algo+impl", 1)].init_seed
    assert runs[("algo+impl", 0)].mode.name == "default"
    assert runs[("control", 0)].init_seed == runs[("control", 1)].init_seed
    assert runs[("control", 1)].mode.name == "deterministic"
    by_mode = plan_runs(GradSnrSpec("mlp", modes=(MODES["default"], MODES["fast"])))
    assert [(r.setting, r.mode.name) for r in by_mode] == [(None, "default"), (None, "fast")]
    with pytest.raises(UsageError, match="not both"):
        GradSnrSpec("mlp", settings=parse_settings("algo"), modes=(MODES["default"],))
    with pytest.raises(UsageError, match="replicas only applies with settings"):
        GradSnrSpec("mlp", modes=(MODES["default"],), replicas=2)
    with pytest.raises(UsageError, match="framework must be torch or tf"):
        GradSnrSpec("mlp", framework="jax", settings=parse_settings("algo"))


def test_grad_snr_refuses_modes_and_settings_together_in_one_line():
    proc = run_cli(
        "analyze", "grad-snr", "--gpu", "cpu", "--modes", "default", "--settings", "algo"
    )
    assert_one_line_usage_error(proc, "--modes", "--settings", "not both")


def test_a_failed_grad_snr_run_comes_back_as_a_value_not_an_exception():
    spec = GradSnrSpec("mlp", modes=(MODES["default"],), batches=2, batch_size=4000, epochs=0)
    seen = []
    outcome = measure_grad_snr(spec, on_run=seen.append)
    assert outcome.table.empty and list(outcome.table.columns) == list(grad_snr_table("torch", []))
    [failed] = outcome.failed
    assert seen == [failed] and failed.status == STATUS_FAILED and failed.where == "mode default"
    assert failed.error.startswith("UsageError: ") and "lower --batches" in failed.error


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
        "--modes",
        "default,deterministic",
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


def _grad_snr_settings(tmp_path: Path, framework: str) -> pd.DataFrame:
    """`analyze grad-snr` over algo+impl and control, 2 replicas each, on digits: the CSV."""
    proc = run_cli(
        "analyze",
        "grad-snr",
        "--framework",
        framework,
        "--model",
        "mlp",
        "--gpu",
        "cpu",
        "--settings",
        "algo+impl,control",
        "--replicas",
        "2",
        "--batches",
        "4",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "replica_to_sampling" in proc.stdout
    assert (tmp_path / "grad_snr.png").stat().st_size > 5_000
    return pd.read_csv(tmp_path / "grad_snr.csv")


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_grad_snr_compares_noise_settings_over_replicas(tmp_path, framework):
    table = _grad_snr_settings(tmp_path, framework)
    assert table["setting"].tolist()[:1] == ["algo+impl"] and set(table["setting"]) == {
        "algo+impl",
        "control",
    }
    assert (table["replicas"] == 2).all() and (table["framework"] == framework).all()
    assert len(table) == 12  # 6 parameter tensors per setting
    control, free = table[table["setting"] == "control"], table[table["setting"] == "algo+impl"]
    assert (control["replica_std_l2"] == 0).all()  # same seeds, deterministic kernels
    assert (free["replica_std_l2"] > 0).all()  # other init and data order
    assert (table["impl_diff_l2"] == 0).all()  # CPU kernels are deterministic
    assert np.isfinite(table[["share_snr_below_1", "replica_to_sampling"]].to_numpy(float)).all()


@pytest.fixture(scope="module")
def tf_probe() -> dict:
    """What studies/tf_analysis_probe.py measured in a child process (one TF import)."""
    return run_probe(Path(__file__).parent / "tf_analysis_probe.py")


@pytest.mark.slow
def test_tf_reloaded_weights_get_their_batchnorm_statistics_back(tf_probe):
    trained, stale, recomputed = (
        tf_probe[k] for k in ("trained_loss", "stale_loss", "recomputed_loss")
    )
    assert abs(recomputed - trained) < 0.2 * trained < abs(stale - trained)


@pytest.mark.slow
def test_tf_gradients_repeat_with_the_dropout_seed_and_filters_are_the_last_axis(tf_probe):
    assert tf_probe["same_seed_equal"] and tf_probe["other_seed_differs"]
    assert tf_probe["sizes_match"]
    assert tf_probe["kernel_shapes"][0] == [64, 392] and tf_probe["filter_axis"] == -1


@pytest.mark.slow
def test_tf_landscape_centres_on_a_stored_tf_replica(tmp_path, db):
    common = ["--model", "mlp", "--workload-arg", "norm=batch", "--gpu", "cpu"]
    proc = run_cli(
        "variability",
        "--framework",
        "tf",
        *common,
        "--settings",
        "algo",
        "--replicas",
        "2",
        "--epochs",
        "1",
        "--db",
        str(db),
    )
    assert proc.returncode == 0, proc.stderr
    landscape = [*common, "--steps", "3", "--examples", "256", "--db", str(db)]
    proc = run_cli("analyze", "landscape", "--framework", "tf", *landscape, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "centre: algo replica 0" in proc.stdout
    surface = pd.read_csv(tmp_path / "landscape.csv")
    points = pd.read_csv(tmp_path / "landscape_points.csv")
    assert len(surface) == 9 and np.isfinite(surface["loss"]).all()
    assert points["label"].tolist() == ["algo r1"] and np.isfinite(points["loss"]).all()
    centre = surface[(surface["alpha"] == 0) & (surface["beta"] == 0)]["loss"].item()
    assert centre < np.log(10)  # a trained replica beats chance on 10 classes
    proc = run_cli("analyze", "landscape", *landscape, "--out", str(tmp_path / "torch"))
    assert proc.returncode == 2 and "no successful torch/mlp replicas" in proc.stderr


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
