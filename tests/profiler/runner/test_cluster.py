"""Launchers: options, GPU pinning, shards, a sweep through submitit, and sweeps on a real Slurm.

The Slurm tests need a Slurm controller that answers (scripts/start-slurm.sh starts a one-node
cluster with a `debug` partition; scripts/test.sh runs it first); they skip without one.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, cli_env, run_cli

from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.launchers import LAUNCHER_MODULES
from nnr_profile.profiler.runner.launchers.base import load_launchers, make_launcher
from nnr_profile.profiler.runner.launchers.cluster import poll_delay
from nnr_profile.profiler.runner.launchers.slurm import slurm_minutes
from nnr_profile.profiler.runner.launchers.tasks import CellTask, allocated_gpu, run_cell_task
from nnr_profile.store.shards import shard_path, shard_statuses

GPUS = [{"index": i, "uuid": f"GPU-{i}aaa"} for i in range(4)]
SLURM = ("--launcher", "slurm", "--partition", "debug")


def _one_line_error(proc, fragment):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--launcher", "slurm"], "--launcher slurm needs --partition"),
        (["--launcher", "pbs"], "--launcher 'pbs' is unknown: use local, slurm, submitit-local"),
        (["--partition", "gpu"], "--partition only applies to --launcher slurm, not local"),
        (["--launcher", "submitit-local", "--constraint", "a100"], "--constraint only applies"),
        (["--no-wait"], "--no-wait only applies to --launcher slurm or submitit-local"),
        (["--account", "lab"], "--account only applies to --launcher slurm"),
        (
            ["--launcher", "slurm", "--partition", "gpu", "--gpus-per-node", "0"],
            "must be a whole number of at least 1",
        ),
        (
            ["--launcher", "slurm", "--partition", "gpu", "--gpu", "cpu", "--gpus-per-node", "2"],
            "--gpu cpu runs on the CPU",
        ),
        (["--launcher", "slurm", "--partition", "gpu", "--gpu", "0,1"], "names GPUs of this"),
        (["--launcher", "slurm", "--partition", "gpu x"], "is not a Slurm name"),
        (["--launcher", "slurm", "--partition", "gpu", "--qos", "a\nb"], "--qos 'a\\nb' is not"),
        (["--launcher", "slurm", "--partition", "gpu", "--time", "1h"], "--time '1h' is not"),
        (["--launcher", "slurm", "--partition", "gpu", "--mem", "lots"], "--mem 'lots' is not"),
        (["--launcher", "slurm", "--partition", "gpu", "--task-python", "'py"], "cannot be split"),
    ],
)
def test_bad_launcher_arguments_exit_2_with_one_line(args, fragment, db):
    _one_line_error(run_cli("run", "--model", "mlp", *args, "--db", str(db)), fragment)
    assert not db.exists()


def test_the_cli_lists_every_registered_launcher():
    assert list(load_launchers()) == list(LAUNCHER_MODULES)
    with pytest.raises(ParameterError, match="'pbs' is unknown"):
        make_launcher("pbs")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("1:30", 2), ("1:30:00", 90), ("2-0", 2880), ("1-02:03", 1563), ("0-0:0:1", 1)],
)
def test_slurm_times_become_whole_minutes(text, minutes):
    assert slurm_minutes(text) == minutes


@pytest.mark.parametrize("text", ["0", "1:2:3:4", "-5", "1h", ""])
def test_bad_slurm_times_are_refused(text):
    with pytest.raises(ParameterError):
        slurm_minutes(text)


def test_polls_start_fast_and_slow_down():
    assert poll_delay(0) == 1.0 and poll_delay(60) == 6.0 and poll_delay(3600) == 15.0


def test_slurm_without_slurm_on_path_says_what_to_do(db, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(__file__).parent))
    proc = run_cli("run", "--model", "mlp", *SLURM, "--db", str(db))
    _one_line_error(proc, "needs Slurm's sbatch and srun and squeue on PATH")


def _stand_in_slurm(tmp_path, monkeypatch):
    """sbatch/srun/squeue stand-ins that keep the submitted script; returns its path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "submitted.sh"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\ncp "$1" {script}\necho "Submitted batch job 4242"\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "squeue").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return script


