import json

import pytest
from conftest import TINY, assert_one_line_usage_error, run_cli


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "--model", "resnet5"], ["unknown model 'resnet5'", "resnet50"]),
        (["run", "--model", "smallcnn", "--modes", "default,determinstic"], ["unknown mode"]),
        (["run", "--model", "smallcnn", "--gpu", "7"], ["--gpu 7 does not exist", "GPUs seen"]),
        (["run", "--model", "smallcnn", "--gpu", "x"], ["--gpu 'x'"]),
        (["run", "--model", "smallcnn", "--workload-arg", "bn"], ["KEY=VALUE"]),
        (["run", "--model", "smallcnn", "--workload-arg", "depth=3"], ["depth", "any selected"]),
        (
            ["run", "--model", "smallcnn", "--framework", "mxnet"],
            ["--framework 'mxnet' is not known"],
        ),
        (
            ["run", "--model", "smallcnn", "--iterations", "0"],
            ["'--iterations'", "at least 1, not 0"],
        ),
        (["run", "--model", "smallcnn", "--repeats", "many"], ["'many' is not a whole number"]),
        (["run", "--bogus"], ["No such option"]),
        (["frobnicate"], ["No such command"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, fragments, db):
    proc = run_cli(*args, "--db", str(db)) if args[0] == "run" else run_cli(*args)
    assert_one_line_usage_error(proc, *fragments)
    assert not db.exists()


def test_report_on_a_missing_store_says_so(db):
    assert_one_line_usage_error(run_cli("report", "--db", str(db)), "no results store", "run")


def test_report_on_an_empty_store_says_so(db):
    from nnr_profile.store.database import Store

    Store(db).close()
    assert_one_line_usage_error(run_cli("report", "--db", str(db)), "holds no trials")


@pytest.mark.parametrize("command", ["run", "report", "list", "env", "trace"])
def test_every_command_has_help_with_an_example(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    assert "Example" in proc.stdout


def test_list_shows_workloads_frameworks_and_devices():
    proc = run_cli("list")
    assert proc.returncode == 0
    assert "torch/resnet50" in proc.stdout
    assert "calibrate" in proc.stdout and "overhead=0.2" in proc.stdout
    assert "cpu" in proc.stdout


def test_env_prints_a_json_fingerprint():
    proc = run_cli("env")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["frameworks"]["torch"]["torch"]
    assert info["cpu_model"] and info["python"]
    assert info["gpus"] == []


def test_no_gpu_says_so_once_and_runs_on_the_cpu(db):
    proc = run_cli("run", "--model", "mlp", *TINY, "--gpu", "all", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("no NVIDIA GPU found: running on the CPU") == 1
    assert "2 trial(s) run" in proc.stdout
