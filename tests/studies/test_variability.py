"""Variability: metrics on hand-made predictions, planning, and the real CLI on digits."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from nnr_profile.core.errors import UsageError
from nnr_profile.reports.variability import (
    GROUP_COLUMNS,
    churn,
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
