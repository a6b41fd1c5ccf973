"""The study's metric conventions beside ours, checked against the study's own `run_ae.py`.

Our columns keep our definitions (churn = disagreement, accuracy std with ddof 1, L2 over
trainable weights, FNR = FN / (FN + TP)); the study's are added beside them (`agreement`,
`acc_std_pop`, `l2_all_weights_mean`, `fnr_study_*`). Each is checked twice on small
hand-made inputs: against the formula written out here, and, where ../shared holds the
study's code, against the study's own functions run on files laid out as its training scripts
write them (`log.csv`, `pred{epoch}.txt`, `ckpt{epoch}.h5`; a checkpoint is a stand-in holding
`model.weights` in layer order, so no TensorFlow is needed).
"""

from __future__ import annotations

import ast
import csv
import glob
import itertools
import os
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nnr_profile.reports.variability import (
    GROUP_COLUMNS,
    SUBGROUP_COLUMNS,
    VARIABILITY_COLUMNS,
    agreement,
    all_weights,
    churn,
    display_variability,
    pairwise_agreement,
    pairwise_disagreement,
    subgroup_rates,
    variability_table,
)

ROOT = Path(__file__).resolve().parents[2]
RUN_AE = (
    Path(
        os.environ.get(
            "NNR_STUDY_REFERENCE", ROOT.parent / "shared" / "reference" / "NeuralNetworkRandomness"
        )
    )
    / "run_ae.py"
)
STUDY_FUNCTIONS = (
    "get_standard_deviation_of_accuracy",
    "get_standard_deviation_of_fpr",
    "get_standard_deviation_of_fnr",
    "get_prediction_churn",
    "get_l2_norm",
)
SAVED_EPOCHS = (9, 49, 99, 149, 199)
"""Epochs (0-based) at which the study's scripts save `pred*.txt` / `ckpt*.h5` for 200 epochs."""

ACCURACY = [0.61, 0.64, 0.60, 0.66]
PREDICTIONS = {  # what each replica predicts on 6 test examples at the end of training
    0: [0, 1, 2, 2, 1, 0],
    1: [0, 1, 2, 1, 1, 0],
    2: [1, 1, 2, 2, 0, 0],
    3: [0, 2, 2, 2, 1, 1],
}
LABELS = [0, 1, 2, 2, 1, 0]


def _layer_weights(replica: int, epoch: int) -> list[np.ndarray]:
    """A small BatchNorm model's `model.weights` in Keras layer order: conv kernel and bias,
    BN gamma, beta, moving mean, moving variance, dense kernel (distinct per replica)."""
    rng = np.random.default_rng(100 * replica + epoch)
    shapes = [(3, 3, 1, 2), (2,), (2,), (2,), (2,), (2,), (2, 3)]
    return [rng.normal(size=shape).astype(np.float32) for shape in shapes]


TRAINABLE = (0, 1, 2, 3, 6)
NON_TRAINABLE = (4, 5)


