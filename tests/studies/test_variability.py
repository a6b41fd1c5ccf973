"""Variability: metrics on hand-made predictions, planning, and the real CLI on digits."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from nnr_profile.core.errors import UsageError
from nnr_profile.reports.bootstrap import bootstrap_mean_ci, bootstrap_pairwise_ci
from nnr_profile.reports.variability import (
    GROUP_COLUMNS,
    churn,
    display_variability,
    pairwise_disagreement,
    pairwise_l2,
    per_class_std,
    subgroup_rates,
    variability_table,
)
from nnr_profile.studies.variability import (
    VariabilitySpec,
    parse_settings,
    plan_variability,
)


def _predictions(rows):
    """rows: {replica_id: [predictions]}, labels 0,1,0,1,..."""
    records = []
    for replica_id, preds in rows.items():
        for example, pred in enumerate(preds):
            records.append((replica_id, example, example % 2, pred))
    return pd.DataFrame(records, columns=["replica_id", "example", "label", "prediction"])


def test_churn_is_mean_pairwise_disagreement():
    preds = _predictions({1: [0, 1, 0, 1], 2: [0, 1, 1, 1], 3: [1, 0, 1, 1]})
    # pairs: (1,2) 1/4, (1,3) 3/4, (2,3) 2/4
    assert pairwise_disagreement(preds).tolist() == [0.25, 0.75, 0.5]
    assert churn(preds) == pytest.approx(0.5)


def test_identical_replicas_have_zero_churn_and_one_replica_nan():
    assert churn(_predictions({1: [0, 1, 1], 2: [0, 1, 1]})) == 0.0
    assert np.isnan(churn(_predictions({1: [0, 1, 1]})))


def test_pairwise_l2():
    weights = {1: np.array([0, 0], np.float32), 2: np.array([3, 4], np.float32)}
    assert pairwise_l2(weights).tolist() == [5.0]


def test_per_class_std_names_the_class_that_moves():
    preds = _predictions({1: [0, 1, 0, 1], 2: [0, 0, 0, 0]})
    table = per_class_std(preds)
    assert table.iloc[0]["label"] == 1
    assert table.iloc[0]["acc_std"] == pytest.approx(np.std([1.0, 0.0], ddof=1))
    assert table.set_index("label").loc[0, "acc_std"] == 0


def test_subgroup_rates():
    preds = pd.DataFrame(
        {
            "replica_id": [1, 1, 1, 1, 2, 2, 2, 2],
            "example": [0, 1, 2, 3] * 2,
            "label": [0, 1, 0, 1] * 2,
            "prediction": [1, 1, 0, 0, 0, 1, 0, 1],
        }
    )
    attrs = pd.DataFrame(
        {"example": [0, 1, 2, 3], "attribute": ["young"] * 4, "value": [True, True, False, False]}
    )
    table = subgroup_rates(preds, attrs).set_index("value")
    # young=True: examples 0 (neg) and 1 (pos). replica 1: FP on 0 -> FPR 1; replica 2: FPR 0
    assert table.loc[True, "fpr_mean"] == pytest.approx(0.5)
    assert table.loc[True, "fnr_mean"] == 0.0
    # young=False: example 3 (pos) missed by replica 1 -> FNR 1, 0
    assert table.loc[False, "fnr_mean"] == pytest.approx(0.5)
    assert table.loc[False, "acc_mean"] == pytest.approx(0.75)


def test_variability_table_columns_and_failed_replicas():
    base = dict.fromkeys(GROUP_COLUMNS, "x")
    replicas = pd.DataFrame(
        [
            {**base, "id": 1, "setting": "control", "status": "ok", "test_accuracy": 0.5},
            {**base, "id": 2, "setting": "control", "status": "ok", "test_accuracy": 0.5},
            {**base, "id": 3, "setting": "control", "status": "failed", "test_accuracy": None},
        ]
    )
    preds = _predictions({1: [0, 0], 2: [0, 0]})
    weights = {1: np.ones(3, np.float32), 2: np.ones(3, np.float32)}
    row = variability_table(replicas, preds, weights).iloc[0]
    assert row["replicas"] == 2 and row["n_failed"] == 1
    assert row["acc_std"] == 0 and row["churn"] == 0 and row["l2_mean"] == 0


def test_bootstrap_mean_interval_covers_the_true_mean_at_about_its_level():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        low, high = bootstrap_mean_ci(rng.normal(0.9, 0.01, size=10), resamples=500)
        hits += low <= 0.9 <= high
    assert 0.85 <= hits / 200 <= 0.99  # percentile bootstrap at n=10 covers a little under 95 %
    assert bootstrap_mean_ci(np.array([0.5, 0.5, 0.5])) == (0.5, 0.5)
    assert all(np.isnan(bootstrap_mean_ci(np.array([0.5]))))


def test_bootstrap_pairwise_interval_never_pairs_a_replica_with_itself():
    ones = 1.0 - np.eye(4)  # every pair of distinct replicas differs by 1
    assert bootstrap_pairwise_ci(ones) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_pairwise_ci(1.0 - np.eye(2))))  # one pair: no interval
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 0.3, size=(6, 6))
    matrix = np.triu(values, 1) + np.triu(values, 1).T
    low, high = bootstrap_pairwise_ci(matrix)
    pairs = matrix[np.triu_indices(6, 1)]
    assert pairs.min() <= low < pairs.mean() < high <= pairs.max()


def test_variability_table_bounds_accuracy_churn_and_distance_over_replicas():
    base = dict.fromkeys(GROUP_COLUMNS, "x")
    accuracy = [0.5, 0.75, 1.0, 0.75]
    replicas = pd.DataFrame(
        [
            {**base, "id": i, "setting": "algo", "status": "ok", "test_accuracy": a}
            for i, a in enumerate(accuracy)
        ]
    )
    preds = _predictions({0: [0, 0, 0, 1], 1: [0, 1, 0, 0], 2: [0, 1, 0, 1], 3: [1, 1, 0, 1]})
    weights = {i: np.full(3, i, np.float32) for i in range(4)}
    row = variability_table(replicas, preds, weights).iloc[0]
    assert row["acc_ci_low"] < row["acc_mean"] < row["acc_ci_high"]
    assert row["acc_ci_low"] >= 0.5 and row["acc_ci_high"] <= 1.0
    assert row["churn_ci_low"] <= row["churn"] <= row["churn_ci_high"]
    assert row["l2_ci_low"] <= row["l2_mean"] <= row["l2_ci_high"]
    shown = display_variability(variability_table(replicas, preds, weights)).iloc[0]
    assert (
        shown["acc 95% CI (%)"]
        == f"[{100 * row['acc_ci_low']:.2f}, {100 * row['acc_ci_high']:.2f}]"
    )


def test_settings_and_seeds():
    with pytest.raises(UsageError, match="unknown noise setting"):
        parse_settings("algo,noise")
    spec = VariabilitySpec("mlp", "digits", parse_settings("algo+impl,impl,control"), replicas=2)
    cells = {(c.setting, c.replica): c for c in plan_variability(spec)}
    assert cells[("algo+impl", 0)].init_seed != cells[("algo+impl", 1)].init_seed
    assert cells[("algo+impl", 0)].data_seed != cells[("algo+impl", 1)].data_seed
    assert cells[("impl", 0)].init_seed == cells[("impl", 1)].init_seed
    assert cells[("impl", 0)].mode.name == "default"
    assert cells[("control", 1)].mode.name == "deterministic"
    keys = [c.replica_key for c in cells.values()]
    assert len(set(keys)) == len(keys)


@pytest.mark.slow
def test_variability_on_digits_control_is_exactly_repeatable(db, tmp_path):
    args = [
        "variability",
        "--model",
        "mlp",
        "--dataset",
        "digits",
        "--replicas",
        "3",
        "--settings",
        "algo+impl,control",
        "--epochs",
        "1",
        "--gpu",
        "cpu",
        "--jobs",
        "2",
        "--db",
        str(db),
    ]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "6 replica(s) run, 0 already in the store, 0 failed" in proc.stdout
    proc = run_cli(*args)
    assert "0 replica(s) run, 6 already in the store" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "variability.csv").set_index("setting")
    assert {"replicas", "acc_mean", "acc_std", "churn", "l2_mean"} <= set(table.columns)
    control, free = table.loc["control"], table.loc["algo+impl"]
    assert control["replicas"] == 3 and free["replicas"] == 3
    assert control["acc_std"] == 0 and control["churn"] == 0 and control["l2_mean"] == 0
    assert free["churn"] > 0 and free["l2_mean"] > 0
    assert control["acc_ci_low"] == control["acc_ci_high"] == control["acc_mean"]
    assert control["churn_ci_low"] == control["churn_ci_high"] == 0
    assert free["churn_ci_low"] <= free["churn"] <= free["churn_ci_high"]
    assert free["l2_ci_low"] <= free["l2_mean"] <= free["l2_ci_high"]
    assert "acc 95% CI (%)" in proc.stdout
    per_class = pd.read_csv(out / "per_class.csv")
    assert set(per_class["label"]) == set(range(10))
    for name in ("variability_accuracy.png", "per_class_std.png", "per_class_std.pdf"):
        assert (out / name).stat().st_size > 5_000


def test_missing_dataset_is_one_clear_line(tmp_path):
    proc = run_cli(
        "variability",
        "--model",
        "smallcnn",
        "--dataset",
        "cifar10",
        "--data-dir",
        str(tmp_path / "nothing"),
        "--gpu",
        "cpu",
        "--db",
        str(tmp_path / "x.db"),
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cifar-10-batches-py" in proc.stderr and "nothing is downloaded" in proc.stderr


@pytest.mark.slow
def test_variability_on_celeba_writes_subgroup_rates(celeba_dir, db, tmp_path):
    proc = run_cli(
        "variability",
        "--model",
        "mlp",
        "--dataset",
        "celeba",
        "--data-dir",
        str(celeba_dir),
        "--replicas",
        "2",
        "--settings",
        "algo+impl,control",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--gpu",
        "cpu",
        "--jobs",
        "2",
        "--db",
        str(db),
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 replica(s) run, 0 already in the store, 0 failed" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "subgroups.csv")
    assert {"attribute", "value", "fpr_mean", "fpr_std", "fnr_mean", "fnr_std"} <= set(table)
    assert set(table["dataset"]) == {"celeba:Blond_Hair"}
    assert table["attribute"].nunique() == 40 and len(table) == 2 * 40 * 2  # settings x groups
    control = table[table["setting"] == "control"]
    assert (control["acc_std"] == 0).all() and (control["fpr_std"].fillna(0) == 0).all()
    rates = table[["acc_mean", "fpr_mean", "fnr_mean"]].stack().dropna()  # NaN: no negatives
    assert rates.between(0, 1).all()
    assert (out / "subgroup_rates.png").stat().st_size > 5_000
    variability = pd.read_csv(out / "variability.csv").set_index("setting")
    assert variability.loc["control", "churn"] == 0


@pytest.fixture
def small_celeba(tmp_path):
    """A CelebA of 4 training and 3 test faces: the study's 128x128 ResNet-18 is slow on a CPU."""
    from conftest import write_celeba

    return write_celeba(tmp_path / "small", n_train=4, n_test=3)


