"""Bad values and unusable output paths: one line, exit 2, before any trial and any store."""

import os
import stat

import click
import pytest
from conftest import assert_one_line_usage_error, run_cli

from nnr_profile.cli.main import _register_commands, cli
from nnr_profile.cli.options import error_message
from nnr_profile.core.errors import ParameterError

CPU = ["--gpu", "cpu"]


WORKLOAD_ARGS = [
    ("run", "calibrate", "overhead=abc", "argument overhead must be a finite number"),
    ("run", "calibrate", "overhead=nan", "of at least 0, not nan"),
    ("run", "calibrate", "overhead=inf", "of at least 0, not inf"),
    ("verify", "calibrate", "overhead=abc", "argument overhead must be a finite number"),
    ("run", "calibrate", "layers=0", "layers must be a whole number of at least 1, not 0"),
    ("run", "mlp", "dropout=1.5", "dropout must be a finite number of at least 0 and below 1"),
    ("run", "embedding_lm", "heads=3", "heads must divide d_model (128), not 3"),
    ("verify", "embedding_lm", "heads=3", "heads must divide d_model"),
    ("variability", "mlp", "dropout=abc", "dropout must be a finite number"),
    ("verify", "mlp", "dropout=abc", "dropout must be a finite number"),
    ("analyze grad-snr", "mlp", "dropout=1.5", "dropout must be"),
    ("analyze landscape", "mlp", "norm=group", "norm must be one of none, batch, layer"),
]


@pytest.mark.parametrize(("command", "model", "arg", "fragment"), WORKLOAD_ARGS)
def test_workload_arguments_are_checked_by_every_command(command, model, arg, fragment, tmp_path):
    where = ["--out", str(tmp_path / "out")] if command.startswith("analyze") else []
    if command in ("run", "variability"):
        where = ["--db", str(tmp_path / "results" / "nnr.db")]
    proc = run_cli(*command.split(), "--model", model, "--workload-arg", arg, *CPU, *where)
    assert_one_line_usage_error(proc, fragment)
    assert list(tmp_path.iterdir()) == []


ONE_EXAMPLE_BATCHES = [
    (
        ["variability", "--dataset", "digits", "--batch-size", "4", "--epochs", "2"],
        "--batch-size 4 leaves one as the last batch of each epoch over 1437 training examples",
    ),
    (["run", "--batch-size", "1"], "--batch-size 1 gives only such batches"),
]


@pytest.mark.parametrize(("args", "fragment"), ONE_EXAMPLE_BATCHES, ids=["variability", "run"])
def test_a_batch_norm_that_would_meet_a_batch_of_one_is_refused_before_training(
    args, fragment, tmp_path
):
    db = tmp_path / "results" / "nnr.db"
    model = ["--model", "mlp", "--workload-arg", "norm=batch"]
    proc = run_cli(*args, *model, *CPU, "--db", str(db))
    assert_one_line_usage_error(proc, "torch/mlp with norm=batch cannot train on a batch", fragment)
    assert not db.exists() and list(tmp_path.iterdir()) == []  # no trial, no store rows


OPTIONS = [
    (["run", "--seed", "-1"], ["'--seed'", "from 0 to 4294967295, not -1"]),
    (["run", "--seed", "5000000000"], ["'--seed'", "not 5000000000"]),
    (["variability", "--seed", "4294967295", "--replicas", "3"], ["--seed", "3 replicas"]),
    (["run", "--timeout", "nan"], ["'--timeout'", "finite number above 0, not nan"]),
    (["run", "--timeout", "inf"], ["'--timeout'", "not inf"]),
    (["variability", "--lr", "nan"], ["'--lr'", "not nan"]),
    (["analyze", "landscape", "--span", "nan"], ["'--span'", "not nan"]),
    (["analyze", "grad-snr", "--lr", "-inf"], ["'--lr'", "not -inf"]),
    (["verify", "--batch-size", "0"], ["'--batch-size'", "at least 1, not 0"]),
    (["run", "--image-size", "0"], ["'--image-size'", "at least 1, not 0"]),
    (["run", "--model", "mediumcnn", "--image-size", "32"], ["--image-size must be at least 64"]),
    (["analyze", "landscape", "--setting", "algo"], ["--setting only applies with --db"]),
    (["analyze", "landscape", "--replica", "2"], ["--replica only applies with --db"]),
    (["variability", "--replicas", "0"], ["'--replicas'", "at least 1, not 0"]),
]


@pytest.mark.parametrize(("args", "fragments"), OPTIONS)
def test_numbers_and_option_pairs_are_checked_before_any_trial(args, fragments, tmp_path):
    db = tmp_path / "results" / "nnr.db"
    out = tmp_path / "out"
    where = ["--out", str(out)] if args[0] == "analyze" else []
    if args[0] in ("run", "variability"):
        where = ["--db", str(db)]
    assert_one_line_usage_error(run_cli(*args, *CPU, *where), *fragments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--model", "mlp", "--db", "{file}/nnr.db"],
        ["variability", "--model", "mlp", "--db", "{file}/deeper/nnr.db"],
        ["report", "--out", "{file}/report"],
        ["analyze", "grad-snr", "--out", "{file}/analysis"],
        ["analyze", "landscape", "--out", "{file}/landscape"],
    ],
)
def test_an_output_path_below_a_file_is_one_line(args, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    args = [a.replace("{file}", str(blocker)) for a in args]
    proc = run_cli(*args, *CPU) if args[0] != "report" else run_cli(*args)
    assert_one_line_usage_error(proc, f"{blocker} is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs")
def test_an_os_error_on_the_output_folder_is_one_line(tmp_path):
    proc = run_cli("report", "--db", str(tmp_path / "nnr.db"), "--out", "/sys/nnr-report")
    assert_one_line_usage_error(proc, "--out /sys/nnr-report: cannot create or write in")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_an_output_folder_without_write_permission_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        proc = run_cli("analyze", "grad-snr", "--model", "mlp", *CPU, "--out", str(locked / "x"))
    finally:
        locked.chmod(stat.S_IRWXU)
    assert_one_line_usage_error(proc, "--out", "cannot create or write in")


def test_library_errors_name_parameters_and_the_cli_names_flags():
    _register_commands()
    error = ParameterError("timeout_s", "must be positive; see {learning_rate}")
    assert str(error) == "timeout_s must be positive; see learning_rate"
    assert error_message(error, cli) == "--timeout must be positive; see --lr"
    quoted = ParameterError("workload_args", "{value!r} is odd", value="{x}")
    assert error_message(quoted, cli) == "--workload-arg '{x}' is odd"


def test_each_parameter_name_has_one_flag_in_every_command():
    _register_commands()
    flags: dict[str, set[str]] = {}

    def walk(command: click.Command) -> None:
        for param in command.params:
            if isinstance(param, click.Option):
                flags.setdefault(param.name, set()).add(max(param.opts, key=len))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(cli)
    assert {name: f for name, f in flags.items() if len(f) > 1} == {}


@pytest.mark.slow
def test_a_model_named_twice_runs_once_and_says_so(db):
    proc = run_cli(
        "run", "--model", "mlp,mlp", *CPU, "--db", str(db), "--modes", "default",
        "--iterations", "1", "--warmup", "0", "--repeats", "1", "--batch-size", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "model mlp named more than once: each runs once" in proc.stderr
    assert "1 trial(s) run" in proc.stdout