def _ours(layers: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """As a replica stores them: trainable weights (sorted by name), then the BN statistics."""
    names = ["conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/mean", "bn/var", "dense/k"]
    trainable = sorted(TRAINABLE, key=lambda i: names[i])
    flat = [layers[i].reshape(-1) for i in trainable]
    stats = [layers[i].reshape(-1) for i in sorted(NON_TRAINABLE, key=lambda i: names[i])]
    return np.concatenate(flat), np.concatenate(stats)


def _replicas(accuracy: list[float]) -> pd.DataFrame:
    base = dict.fromkeys(GROUP_COLUMNS, "x")
    return pd.DataFrame(
        [
            {**base, "id": i, "setting": "algo", "status": "ok", "test_accuracy": a}
            for i, a in enumerate(accuracy)
        ]
    )


def _predictions(rows: dict[int, list[int]]) -> pd.DataFrame:
    records = [
        (replica, example, LABELS[example], pred)
        for replica, preds in rows.items()
        for example, pred in enumerate(preds)
    ]
    return pd.DataFrame(records, columns=["replica_id", "example", "label", "prediction"])


def _table_row() -> pd.Series:
    final = {i: _ours(_layer_weights(i, SAVED_EPOCHS[-1])) for i in PREDICTIONS}
    weights = {i: trainable for i, (trainable, _) in final.items()}
    stats = {i: statistics for i, (_, statistics) in final.items()}
    table = variability_table(_replicas(ACCURACY), _predictions(PREDICTIONS), weights, stats)
    return table.iloc[0]


# -- the study's formulas, written out (run_ae.py) -------------------------------------------


def _study_agreement(predictions: list[np.ndarray]) -> float:
    """run_ae.get_prediction_churn: mean over pairs i < j of sum(a == b) / a.size."""
    pairs = [np.sum(a == b) / a.size for a, b in itertools.combinations(predictions, 2)]
    return float(np.mean(pairs))


def _study_l2(layer_weights: list[list[np.ndarray]]) -> float:
    """run_ae.get_l2_norm: mean pairwise norm of every `model.weights` value, flattened."""
    flat = [np.concatenate([w.reshape(-1) for w in layers]) for layers in layer_weights]
    return float(np.mean([np.linalg.norm(a - b) for a, b in itertools.combinations(flat, 2)]))


def test_agreement_is_the_study_churn_and_our_churn_its_complement():
    preds = _predictions(PREDICTIONS)
    study = _study_agreement([np.array(p) for p in PREDICTIONS.values()])
    assert agreement(preds) == pytest.approx(study, abs=1e-15)
    assert churn(preds) == pytest.approx(1 - study, abs=1e-15)
    assert np.allclose(pairwise_agreement(preds), 1 - pairwise_disagreement(preds))
    assert np.isnan(agreement(_predictions({0: [1, 2]})))


def test_variability_table_gives_both_conventions_side_by_side():
    row = _table_row()
    final = [_layer_weights(i, SAVED_EPOCHS[-1]) for i in PREDICTIONS]
    assert row["acc_std_pop"] == pytest.approx(np.std(ACCURACY), abs=1e-15)
    assert row["acc_std"] == pytest.approx(np.std(ACCURACY, ddof=1), abs=1e-15)
    assert row["acc_std"] > row["acc_std_pop"]
    assert row["agreement"] == pytest.approx(1 - row["churn"], abs=1e-15)
    assert row["l2_all_weights_mean"] == pytest.approx(_study_l2(final), rel=1e-6)
    trainable_only = [[layers[i].astype(np.float64) for i in TRAINABLE] for layers in final]
    assert row["l2_mean"] == pytest.approx(_study_l2(trainable_only), rel=1e-12)  # float64
    assert row["l2_all_weights_mean"] > row["l2_mean"]
    shown = display_variability(pd.DataFrame([row])).iloc[0]
    assert shown["agreement (%)"] == round(100 * row["agreement"], 2)
    assert shown["acc std pop (pp)"] == round(100 * row["acc_std_pop"], 3)
    assert shown["L2 all weights mean"] == round(row["l2_all_weights_mean"], 4)


def test_our_existing_columns_are_unchanged():
    row = _table_row()
    preds = _predictions(PREDICTIONS)
    matrix = np.array(list(PREDICTIONS.values()))
    disagreement = [np.mean(a != b) for a, b in itertools.combinations(matrix, 2)]
    assert row["churn"] == pytest.approx(np.mean(disagreement), abs=1e-15)
    assert row["churn_std"] == pytest.approx(np.std(disagreement, ddof=1), abs=1e-15)
    assert row["acc_mean"] == pytest.approx(np.mean(ACCURACY), abs=1e-15)
    assert row["acc_min"] == min(ACCURACY) and row["acc_max"] == max(ACCURACY)
    assert churn(preds) == row["churn"]
    assert list(VARIABILITY_COLUMNS[:4]) == ["setting", "replicas", "acc_mean", "acc_std"]


def test_without_stored_statistics_the_all_weights_distance_is_unknown():
    weights = {i: np.full(3, i, np.float32) for i in range(3)}
    row = variability_table(_replicas([0.5, 0.6, 0.7]), _predictions({}), weights).iloc[0]
    assert np.isnan(row["l2_all_weights_mean"]) and row["l2_mean"] > 0
    empty = {i: np.zeros(0, np.float32) for i in range(3)}
    row = variability_table(_replicas([0.5, 0.6, 0.7]), _predictions({}), weights, empty).iloc[0]
    assert row["l2_all_weights_mean"] == row["l2_mean"]  # no BatchNorm: the same distance
    assert set(all_weights(weights, {0: np.ones(2, np.float32)})) == {0}


def _binary_predictions() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three replicas on 8 binary examples, one subgroup holding them all."""
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    preds = {1: [1, 0, 1, 0, 1, 0, 0, 0], 2: [1, 1, 1, 1, 1, 0, 0, 0], 3: [0, 0, 1, 0, 0, 0, 0, 0]}
    records = [(r, e, labels[e], p) for r, row in preds.items() for e, p in enumerate(row)]
    frame = pd.DataFrame(records, columns=["replica_id", "example", "label", "prediction"])
    attributes = pd.DataFrame({"example": range(8), "attribute": "all", "value": True})
    return frame, attributes


def _confusion(frame: pd.DataFrame) -> dict[int, dict[str, int]]:
    """Per replica: the counts Keras's TruePositives, ... metrics log as val_* columns."""
    out = {}
    for replica, group in frame.groupby("replica_id"):
        label, pred = group["label"].astype(bool), group["prediction"].astype(bool)
        out[replica] = {
            "tp": int((label & pred).sum()),
            "tn": int((~label & ~pred).sum()),
            "fp": int((~label & pred).sum()),
            "fn": int((label & ~pred).sum()),
        }
    return out


def test_subgroup_rates_give_the_study_fnr_beside_ours():
    frame, attributes = _binary_predictions()
    row = subgroup_rates(frame, attributes).iloc[0]
    counts = list(_confusion(frame).values())
    fpr = [c["fp"] / (c["fp"] + c["tn"]) for c in counts]
    fnr = [c["fn"] / (c["fn"] + c["tp"]) for c in counts]
    fnr_study = [c["fn"] / (c["fp"] + c["tn"]) for c in counts]  # run_ae: FN / (FP + TN)
    assert row["fnr_mean"] == pytest.approx(np.mean(fnr)) and row["fpr_mean"] == pytest.approx(
        np.mean(fpr)
    )
    assert row["fnr_std"] == pytest.approx(np.std(fnr, ddof=1))
    assert row["fpr_std"] == pytest.approx(np.std(fpr, ddof=1))
    assert row["fpr_std_pop"] == pytest.approx(np.std(fpr))
    assert row["fnr_std_pop"] == pytest.approx(np.std(fnr))
    assert row["fnr_study_mean"] == pytest.approx(np.mean(fnr_study))
    assert row["fnr_study_std_pop"] == pytest.approx(np.std(fnr_study))
    assert row["fnr_study_mean"] != pytest.approx(row["fnr_mean"])
    assert {"fpr_std_pop", "fnr_std_pop", "fnr_study_mean", "fnr_study_std_pop"} <= set(
        SUBGROUP_COLUMNS
    )


# -- the study's own functions, run on files laid out as its scripts write them -------------


def _study_functions() -> dict[str, Any]:
    """run_ae.py's metric functions, taken out of the script (its argparse and training code
    never run), with a stand-in `tf` whose `load_model` reads our stand-in checkpoints."""
    if not RUN_AE.is_file():
        pytest.skip(f"the study's code is not at {RUN_AE} (../shared is absent)")
    tree = ast.parse(RUN_AE.read_text(encoding="utf-8"))
    chosen = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in STUDY_FUNCTIONS]
    assert sorted(n.name for n in chosen) == sorted(STUDY_FUNCTIONS)

    def load_model(path: str, compile: Any = None) -> types.SimpleNamespace:
        with np.load(path) as stored:
            return types.SimpleNamespace(weights=[stored[f"w{i}"] for i in range(len(stored))])

    tf = types.SimpleNamespace(keras=types.SimpleNamespace(models=types.SimpleNamespace()))
    tf.keras.models.load_model = load_model
    namespace: dict[str, Any] = {"os": os, "csv": csv, "glob": glob, "np": np, "tf": tf}
    namespace["ModelConfig"] = object
    exec(compile(ast.Module(body=chosen, type_ignores=[]), str(RUN_AE), "exec"), namespace)
    return namespace