def _stored_outputs(db):
    from nnr_profile.store.database import Store

    with Store(db) as store:
        replicas = store.replicas()
        return replicas, store.replica_outputs(replicas["id"])


@pytest.mark.slow
def test_the_study_celeba_preset_trains_all_40_attributes_and_reports_each(
    small_celeba, db, tmp_path
):
    proc = run_cli(
        "variability", "--preset", "study-celeba", "--framework", "torch",
        "--data-dir", str(small_celeba), "--replicas", "2", "--settings", "algo,control",
        "--epochs", "1", "--batch-size", "4", "--gpu", "cpu", "--jobs", "2", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "4 replica(s) run, 0 already in the store, 0 failed" in proc.stdout
    replicas, outputs = _stored_outputs(db)
    assert set(replicas["workload"]) == {"resnet18_celeba"}
    assert set(replicas["dataset"]) == {"celeba:all"} and set(replicas["learning_rate"]) == {1e-3}
    assert set(replicas["preset"]) == {"study-celeba"} and len(outputs) == 4
    for row in replicas.itertuples():
        stored = outputs[row.id]
        assert stored.predictions.shape == (3, 40) and len(stored.names) == 40
        assert row.test_accuracy == pytest.approx(np.mean(stored.predictions == stored.labels))
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "rows with preset study-celeba" in proc.stdout
    table = pd.read_csv(out / "outputs.csv")
    assert len(table) == 2 * 41 and table["output"].iloc[0] == "all"
    control = table[table["setting"] == "control"]
    assert (control["churn"] == 0).all() and (control["acc_std"] == 0).all()
    variability = pd.read_csv(out / "variability.csv").set_index("setting")
    pooled = table[table["output"] == "all"].set_index("setting")
    assert variability.loc["algo", "churn"] == pytest.approx(pooled.loc["algo", "churn"])
    assert variability.loc["control", "churn"] == 0
    assert not (out / "subgroups.csv").exists()  # the targets are the attributes themselves
    assert "Outputs" in (out / "report.html").read_text()
    assert (out / "output_rates.png").stat().st_size > 5_000


@pytest.mark.slow
def test_the_study_celeba_preset_trains_in_tensorflow_by_default(small_celeba, db):
    proc = run_cli(
        "variability", "--preset", "study-celeba", "--data-dir", str(small_celeba),
        "--replicas", "1", "--settings", "control", "--epochs", "1", "--batch-size", "4",
        "--gpu", "cpu", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    replicas, outputs = _stored_outputs(db)
    (row,) = replicas.itertuples()
    assert row.framework == "tf" and row.status == "ok"
    stored = outputs[row.id]
    assert set(np.unique(stored.predictions)) <= {0, 1}
    assert row.test_accuracy == pytest.approx(np.mean(stored.predictions == stored.labels))


def test_a_model_that_cannot_train_the_40_attributes_is_refused_before_training(small_celeba, db):
    proc = run_cli(
        "variability", "--model", "resnet18_cifar", "--dataset", "celeba:all",
        "--data-dir", str(small_celeba), "--replicas", "1", "--gpu", "cpu", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "celeba:all has 40 0/1 targets" in proc.stderr and not db.exists()
