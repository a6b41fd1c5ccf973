"""`verify --across`: one spec's losses and weights compared between stores and environments."""

import json
import shutil
import sqlite3

import pandas as pd
import pytest
from conftest import run_cli

from nnr_profile.studies.across import SPEC_COLUMNS, across_table, first_divergence, matrix


def test_first_divergence_is_bitwise():
    assert first_divergence([1.0, 2.0], [1.0, 2.0]) is None
    assert first_divergence([1.0, 2.0, 3.0], [1.0, 2.0000001, 3.0]) == 1
    assert first_divergence([0.0], [-0.0]) == 0
    assert first_divergence([1.0, 2.0], [1.0]) == 1


def _trial(trial_id, arch, version, losses, weights="w", **spec):
    base = dict(
        framework="torch",
        workload="resnet18",
        workload_args="{}",
        mode="deterministic",
        batch_size=4,
        image_size=None,
        warmup=2,
        iterations=3,
        seed=0,
    )
    return {
        **base,
        **spec,
        "trial_id": trial_id,
        "gpu_arch": arch,
        "framework_version": version,
        "losses": losses,
        "weights_hash": weights,
    }


def test_the_matrix_by_architecture_and_version():
    trials = pd.DataFrame(
        [
            _trial(1, "Ampere", "2.4.1", [1.0, 0.9, 0.8]),
            _trial(2, "Ampere", "2.4.1", [1.0, 0.9, 0.8]),
            _trial(3, "Hopper", "2.4.1", [1.0, 0.9, 0.8000001], weights="v"),
            _trial(4, "Ampere", "2.5.0", [1.0, 0.9, 0.8], weights="u"),
            _trial(5, "Ampere", "2.4.1", [2.0], mode="default"),
        ]
    )
    table = across_table(trials)
    assert list(table.columns[: len(SPEC_COLUMNS)]) == SPEC_COLUMNS
    det = table[table["mode"] == "deterministic"].set_index(["env_a", "env_b"])
    assert det.loc[("Ampere / 2.4.1", "Ampere / 2.4.1"), "reproducible"]
    hopper = det.loc[("Ampere / 2.4.1", "Hopper / 2.4.1")]
    assert not hopper["reproducible"] and hopper["first_divergent_iteration"] == 2 + 2
    weights_only = det.loc[("Ampere / 2.4.1", "Ampere / 2.5.0")]
    assert weights_only["losses_equal"] and not weights_only["weights_equal"]
    assert weights_only["first_divergent_iteration"] == 2 + 3
    single = table[table["mode"] == "default"].iloc[0]
    assert single["reproducible"] is None
    grids = matrix(table)
    (label,) = [k for k in grids if "deterministic" in k]
    assert grids[label].loc["Hopper / 2.4.1", "Ampere / 2.4.1"] == "differs at 4"
    assert grids[label].loc["Ampere / 2.4.1", "Ampere / 2.4.1"] == "="


@pytest.mark.slow
def test_across_two_real_stores(tmp_path):
    first = tmp_path / "a.db"
    proc = run_cli(
        "run",
        "--model",
        "mlp",
        "--gpu",
        "cpu",
        "--batch-size",
        "4",
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--modes",
        "default,deterministic",
        "--db",
        str(first),
    )
    assert proc.returncode == 0, proc.stderr
    same = run_cli("verify", "--across", str(first), str(first))
    assert same.returncode == 0, same.stderr
    assert "each spec was found in one (architecture, framework version)" in same.stderr
    other = tmp_path / "b.db"
    shutil.copy(first, other)
    with sqlite3.connect(other) as conn:  # the same trials as if taken on a Hopper machine
        conn.execute("UPDATE trials SET gpu_arch = 'Hopper', host = 'h100-node'")
        trial = conn.execute("SELECT id FROM trials WHERE mode = 'deterministic'").fetchone()[0]
        conn.execute(
            "UPDATE iterations SET loss = loss * (1 + 1e-7) WHERE trial_id = ? AND iteration = 1",
            (trial,),
        )
    proc = run_cli("verify", "--across", str(first), str(other), "--json")
    assert proc.returncode == 1, proc.stderr
    rows = {(r["mode"], r["env_a"], r["env_b"]): r for r in json.loads(proc.stdout)}
    cpu = next(k for k in rows if k[0] == "default")[1]
    hopper = cpu.replace("CPU", "Hopper")
    assert rows[("default", cpu, hopper)]["reproducible"] is True
    parted = rows[("deterministic", cpu, hopper)]
    assert parted["reproducible"] is False and parted["first_divergent_iteration"] == 1 + 1
    text = run_cli("verify", "--across", str(first), str(other)).stdout
    assert "differs at 2" in text
    assert run_cli("verify", str(first)).returncode == 2
