"""Variability metrics: how much replicas trained under one noise setting differ.

Pure functions, DataFrames in and out, no framework imports. Accuracies, churn and rates are
fractions in [0, 1] (not percent); L2 distances are in the weights' own units. Each `*_ci_low`
/ `*_ci_high` pair is a 95 % percentile-bootstrap interval over replicas (`bootstrap`).

Churn here is **disagreement**: the mean, over all pairs of replicas, of the fraction of test
examples on which the two replicas predict different classes. (The study's code computed the
complementary *agreement* under the name churn; churn = 1 - agreement.)

Where the study's code ("Randomness in Neural Network Training", `run_ae.py`) defines a number
differently, its definition is given beside ours under a name that says what it is:
`agreement` (its "churn"), `acc_std_pop` (population std, ddof 0; ours `acc_std` is ddof 1),
`l2_all_weights_mean` (L2 over trainable and non-trainable weights, BatchNorm moving statistics
included; ours `l2_mean` is trainable weights only), and in the subgroup table the population
stds and `fnr_study_*` (its FN / (FP + TN), a bug). docs/metrics.md has the full comparison.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import squareform

from nnr_profile.reports.bootstrap import bootstrap_mean_ci, bootstrap_pairwise_ci

GROUP_COLUMNS = [
    "framework",
    "workload",
    "workload_args",
    "dataset",
    "epochs",
    "batch_size",
    "learning_rate",
    "gpu_arch",
    "gpu_name",
]
VARIABILITY_COLUMNS = [
    "setting",
    "replicas",
    "acc_mean",
    "acc_std",
    "acc_std_pop",
    "acc_min",
    "acc_max",
    "acc_ci_low",
    "acc_ci_high",
    "churn",
    "churn_std",
    "churn_ci_low",
    "churn_ci_high",
    "agreement",
    "l2_mean",
    "l2_std",
    "l2_ci_low",
    "l2_ci_high",
    "l2_all_weights_mean",
    "n_failed",
    "preset",
    *GROUP_COLUMNS,
]
RATE_COLUMNS = [
    "fpr_mean",
    "fpr_std",
    "fpr_std_pop",
    "fnr_mean",
    "fnr_std",
    "fnr_std_pop",
    "fnr_study_mean",
    "fnr_study_std_pop",
]
"""Error-rate columns over replicas: ours (ddof 1), the study's (ddof 0) and its FNR formula."""
SUBGROUP_COLUMNS = [
    "setting",
    "attribute",
    "value",
    "n_examples",
    "acc_mean",
    "acc_std",
    *RATE_COLUMNS,
    *GROUP_COLUMNS,
]
PER_CLASS_COLUMNS = ["setting", "label", "acc_mean", "acc_std", "n_examples", *GROUP_COLUMNS]
SETTING_ORDER = ["algo+impl", "algo", "impl", "control"]


def _prediction_matrix(predictions: pd.DataFrame) -> pd.DataFrame:
    """Replicas as rows, test examples as columns, predicted class as values."""
    return predictions.pivot(index="replica_id", columns="example", values="prediction")


def pairwise_disagreement(predictions: pd.DataFrame) -> np.ndarray:
    """Fraction of test examples on which each pair of replicas disagrees, one value per pair.

    `predictions` has columns replica_id, example, prediction (every replica predicting the
    same examples). Returns an array of length R(R-1)/2 (empty for fewer than two replicas).
    """
    matrix = _prediction_matrix(predictions).to_numpy()
    return np.array(
        [
            float(np.mean(matrix[i] != matrix[j]))
            for i, j in itertools.combinations(range(len(matrix)), 2)
        ]
    )


def churn(predictions: pd.DataFrame) -> float:
    """Mean pairwise disagreement (fraction of test examples); NaN for fewer than 2 replicas."""
    values = pairwise_disagreement(predictions)
    return float(values.mean()) if values.size else float("nan")


