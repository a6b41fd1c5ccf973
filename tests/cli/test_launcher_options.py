"""`options.launcher_options`: the launchers' options generated from their config fields."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from nnr_profile.cli import options
from nnr_profile.core.errors import ParameterError


@click.command()
@options.gpus()
@options.launcher_options()
def sweep(gpu: str, launcher: options.LauncherChoice) -> None:
    """A command that only builds its launcher."""
    runner = launcher.make(gpu=gpu)
    click.echo(f"{type(runner).__name__} {runner.config}")


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(sweep, list(args))


def test_options_reach_the_launcher_as_given() -> None:
    result = run("--launcher", "slurm", "--partition", "gpu", "--time", "90", "--no-wait")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("SlurmLauncher SlurmConfig(gpu='all'")
    assert "no_wait=True, partition='gpu'" in result.output and "time_limit='90'" in result.output
    assert run().output.strip() == "LocalLauncher LocalConfig(gpu='all', trial_start='warm')"
    cold = run("--trial-start", "cold").output.strip()
    assert cold == "LocalLauncher LocalConfig(gpu='all', trial_start='cold')"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partition", "gpu"], "--partition only applies to --launcher slurm, not local"),
        (["--no-wait"], "--no-wait only applies to --launcher slurm or submitit-local, not local"),
        (["--launcher", "pbs"], "--launcher 'pbs' is unknown: use local, slurm, submitit-local"),
        (
            ["--launcher", "slurm", "--partition", "gpu", "--gpus-per-node", "0"],
            "--gpus-per-node must be a whole number of at least 1",
        ),
        (["--launcher", "slurm", "--partition", "gpu", "--time", "1h"], "--time '1h' is not"),
    ],
)
def test_a_bad_option_names_its_flag(args: list[str], message: str) -> None:
    result = run(*args)
    assert isinstance(result.exception, ParameterError)
    assert options.error_message(result.exception, sweep).startswith(message)


def test_help_lists_every_launcher_and_option() -> None:
    text = " ".join(run("--help").output.split())
    assert "Available: local, slurm, submitit-local." in text
    for flag in ("--partition", "--results-dir DIRECTORY", "--time TIME", "--task-python COMMAND"):
        assert flag in text