def _at_99(replica: int) -> list[int]:
    """What a replica predicted after epoch 100 (its final predictions, rotated)."""
    return np.roll(PREDICTIONS[replica], replica + 1).tolist()


def _write_run(folder: Path, replica: int, log_rows: list[dict[str, float]]) -> None:
    """One replica's folder as the study's scripts leave it after 200 epochs."""
    folder.mkdir(parents=True)
    with open(folder / "log.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", *log_rows[0]])
        writer.writeheader()
        for epoch, values in enumerate(log_rows):
            writer.writerow({"epoch": epoch, **values})
    for epoch in SAVED_EPOCHS:
        preds = PREDICTIONS[replica] if epoch == SAVED_EPOCHS[-1] else PREDICTIONS[0]
        if epoch == 99:
            preds = _at_99(replica)
        (folder / f"pred{epoch}.txt").write_text("\n".join(map(str, preds)))
        layers = _layer_weights(replica, epoch)
        with open(folder / f"ckpt{epoch}.h5", "wb") as file:
            np.savez(file, **{f"w{i}": w for i, w in enumerate(layers)})


@pytest.fixture
def study_runs(tmp_path: Path) -> types.SimpleNamespace:
    """Four replicas' folders and the stand-in config the study's functions read them with."""
    prefix = str(tmp_path / "logs_smallcnn_cifar10_algo_")
    for replica, final in enumerate(ACCURACY):
        rows = [{"val_accuracy": 0.1}, {"val_accuracy": 0.3}, {"val_accuracy": final}]
        _write_run(Path(prefix + str(replica)), replica, rows)
    return types.SimpleNamespace(get_ckpt_dir_prefix=lambda: prefix, num_models=len(ACCURACY))