def pairwise_agreement(predictions: pd.DataFrame) -> np.ndarray:
    """Fraction of test examples on which each pair of replicas agrees (the study's "churn").

    Input as `pairwise_disagreement`; one value per pair i < j, each 1 - its disagreement.
    """
    matrix = _prediction_matrix(predictions).to_numpy()
    return np.array(
        [
            float(np.sum(matrix[i] == matrix[j]) / matrix[i].size)
            for i, j in itertools.combinations(range(len(matrix)), 2)
        ]
    )


def agreement(predictions: pd.DataFrame) -> float:
    """Mean pairwise agreement (fraction; the study's "churn"); NaN for fewer than 2 replicas."""
    values = pairwise_agreement(predictions)
    return float(values.mean()) if values.size else float("nan")


def pairwise_cell_disagreement(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Per pair of replicas' 0/1 output matrices (examples x outputs, all of one shape), the
    fraction of (example, output) cells predicted differently: churn for a multi-label task."""
    return np.array(
        [float(np.mean(a != b)) for a, b in itertools.combinations(matrices, 2)], dtype=float
    )


def pairwise_cell_agreement(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Per pair, `sum(a == b) / a.size` over the cells: the study's "churn" formula on them."""
    return np.array(
        [float(np.sum(a == b) / a.size) for a, b in itertools.combinations(matrices, 2)],
        dtype=float,
    )


def pairwise_l2(weights: Mapping[int, np.ndarray]) -> np.ndarray:
    """L2 distance between the flattened weights of each pair of replicas (float64 maths)."""
    vectors = [np.asarray(w, dtype=np.float64) for w in weights.values()]
    return np.array([float(np.linalg.norm(a - b)) for a, b in itertools.combinations(vectors, 2)])


def all_weights(
    weights: Mapping[int, np.ndarray], non_trainable: Mapping[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """Per replica id in both maps, its trainable weights followed by its non-trainable ones."""
    return {
        i: np.concatenate([np.asarray(w).reshape(-1), np.asarray(non_trainable[i]).reshape(-1)])
        for i, w in weights.items()
        if i in non_trainable
    }


def std_sample(values: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); NaN for fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def std_pop(values: np.ndarray) -> float:
    """Population standard deviation (ddof=0, the study's `np.std`); NaN for no values."""
    return float(np.std(values, ddof=0)) if len(values) else float("nan")


def per_class_accuracy(predictions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each replica on each class.

    `predictions` has columns replica_id, label, prediction. Returns columns replica_id,
    label, accuracy (fraction), n_examples.
    """
    correct = predictions.assign(correct=predictions["label"] == predictions["prediction"])
    table = (
        correct.groupby(["replica_id", "label"])["correct"]
        .agg(accuracy="mean", n_examples="size")
        .reset_index()
    )
    return table


def per_class_std(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per class, the mean and std over replicas of its accuracy (which classes move most).

    Columns: label, acc_mean, acc_std (fractions), n_examples; sorted by acc_std descending.
    """
    table = per_class_accuracy(predictions)
    out = (
        table.groupby("label")
        .agg(
            acc_mean=("accuracy", "mean"),
            acc_std=("accuracy", lambda v: std_sample(v.to_numpy())),
            n_examples=("n_examples", "first"),
        )
        .reset_index()
    )
    return out.sort_values(["acc_std", "label"], ascending=[False, True], ignore_index=True)


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def subgroup_rates(predictions: pd.DataFrame, attributes: pd.DataFrame) -> pd.DataFrame:
    """Per attribute subgroup, accuracy and false-positive / false-negative rates over replicas.

    For binary tasks (CelebA-like): `predictions` has replica_id, example, label, prediction
    with labels in {0, 1}; `attributes` has example, attribute, value (bool). For every
    (attribute, value) subgroup and replica: accuracy, FPR = FP / (FP + TN), FNR = FN / (FN +
    TP) (NaN when the denominator is 0). Returns columns attribute, value, n_examples,
    acc_mean, acc_std, fpr_mean, fpr_std, fnr_mean, fnr_std (fractions; stds ddof=1), and in
    the study's conventions fpr_std_pop, fnr_std_pop (ddof=0) and fnr_study_mean /
    fnr_study_std_pop: the study's FN / (FP + TN), a wrong denominator kept only to compare.
    """
    merged = predictions.merge(attributes, on="example")
    label = merged["label"].astype(bool)
    pred = merged["prediction"].astype(bool)
    merged = merged.assign(
        correct=label == pred,
        fp=~label & pred,
        tn=~label & ~pred,
        fn=label & ~pred,
        tp=label & pred,
    )
    per_replica = (
        merged.groupby(["attribute", "value", "replica_id"])[["correct", "fp", "tn", "fn", "tp"]]
        .agg(["sum", "count"])
        .reset_index()
    )
    rows = []
    for (attribute, value), group in per_replica.groupby(["attribute", "value"]):
        acc = group[("correct", "sum")] / group[("correct", "count")]
        neg = group[("fp", "sum")] + group[("tn", "sum")]
        pos = group[("fn", "sum")] + group[("tp", "sum")]
        fpr = (group[("fp", "sum")] / neg.where(neg > 0)).to_numpy(dtype=float)
        fnr = (group[("fn", "sum")] / pos.where(pos > 0)).to_numpy(dtype=float)
        fnr_study = (group[("fn", "sum")] / neg.where(neg > 0)).to_numpy(dtype=float)
        rows.append(
            {
                "attribute": attribute,
                "value": bool(value),
                "n_examples": int(group[("correct", "count")].iloc[0]),
                "acc_mean": float(acc.mean()),
                "acc_std": std_sample(acc.to_numpy()),
                "fpr_mean": finite_mean(fpr),
                "fpr_std": std_sample(fpr[np.isfinite(fpr)]),
                "fpr_std_pop": std_pop(fpr[np.isfinite(fpr)]),
                "fnr_mean": finite_mean(fnr),
                "fnr_std": std_sample(fnr[np.isfinite(fnr)]),
                "fnr_std_pop": std_pop(fnr[np.isfinite(fnr)]),
                "fnr_study_mean": finite_mean(fnr_study),
                "fnr_study_std_pop": std_pop(fnr_study[np.isfinite(fnr_study)]),
            }
        )
    return pd.DataFrame(rows)


_NO_CI = (float("nan"), float("nan"))


def _setting_key(setting: pd.Series) -> pd.Series:
    order = {name: i for i, name in enumerate(SETTING_ORDER)}
    return setting.map(lambda s: order.get(s, len(order)))


def variability_table(
    replicas: pd.DataFrame,
    predictions: pd.DataFrame,
    weights: Mapping[int, np.ndarray] | None = None,
    non_trainable: Mapping[int, np.ndarray] | None = None,
    outputs: Mapping[int, Any] | None = None,
) -> pd.DataFrame:
    """One row per (study group, noise setting): accuracy spread, churn, weight distance.

    `replicas` as `Store.replicas()` (id, setting, status, test_accuracy and GROUP_COLUMNS);
    `predictions` as `Store.predictions()` (replica_id, example, label, prediction);
    `weights` maps replica id -> flattened float32 trainable weights (missing ids give NaN
    distances); `non_trainable` maps replica id -> its flattened non-trainable weights
    (BatchNorm moving statistics; empty for a model without them), as
    `Store.replica_weights(ids, non_trainable=True)` returns them.
    Columns: VARIABILITY_COLUMNS. acc_* are test accuracy (fraction) over successful
    replicas (std with ddof=1); churn is mean pairwise disagreement (fraction), churn_std
    its std over pairs; l2_mean / l2_std the pairwise L2 distance of the trainable weights;
    n_failed counts replicas that failed or timed out; preset names the preset(s) that planned
    the group's replicas ('/'-joined; '' for none). acc_ci_*, churn_ci_* and l2_ci_* bound
    the 95 % bootstrap interval over replicas of acc_mean, churn and l2_mean (NaN with fewer
    than 2 replicas for accuracy, 3 for the pairwise measures). The study's conventions:
    acc_std_pop is the accuracy std with ddof=0 (fraction); agreement the mean pairwise
    fraction of test examples predicted alike (its "churn", 1 - churn); l2_all_weights_mean
    the mean pairwise L2 distance over trainable and non-trainable weights together (NaN
    where a replica's non-trainable weights are not stored). A multi-label group (`outputs`
    maps replica id -> `ReplicaOutputs`, as `Store.replica_outputs` returns them) takes its
    churn and agreement over every (example, output) cell, and its accuracy is the binary
    accuracy; `reports.multilabel.output_table` breaks it down per output.
    """
    if replicas.empty:
        return pd.DataFrame(columns=VARIABILITY_COLUMNS)
    weights, outputs = weights or {}, outputs or {}
    everything = all_weights(weights, non_trainable or {})
    rows = []
    for key, group in replicas.groupby([*GROUP_COLUMNS, "setting"], sort=False, dropna=False):
        ok = group[group["status"] == "ok"]
        ids = set(ok["id"])
        preds = predictions[predictions["replica_id"].isin(ids)]
        cells = [outputs[i].predictions for i in ok["id"] if i in outputs]
        multi_label = bool(cells) and len(cells) == len(ids)
        if len(ids) < 2:
            disagreement = agree = np.array([])
        elif multi_label:
            disagreement = pairwise_cell_disagreement(cells)
            agree = pairwise_cell_agreement(cells)
        else:
            disagreement, agree = pairwise_disagreement(preds), pairwise_agreement(preds)
        distances = (
            pairwise_l2({i: weights[i] for i in ok["id"]})
            if ids and all(i in weights for i in ids)
            else np.array([])
        )
        complete = (
            pairwise_l2({i: everything[i] for i in ok["id"]})
            if ids and all(i in everything for i in ids)
            else np.array([])
        )
        acc = ok["test_accuracy"].to_numpy(dtype=float)
        acc_ci = bootstrap_mean_ci(acc)
        churn_ci = bootstrap_pairwise_ci(squareform(disagreement)) if disagreement.size else _NO_CI
        l2_ci = bootstrap_pairwise_ci(squareform(distances)) if distances.size else _NO_CI
        row = dict(zip([*GROUP_COLUMNS, "setting"], key, strict=True))
        row.update(
            replicas=len(ok),
            acc_mean=float(acc.mean()) if acc.size else float("nan"),
            acc_std=std_sample(acc),
            acc_std_pop=std_pop(acc),
            acc_min=float(acc.min()) if acc.size else float("nan"),
            acc_max=float(acc.max()) if acc.size else float("nan"),
            acc_ci_low=acc_ci[0],
            acc_ci_high=acc_ci[1],
            churn=float(disagreement.mean()) if disagreement.size else float("nan"),
            churn_std=std_sample(disagreement),
            churn_ci_low=churn_ci[0],
            churn_ci_high=churn_ci[1],
            agreement=float(agree.mean()) if agree.size else float("nan"),
            l2_mean=float(distances.mean()) if distances.size else float("nan"),
            l2_std=std_sample(distances),
            l2_ci_low=l2_ci[0],
            l2_ci_high=l2_ci[1],
            l2_all_weights_mean=float(complete.mean()) if complete.size else float("nan"),
            n_failed=int((group["status"] != "ok").sum()),
            preset="/".join(sorted({p for p in group.get("preset", []) if isinstance(p, str)})),
        )
        rows.append(row)
    table = pd.DataFrame(rows, columns=VARIABILITY_COLUMNS)
    table = table.sort_values(
        [*GROUP_COLUMNS, "setting"],
        key=lambda col: _setting_key(col) if col.name == "setting" else col,
        ignore_index=True,
    )
    return table


def per_class_table(replicas: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (study group, setting, class): mean and std over replicas of the class accuracy.

    Inputs as for `variability_table`. Columns: PER_CLASS_COLUMNS (fractions).
    """
    return _per_group(
        replicas, predictions, lambda _, preds: per_class_std(preds), PER_CLASS_COLUMNS
    )


def _per_group(
    replicas: pd.DataFrame,
    predictions: pd.DataFrame,
    table_of: Callable[[str, pd.DataFrame], pd.DataFrame | None],
    columns: list[str],
) -> pd.DataFrame:
    """`table_of(dataset, predictions)` for each (study group, setting), keys added as columns."""
    ok = replicas[replicas["status"] == "ok"]
    tables = []
    for key, group in ok.groupby([*GROUP_COLUMNS, "setting"], sort=False, dropna=False):
        preds = predictions[predictions["replica_id"].isin(set(group["id"]))]
        table = None if preds.empty else table_of(group["dataset"].iloc[0], preds)
        if table is None or table.empty:
            continue
        for column, value in zip([*GROUP_COLUMNS, "setting"], key, strict=True):
            table[column] = value
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def subgroup_table(
    replicas: pd.DataFrame, predictions: pd.DataFrame, attributes: pd.DataFrame
) -> pd.DataFrame:
    """Per (study group, setting, attribute subgroup): accuracy, FPR and FNR over replicas.

    `attributes` as `Store.example_attributes()` (dataset, example, attribute, value); only
    datasets that have attributes (CelebA) give rows. Columns: SUBGROUP_COLUMNS (fractions;
    see `subgroup_rates`).
    """

    def table_of(dataset: str, preds: pd.DataFrame) -> pd.DataFrame | None:
        mine = attributes[attributes["dataset"] == dataset]
        if mine.empty:
            return None
        return subgroup_rates(preds, mine[["example", "attribute", "value"]])

    return _per_group(replicas, predictions, table_of, SUBGROUP_COLUMNS)


def accuracy_points(replicas: pd.DataFrame) -> pd.DataFrame:
    """Successful replicas' test accuracy for strip plots: columns setting, replica, accuracy."""
    ok = replicas[replicas["status"] == "ok"]
    return pd.DataFrame(
        {
            "setting": ok["setting"],
            "replica": ok["replica"],
            "accuracy": ok["test_accuracy"].astype(float),
            "workload": ok["workload"],
            "dataset": ok["dataset"],
        }
    ).reset_index(drop=True)


def _interval(low: pd.Series, high: pd.Series, scale: float, digits: int) -> pd.Series:
    """'[low, high]' per row (scaled and rounded), empty where a bound is NaN."""
    return pd.Series(
        [
            f"[{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"
            if np.isfinite(lo) and np.isfinite(hi)
            else ""
            for lo, hi in zip(low.astype(float), high.astype(float), strict=True)
        ],
        index=low.index,
        dtype=object,
    )


def display_variability(table: pd.DataFrame) -> pd.DataFrame:
    """The variability table shaped for reading: accuracy and churn in percent with 95 % CIs.

    The study's conventions follow ours: "acc std pop (pp)" (ddof 0), "agreement (%)" (its
    "churn") and "L2 all weights mean" (BatchNorm statistics included); "preset" where a preset
    planned rows.
    """
    shown = table[["framework", "workload", "dataset", "gpu_arch", "setting", "replicas"]].copy()
    shown["acc mean (%)"] = (100 * table["acc_mean"]).round(2)
    shown["acc 95% CI (%)"] = _interval(table["acc_ci_low"], table["acc_ci_high"], 100, 2)
    shown["acc std (pp)"] = (100 * table["acc_std"]).round(3)
    shown["churn (%)"] = (100 * table["churn"]).round(2)
    shown["churn 95% CI (%)"] = _interval(table["churn_ci_low"], table["churn_ci_high"], 100, 2)
    shown["L2 mean"] = table["l2_mean"].round(4)
    shown["acc std pop (pp)"] = (100 * table["acc_std_pop"]).round(3)
    shown["agreement (%)"] = (100 * table["agreement"]).round(2)
    shown["L2 all weights mean"] = table["l2_all_weights_mean"].round(4)
    shown["failed"] = table["n_failed"]
    if "preset" in table.columns and table["preset"].fillna("").astype(bool).any():
        shown["preset"] = table["preset"]
    return shown