def test_a_gpu_sweep_from_a_login_node_without_gpus_is_one_job_array(tmp_path, monkeypatch):
    script = _stand_in_slurm(tmp_path, monkeypatch)
    db = tmp_path / "results" / "nnr.db"
    proc = run_cli(
        "run", "--model", "mlp,lenet", "--batch-size", "2", "--repeats", "2", "--timeout", "600",
        "--launcher", "slurm", "--partition", "gpu", "--constraint", "a100", "--no-wait",
        "--account", "lab", "--qos", "high", "--mem", "16g",
        "--task-python", "nice -n 5 '/opt/my env/python'", "--db", str(db),
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
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --mem=16G",
    ):
        assert line in sbatch, sbatch
    assert "nice -n 5 '/opt/my env/python' -u -m submitit.core._submit" in sbatch
    assert (db.parent / "submitit" / "4242" / "cells.json").exists()


def test_a_time_limit_shorter_than_the_trial_timeout_is_refused(tmp_path, monkeypatch):
    _stand_in_slurm(tmp_path, monkeypatch)
    args = ("--timeout", "600", "--time", "5", "--no-wait", "--db", str(tmp_path / "nnr.db"))
    proc = run_cli("run", "--model", "mlp", *SLURM, *args)
    _one_line_error(proc, "--time 5 gives each task 5 min, less than the trial --timeout of 600")


def test_a_results_folder_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    proc = run_cli(
        "run", "--model", "mlp", *TINY, "--launcher", "submitit-local",
        "--results-dir", str(shared), "--db", str(tmp_path / "nnr.db"),
    )  # fmt: skip
    _one_line_error(proc, "is writable by other users")
    assert not (shared / "shards").exists()


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
    assert run_cell_task(CellTask(cell, str(tmp_path), None, pin_allocated_gpu=True)) == "failed"
    assert shard_path(tmp_path, cell.cell_key).exists()
    status, error = shard_statuses(tmp_path)[cell.cell_key]
    assert status == "failed" and "no NVIDIA GPU" in error


def test_slurm_plans_one_gpu_per_task_and_local_keeps_this_machine():
    assert make_launcher("slurm", partition="gpu").devices().devices == (0,)
    assert make_launcher("slurm", partition="gpu", gpu="cpu").devices().devices == (None,)
    assert make_launcher("submitit-local").waits
    assert not make_launcher("submitit-local", no_wait=True).waits


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


# --- a real Slurm -----------------------------------------------------------------------------


