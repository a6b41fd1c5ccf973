"""Cluster fan-out: launcher options, GPU pinning, shards, and a real sweep through submitit."""

import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, run_cli

from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.runner.launchers.cluster import (
    CellTask,
    LaunchConfig,
    allocated_gpu,
    run_cell_task,
)
from nnr_profile.store.shards import shard_path, shard_statuses

GPUS = [{"index": i, "uuid": f"GPU-{i}aaa"} for i in range(4)]


def _one_line_error(proc, fragment):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--launcher", "slurm"], "--launcher slurm needs --partition"),
        (["--launcher", "pbs"], "Invalid value for '--launcher'"),
        (["--partition", "gpu"], "--partition only applies to --launcher slurm"),
        (["--launcher", "submitit-local", "--constraint", "a100"], "--constraint only applies"),
        (["--no-wait"], "--no-wait only applies to --launcher slurm or submitit-local"),
        (
            ["--launcher", "slurm", "--partition", "gpu", "--gpus-per-node", "0"],
            "--gpus-per-node must be at least 1",
        ),
        (
            ["--launcher", "slurm", "--partition", "gpu", "--gpu", "cpu", "--gpus-per-node", "2"],
            "--gpu cpu runs on the CPU",
        ),
        (["--launcher", "slurm", "--partition", "gpu", "--gpu", "0,1"], "names GPUs of this"),
    ],
)
def test_bad_launcher_arguments_exit_2_with_one_line(args, fragment, db):
    _one_line_error(run_cli("run", "--model", "mlp", *args, "--db", str(db)), fragment)
    assert not db.exists()


def test_slurm_without_slurm_on_path_says_what_to_do(db, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(__file__).parent))
    proc = run_cli(
        "run", "--model", "mlp", "--launcher", "slurm", "--partition", "gpu", "--db", str(db)
    )
    _one_line_error(proc, "needs Slurm's sbatch and srun on PATH")


def test_slurm_submission_is_one_job_array_with_the_asked_resources(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "submitted.sh"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\ncp "$1" {script}\necho "Submitted batch job 4242"\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    db = tmp_path / "results" / "nnr.db"
    proc = run_cli(
        "run", "--model", "mlp,lenet", "--batch-size", "2", "--repeats", "2", "--timeout", "600",
        "--launcher", "slurm", "--partition", "gpu", "--constraint", "a100", "--no-wait",
        "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "submitted 8 trial(s) to Slurm job array 4242" in proc.stderr
    assert "job id(s): 4242" in proc.stdout and "nnr-profile merge" in proc.stdout
    sbatch = script.read_text()
    for line in (
        "#SBATCH --array=0-7%8",
        "#SBATCH --partition=gpu",
        "#SBATCH --constraint=a100",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --time=20",
    ):
        assert line in sbatch, sbatch


@pytest.mark.parametrize(
    ("visible", "gpus", "index"),
    [
        ("2", GPUS, 2),  # other GPUs visible: Slurm's index is the NVML index
        ("3,1", GPUS[:2], 0),  # confined to its own GPUs: the first one NVML sees
        ("GPU-3aaa", GPUS, 3),  # a UUID
        ("", GPUS, 0),
    ],
)
def test_the_task_pins_the_gpu_slurm_gave_it(visible, gpus, index):
    assert allocated_gpu({"CUDA_VISIBLE_DEVICES": visible}, gpus) == index


def test_a_task_without_a_gpu_stores_a_clear_failure(tmp_path):
    with pytest.raises(NnrError, match="sees no NVIDIA GPU"):
        allocated_gpu({"CUDA_VISIBLE_DEVICES": "0"}, [])
    cell = TrialSpec("torch", "mlp", MODES["default"], gpu_index=0, batch_size=2, iterations=3)
    answer = run_cell_task(CellTask(cell, str(tmp_path), None, pin_allocated_gpu=True))
    assert answer["status"] == "failed" and "no NVIDIA GPU" in answer["error"]
    assert shard_path(tmp_path, cell.cell_key).exists()
    assert shard_statuses(tmp_path)[cell.cell_key][0] == "failed"


def test_slurm_plans_one_gpu_per_task_and_local_keeps_this_machine():
    config = LaunchConfig(launcher="slurm", partition="gpu")
    assert config.devices().devices == (0,)
    assert LaunchConfig(launcher="slurm", partition="gpu", gpu="cpu").devices().devices == (None,)
    with pytest.raises(UsageError):
        LaunchConfig(wait=False)


@pytest.mark.slow
def test_a_sweep_through_submitit_lands_every_cell_and_resumes(tmp_path):
    db = tmp_path / "results" / "nnr.db"
    proc = run_cli("run", "--model", "mlp", *TINY, "--launcher", "submitit-local", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "submitted 2 trial(s) to submitit's local executor" in proc.stderr
    assert "2 trial(s) run, 0 already in the store, 0 failed" in proc.stdout
    shards = db.parent / "shards"
    statuses = shard_statuses(shards)
    assert len(statuses) == 2 and {s for s, _ in statuses.values()} == {"ok"}
    with sqlite3.connect(db) as conn:
        trials = pd.read_sql_query("SELECT cell_key, mode, status FROM trials", conn)
        per_trial = conn.execute("SELECT COUNT(*) FROM iterations GROUP BY trial_id").fetchall()
    assert set(trials["cell_key"]) == set(statuses)
    assert sorted(trials["mode"]) == ["default", "deterministic"]
    assert per_trial == [(3,), (3,)]

    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(shards), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "overhead.csv")
    assert list(table["workload"]) == ["mlp"] and (table["n_iterations"] == 3).all()

    proc = run_cli("run", "--model", "mlp", *TINY, "--launcher", "submitit-local", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "nothing to submit" in proc.stderr
    assert "0 trial(s) run, 2 already in the store" in proc.stdout