def test_the_study_functions_equal_our_study_columns(study_runs):
    study = _study_functions()
    row = _table_row()
    assert row["acc_std_pop"] == pytest.approx(
        study["get_standard_deviation_of_accuracy"](study_runs), abs=1e-15
    )
    # the study reads the predictions and weights of epoch 100 (index 99, see below)
    at_99 = {i: _at_99(i) for i in PREDICTIONS}
    assert agreement(_predictions(at_99)) == pytest.approx(
        study["get_prediction_churn"](study_runs), abs=1e-15
    )
    stored = {i: _ours(_layer_weights(i, 99)) for i in PREDICTIONS}
    table = variability_table(
        _replicas(ACCURACY),
        _predictions(at_99),
        {i: w for i, (w, _) in stored.items()},
        {i: s for i, (_, s) in stored.items()},
    )
    assert table.iloc[0]["l2_all_weights_mean"] == pytest.approx(
        study["get_l2_norm"](study_runs), rel=1e-6
    )


def test_the_study_picks_epoch_100_of_200_by_sorting_file_names_as_text(study_runs):
    study = _study_functions()
    names = sorted(f"ckpt{epoch}.h5" for epoch in SAVED_EPOCHS)
    assert names[-1] == "ckpt99.h5"  # not ckpt199.h5: '9' sorts after '1'
    final = _table_row()
    assert study["get_prediction_churn"](study_runs) != pytest.approx(final["agreement"])
    assert study["get_l2_norm"](study_runs) != pytest.approx(final["l2_all_weights_mean"])


