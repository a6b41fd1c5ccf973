"""Variability of a multi-label task (the study's 40-attribute CelebA): per output and pooled.

Pure functions, no framework imports. A replica's outputs are 0/1 matrices (test examples x
outputs, `ReplicaOutputs`); every rate is a fraction in [0, 1]. Per output (one attribute),
over the successful replicas of a noise setting: accuracy, churn (mean pairwise fraction of
test examples predicted differently), false-positive rate FP / (FP + TN) and false-negative
rate FN / (FN + TP), each as mean and std (ddof 1, ours; ddof 0, the study's `np.std`). The
row ``output = "all"`` pools every (example, output) cell, as the study's Keras metrics
(`BinaryAccuracy`, `TruePositives`, ... at threshold 0.5 on the test set) count them, so its
`acc_*` is the binary accuracy and its `fpr_std_pop` is the number `run_ae.py`'s
`get_standard_deviation_of_fpr` computes; `fnr_study_*` is its `get_standard_deviation_of_fnr`
formula, FN / (FP + TN), a wrong denominator kept only so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from nnr_profile.reports.variability import (
    GROUP_COLUMNS,
    RATE_COLUMNS,
    finite_mean,
    pairwise_cell_agreement,
    pairwise_cell_disagreement,
    std_pop,
    std_sample,
)

POOLED = "all"
"""The `output` of the row that pools every output."""
OUTPUT_COLUMNS = [
    "setting",
    "output",
    "n_examples",
    "n_positive",
    "replicas",
    "acc_mean",
    "acc_std",
    "acc_std_pop",
    "churn",
    "agreement",
    *RATE_COLUMNS,
    *GROUP_COLUMNS,
]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator per replica, NaN where the denominator is 0."""
    denominator = denominator.astype(float)
    return np.divide(
        numerator, denominator, out=np.full(denominator.shape, np.nan), where=denominator > 0
    )


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _rates_row(predictions: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """One row from (replicas, examples, k) stacks of 0/1 predictions and labels (k outputs)."""
    pred, label = predictions.astype(bool), labels.astype(bool)
    axes = (1, 2)
    tp = (pred & label).sum(axis=axes)
    tn = (~pred & ~label).sum(axis=axes)
    fp = (pred & ~label).sum(axis=axes)
    fn = (~pred & label).sum(axis=axes)
    acc = (tp + tn) / label[0].size
    fpr, fnr, fnr_study = _ratio(fp, fp + tn), _ratio(fn, fn + tp), _ratio(fn, fp + tn)
    pairs = pairwise_cell_disagreement(list(predictions))
    agree = pairwise_cell_agreement(list(predictions))
    return {
        "n_examples": int(label.shape[1]),
        "n_positive": int(label[0].sum()),
        "replicas": len(predictions),
        "acc_mean": float(acc.mean()),
        "acc_std": std_sample(acc),
        "acc_std_pop": std_pop(acc),
        "churn": float(pairs.mean()) if pairs.size else float("nan"),
        "agreement": float(agree.mean()) if agree.size else float("nan"),
        **{
            f"{name}_{stat}": value
            for name, rates in (("fpr", fpr), ("fnr", fnr))
            for stat, value in (
                ("mean", finite_mean(rates)),
                ("std", std_sample(_finite(rates))),
                ("std_pop", std_pop(_finite(rates))),
            )
        },
        "fnr_study_mean": finite_mean(fnr_study),
        "fnr_study_std_pop": std_pop(_finite(fnr_study)),
    }


def output_rates(outputs: Mapping[int, Any]) -> pd.DataFrame:
    """Per output and pooled (`output` "all" first): accuracy, churn, FPR and FNR over replicas.

    `outputs` maps replica id -> `ReplicaOutputs` of one noise setting (same examples and
    outputs). Columns: OUTPUT_COLUMNS without setting and GROUP_COLUMNS (fractions; see the
    module docstring).
    """
    if not outputs:
        return pd.DataFrame(
            columns=[c for c in OUTPUT_COLUMNS if c not in ("setting", *GROUP_COLUMNS)]
        )
    first = next(iter(outputs.values()))
    predictions = np.stack([o.predictions for o in outputs.values()])
    labels = np.stack([o.labels for o in outputs.values()])
    rows = [{"output": POOLED, **_rates_row(predictions, labels)}]
    for k, name in enumerate(first.names):
        rows.append(
            {"output": name, **_rates_row(predictions[:, :, k : k + 1], labels[:, :, k : k + 1])}
        )
    return pd.DataFrame(rows)


def output_table(replicas: pd.DataFrame, outputs: Mapping[int, Any]) -> pd.DataFrame:
    """Per (study group, noise setting, output): `output_rates` of its successful replicas.

    `replicas` as `Store.replicas()`; `outputs` as `Store.replica_outputs(ids)`. Only groups
    whose successful replicas all have outputs with the same shape give rows. Columns:
    OUTPUT_COLUMNS.
    """
    ok = replicas[replicas["status"] == "ok"] if not replicas.empty else replicas
    tables = []
    for key, group in ok.groupby([*GROUP_COLUMNS, "setting"], sort=False, dropna=False):
        ids = [int(i) for i in group["id"]]
        mine = {i: outputs[i] for i in ids if i in outputs}
        shapes = {(o.names, o.predictions.shape) for o in mine.values()}
        if not mine or len(mine) != len(ids) or len(shapes) != 1:
            continue
        table = output_rates(mine)
        for column, value in zip([*GROUP_COLUMNS, "setting"], key, strict=True):
            table[column] = value
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(tables, ignore_index=True)[OUTPUT_COLUMNS]
