"""Variability of a multi-label task: per-output and pooled rates, cell churn, and the store.

Hand-made 0/1 matrices with known answers; the formulas are written out here. The study's own
functions are run against the pooled row in test_variability_study.py.
"""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from nnr_profile.core.modes import MODES
from nnr_profile.reports.multilabel import OUTPUT_COLUMNS, output_rates, output_table
from nnr_profile.reports.variability import GROUP_COLUMNS, variability_table
from nnr_profile.store.database import ReplicaOutputs, Store
from nnr_profile.studies.replica import ReplicaResult, ReplicaSpec

NAMES = ("Bald", "Smiling")
LABELS = np.array([[1, 0], [0, 0], [1, 1], [0, 1]], dtype=np.uint8)
PREDICTIONS = {
    10: np.array([[1, 0], [0, 0], [1, 1], [0, 1]], dtype=np.uint8),  # all right
    11: np.array([[1, 1], [0, 0], [0, 1], [0, 1]], dtype=np.uint8),  # one FP, one FN
    12: np.array([[0, 0], [1, 0], [1, 1], [0, 0]], dtype=np.uint8),  # one FP, two FN
}


def _outputs() -> dict[int, ReplicaOutputs]:
    return {i: ReplicaOutputs(NAMES, p, LABELS) for i, p in PREDICTIONS.items()}


def _replicas(setting: str = "algo") -> pd.DataFrame:
    base = dict.fromkeys(GROUP_COLUMNS, "x")
    return pd.DataFrame(
        [
            {**base, "id": i, "setting": setting, "status": "ok", "test_accuracy": 0.5}
            for i in PREDICTIONS
        ]
    )


def test_the_pooled_row_counts_every_cell_and_each_output_its_own():
    table = output_rates(_outputs()).set_index("output")
    assert list(table.index) == ["all", "Bald", "Smiling"]
    pooled = table.loc["all"]
    acc = [np.mean(p == LABELS) for p in PREDICTIONS.values()]  # binary accuracy
    assert pooled["acc_mean"] == pytest.approx(np.mean(acc))
    assert pooled["acc_std"] == pytest.approx(np.std(acc, ddof=1))
    assert pooled["acc_std_pop"] == pytest.approx(np.std(acc))
    negatives, positives = (LABELS == 0).sum(), (LABELS == 1).sum()
    fp = [((p == 1) & (LABELS == 0)).sum() for p in PREDICTIONS.values()]
    fn = [((p == 0) & (LABELS == 1)).sum() for p in PREDICTIONS.values()]
    assert fp == [0, 1, 1] and fn == [0, 1, 2]
    assert pooled["fpr_mean"] == pytest.approx(np.mean(np.array(fp) / negatives))
    assert pooled["fnr_mean"] == pytest.approx(np.mean(np.array(fn) / positives))
    assert pooled["fnr_std_pop"] == pytest.approx(np.std(np.array(fn) / positives))
    assert pooled["fnr_study_mean"] == pytest.approx(np.mean(np.array(fn) / negatives))
    pairs = [np.mean(a != b) for a, b in itertools.combinations(PREDICTIONS.values(), 2)]
    assert pooled["churn"] == pytest.approx(np.mean(pairs))
    assert pooled["agreement"] == pytest.approx(1 - np.mean(pairs))
    assert pooled["n_examples"] == 4 and pooled["n_positive"] == positives
    bald = table.loc["Bald"]
    bald_acc = [np.mean(p[:, 0] == LABELS[:, 0]) for p in PREDICTIONS.values()]
    assert bald["acc_mean"] == pytest.approx(np.mean(bald_acc))
    bald_pairs = [
        np.mean(a[:, 0] != b[:, 0]) for a, b in itertools.combinations(PREDICTIONS.values(), 2)
    ]
    assert bald["churn"] == pytest.approx(np.mean(bald_pairs))
    assert bald["n_positive"] == 2


def test_a_rate_without_its_denominator_is_unknown_not_zero():
    labels = np.ones((3, 1), dtype=np.uint8)  # no negatives: no false-positive rate
    found = {0: [[1], [0], [0]], 1: [[0], [0], [0]]}  # one positive found, then none
    outputs = {
        i: ReplicaOutputs(("Young",), np.array(p, dtype=np.uint8), labels) for i, p in found.items()
    }
    row = output_rates(outputs).iloc[1]
    assert np.isnan(row["fpr_mean"]) and np.isnan(row["fpr_std_pop"])
    assert row["fnr_mean"] == pytest.approx((2 / 3 + 1) / 2)


def test_the_variability_row_of_a_multi_label_group_takes_churn_over_cells():
    row = variability_table(_replicas(), pd.DataFrame(columns=["replica_id"]), {}, {}, _outputs())
    pairs = [np.mean(a != b) for a, b in itertools.combinations(PREDICTIONS.values(), 2)]
    assert row.iloc[0]["churn"] == pytest.approx(np.mean(pairs))
    assert row.iloc[0]["agreement"] == pytest.approx(1 - np.mean(pairs))
    table = output_table(_replicas(), _outputs())
    assert list(table.columns) == OUTPUT_COLUMNS and len(table) == 3
    assert set(table["setting"]) == {"algo"}


def test_groups_without_every_replicas_outputs_give_no_rows():
    outputs = _outputs()
    del outputs[12]
    assert output_table(_replicas(), outputs).empty
    assert output_table(_replicas(), {}).empty
    assert list(output_table(_replicas().iloc[:0], {}).columns) == OUTPUT_COLUMNS


def _result(replica: int, predictions: np.ndarray | None) -> ReplicaResult:
    spec = ReplicaSpec(
        framework="torch",
        workload="resnet18_celeba",
        dataset="celeba:all",
        setting="algo",
        replica=replica,
        init_seed=replica,
        data_seed=100 + replica,
        mode=MODES["deterministic"],
    )
    return ReplicaResult(
        spec,
        "ok",
        test_accuracy=0.5,
        weights=np.zeros(3, np.float32),
        non_trainable_weights=np.zeros(0, np.float32),
        output_predictions=predictions,
        output_labels=None if predictions is None else LABELS,
        output_names=list(NAMES) if predictions is not None else [],
    )


def test_the_store_keeps_a_replicas_output_matrices(tmp_path):
    with Store(tmp_path / "nnr.db") as store:
        store.record_replica(_result(0, PREDICTIONS[11]))
        store.record_replica(_result(1, None))
        ids = store.replicas()["id"].tolist()
        outputs = store.replica_outputs(ids)
        assert store.predictions().empty
    assert list(outputs) == [ids[0]]
    stored = outputs[ids[0]]
    assert stored.names == NAMES
    assert np.array_equal(stored.predictions, PREDICTIONS[11])
    assert np.array_equal(stored.labels, LABELS)


@pytest.mark.parametrize(
    ("names", "predictions", "labels"),
    [
        (None, b"\x00" * 4, b"\x00" * 4),
        ("not json", b"\x00" * 4, b"\x00" * 4),
        (json.dumps([]), b"", b""),
        (json.dumps(["a", 1]), b"\x00" * 4, b"\x00" * 4),
        (json.dumps(["a", "b"]), b"\x00" * 3, b"\x00" * 3),  # not a whole row
        (json.dumps(["a", "b"]), b"\x00" * 4, b"\x00" * 2),  # labels of another shape
        (json.dumps(["a"]), "text", b"\x00"),
    ],
)
def test_damaged_output_columns_are_left_out(names, predictions, labels):
    assert ReplicaOutputs.read(names, predictions, labels) is None