def _slurm_answers() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        part = subprocess.run(
            ["sinfo", "-h", "-p", "debug", "-o", "%a"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "UP" in ping.stdout and part.stdout.strip() == "up"


slurm = pytest.mark.skipif(
    not _slurm_answers(),
    reason="no Slurm controller with a 'debug' partition answers (scripts/start-slurm.sh)",
)


def _trials(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT workload, mode, status, error, host FROM trials", conn)


def _start(*args: str) -> subprocess.Popen:
    """`nnr-profile ARGS` in the background (the test plugins on the path)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nnr_profile.cli", *args],
        env=cli_env(plugins=True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(check, what: str, timeout_s: float = 90.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _arrays(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in (folder / "submitit").glob("*/cells.json"))


def _running(array: str) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "--array", "-j", array, "-o", "%T"], capture_output=True, text=True
    ).stdout
    return "RUNNING" in out


@slurm
@pytest.mark.slow
def test_a_sweep_on_slurm_lands_every_cell_without_sacct_and_resumes(db):
    args = ("run", "--model", "smallcnn,mlp", *TINY, *SLURM, "--db", str(db))
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "submitted 4 trial(s) to Slurm job array" in proc.stderr
    assert "4 trial(s) run, 0 already in the store, 0 failed" in proc.stdout
    assert "sacct" not in proc.stderr and "Traceback" not in proc.stderr
    trials = _trials(db)
    assert len(trials) == 4 and (trials["status"] == "ok").all()

    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to submit: all 4 cell(s) already done" in proc.stderr
    assert "0 trial(s) run, 4 already in the store" in proc.stdout


@slurm
@pytest.mark.slow
def test_a_task_cancelled_with_scancel_is_a_failed_row_and_a_rerun_redoes_it(db):
    args = ("run", "--model", "mlp,hangs", "--modes", "default", *TINY, *SLURM, "--db", str(db))
    parent = _start(*args, "--timeout", "120")
    try:
        array = _wait_for(lambda: _arrays(db.parent), "the job array")[0]
        _wait_for(lambda: len(shard_statuses(db.parent / "shards")) == 1, "the mlp shard")
        _wait_for(lambda: _running(array), "the hanging task to run")
        subprocess.run(["scancel", array], check=True)
        assert parent.wait(timeout=60) == 1  # exit 1: a trial failed
    finally:
        parent.kill()
    trials = _trials(db).set_index("workload")
    assert trials.loc["mlp", "status"] == "ok"
    assert trials.loc["hangs", "status"] == "failed"
    error = trials.loc["hangs", "error"]  # the task's own report, or the parent's if it died first
    assert (
        "killed by SIGKILL" in error or f"task {array}_1 ended without a result (CANCELLED" in error
    )

    proc = run_cli(*args, "--timeout", "3", plugins=True)
    assert proc.returncode == 1, proc.stderr
    assert "submitted 1 trial(s) to Slurm job array" in proc.stderr
    assert "1 trial(s) run, 1 already in the store, 1 failed" in proc.stdout
    assert _trials(db).set_index("workload").loc["hangs", "status"] == "timeout"


def _task_process(job: str) -> int:
    """The process id of the task (step 0, local task 0) of a running Slurm job on this node."""
    out = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True).stdout
    for line in out.splitlines()[1:]:
        pid, _, step, local_id, *_ = line.split()
        if step == "0" and local_id == "0":
            return int(pid)
    return 0


@slurm
@pytest.mark.slow
def test_a_task_killed_before_writing_its_shard_is_a_failed_row_naming_its_log(db):
    args = ("run", "--model", "hangs", "--modes", "default", *TINY, "--timeout", "120")
    parent = _start(*args, *SLURM, "--db", str(db))
    try:
        job = _wait_for(lambda: _arrays(db.parent), "the job")[0]
        os.kill(_wait_for(lambda: _task_process(job), "the task process"), signal.SIGKILL)
        assert parent.wait(timeout=60) == 1  # exit 1: a trial failed
    finally:
        parent.kill()
    error = _trials(db)["error"][0]
    assert f"task {job} ended without a result (FAILED); log: " in error
    assert Path(error.split("log: ")[1]).is_file()


@slurm
@pytest.mark.slow
def test_a_rerun_after_the_waiting_process_was_killed_waits_for_the_live_tasks(db):
    args = ("run", "--model", "hangs", "--modes", "default", *TINY, "--timeout", "15")
    args += (*SLURM, "--db", str(db))
    parent = _start(*args)
    try:
        array = _wait_for(lambda: _arrays(db.parent), "the job array")[0]
        _wait_for(lambda: _running(array), "the task to run")
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    proc = run_cli(*args, plugins=True)
    assert proc.returncode == 1, proc.stderr
    assert (
        f"nothing new to submit (0 already done); waiting for 1 trial(s) still running in "
        f"Slurm job array {array} from an earlier run" in proc.stderr
    )
    assert "1 trial(s) run, 0 already in the store, 1 failed" in proc.stdout
    assert _trials(db)["status"].tolist() == ["timeout"]  # the first task's own result
    assert _arrays(db.parent) == [array]  # nothing submitted again


def _has_gpu_gres() -> bool:
    out = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    return "gpu" in out


@slurm
@pytest.mark.slow
def test_a_gpu_task_on_a_node_without_a_gpu_stores_why(db):
    if not _has_gpu_gres():
        pytest.skip("the cluster declares no GPUs (scripts/start-slurm.sh declares one)")
    proc = run_cli(
        "run", "--model", "mlp", "--modes", "default", "--batch-size", "2", "--iterations", "3",
        "--warmup", "1", "--repeats", "1", "--timeout", "60", *SLURM, "--account", "nnr",
        "--qos", "normal", "--time", "0:05:00", "--mem", "500M", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "1 trial(s) run, 0 already in the store, 1 failed" in proc.stdout
    assert "sees no NVIDIA GPU (CUDA_VISIBLE_DEVICES='0')" in _trials(db)["error"][0]
    script = next((db.parent / "submitit").glob("*/*_submission.sh")).read_text()
    for line in ("--gpus-per-node=1", "--account=nnr", "--qos=normal", "--time=5", "--mem=500M"):
        assert f"#SBATCH {line}" in script, script