def test_the_study_fnr_divides_by_negatives(tmp_path):
    study = _study_functions()
    frame, attributes = _binary_predictions()
    prefix = str(tmp_path / "logs_resnet18_celeba_algo_")
    counts = _confusion(frame)
    for index, c in enumerate(counts.values()):
        final = {f"val_{name}": float(c[key]) for key, name in _KERAS_NAMES.items()}
        folder = Path(prefix + str(index))
        folder.mkdir(parents=True)
        with open(folder / "log.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=["epoch", *final])
            writer.writeheader()
            writer.writerow({"epoch": 0, **dict.fromkeys(final, 1.0)})
            writer.writerow({"epoch": 1, **final})
    config = types.SimpleNamespace(get_ckpt_dir_prefix=lambda: prefix, num_models=len(counts))
    row = subgroup_rates(frame, attributes).iloc[0]
    assert row["fnr_study_std_pop"] == pytest.approx(
        study["get_standard_deviation_of_fnr"](config), abs=1e-15
    )
    assert row["fpr_std_pop"] == pytest.approx(
        study["get_standard_deviation_of_fpr"](config), abs=1e-15
    )
    assert row["fnr_std_pop"] != pytest.approx(row["fnr_study_std_pop"])


_KERAS_NAMES = {
    "tp": "true_positives",
    "tn": "true_negatives",
    "fp": "false_positives",
    "fn": "false_negatives",
}


def _multi_label_outputs() -> dict[int, Any]:
    """Three replicas' 0/1 outputs on 6 test examples x 3 attributes, and the labels."""
    from nnr_profile.store.database import ReplicaOutputs

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, (6, 3), dtype=np.uint8)
    names = ("Bald", "Male", "Young")
    return {
        i: ReplicaOutputs(names, rng.integers(0, 2, (6, 3), dtype=np.uint8), labels)
        for i in range(3)
    }


def test_the_pooled_celeba_rates_are_the_study_functions_on_keras_counts(tmp_path):
    from nnr_profile.reports.multilabel import output_rates

    study = _study_functions()
    outputs = _multi_label_outputs()
    prefix = str(tmp_path / "logs_resnet18_celeba_algo_")
    for index, o in outputs.items():
        pred, label = o.predictions.astype(bool), o.labels.astype(bool)
        # Keras's TruePositives, ... at threshold 0.5 count every (example, output) cell
        counts = {
            "tp": pred & label,
            "tn": ~pred & ~label,
            "fp": pred & ~label,
            "fn": ~pred & label,
        }
        final = {f"val_{_KERAS_NAMES[k]}": float(v.sum()) for k, v in counts.items()}
        folder = Path(prefix + str(index))
        folder.mkdir(parents=True)
        with open(folder / "log.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=["epoch", *final])
            writer.writeheader()
            writer.writerow({"epoch": 0, **final})
    config = types.SimpleNamespace(get_ckpt_dir_prefix=lambda: prefix, num_models=len(outputs))
    pooled = output_rates(outputs).iloc[0]
    assert pooled["output"] == "all"
    assert pooled["fpr_std_pop"] == pytest.approx(
        study["get_standard_deviation_of_fpr"](config), abs=1e-15
    )
    assert pooled["fnr_study_std_pop"] == pytest.approx(
        study["get_standard_deviation_of_fnr"](config), abs=1e-15
    )
    # the study's churn formula, sum(a == b) / a.size, on the 2-D matrices is our agreement
    matrices = [o.predictions for o in outputs.values()]
    assert pooled["agreement"] == pytest.approx(_study_agreement(matrices), abs=1e-15)
