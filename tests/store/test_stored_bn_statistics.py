"""A replica's BatchNorm moving statistics are stored beside its trainable weights."""

import sqlite3

import numpy as np

from nnr_profile.core.modes import MODES
from nnr_profile.store.database import Store
from nnr_profile.studies.replica import ReplicaResult, ReplicaSpec


def _result(replica: int, statistics: np.ndarray | None) -> ReplicaResult:
    spec = ReplicaSpec("torch", "mlp", "digits", "algo", replica, 1, 2, MODES["default"])
    return ReplicaResult(
        spec,
        "ok",
        0.5,
        predictions=[1],
        labels=[1],
        weights=np.arange(4, dtype=np.float32),
        non_trainable_weights=statistics,
    )


def test_the_statistics_round_trip_and_an_empty_vector_stays_empty(db):
    statistics = np.array([0.25, -1.5, 3.0], dtype=np.float32)
    with Store(db) as store:
        store.record_replica(_result(0, statistics))
        store.record_replica(_result(1, np.zeros(0, np.float32)))
        store.record_replica(_result(2, None))
        ids = store.replicas()["id"].tolist()
        trainable = store.replica_weights(ids)
        stored = store.replica_weights(ids, non_trainable=True)
    assert all(np.array_equal(w, np.arange(4, dtype=np.float32)) for w in trainable.values())
    assert np.array_equal(stored[ids[0]], statistics) and stored[ids[0]].dtype == np.float32
    assert stored[ids[1]].size == 0
    assert ids[2] not in stored


def test_an_older_store_has_no_statistics_and_gains_the_column_when_written(db):
    with Store(db) as store:
        store.record_replica(_result(0, None))
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE replicas DROP COLUMN non_trainable_weights")
    with Store(db, create=False) as store:
        ids = store.replicas()["id"].tolist()
        assert store.replica_weights(ids, non_trainable=True) == {}
        assert len(store.replica_weights(ids)) == 1
    with Store(db) as store:
        store.record_replica(_result(1, np.ones(2, np.float32)))
        stored = store.replica_weights(store.replicas()["id"], non_trainable=True)
    assert [v.tolist() for v in stored.values()] == [[1.0, 1.0]]
