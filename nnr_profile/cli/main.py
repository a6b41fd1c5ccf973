"""The `nnr-profile` command line: parses options, calls the library, prints.

Heavy imports (torch, tensorflow, pandas) happen inside the commands that need them,
so `--help` and trace work stay fast.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from nnr_profile import __version__
from nnr_profile.cli import exits, options
from nnr_profile.core.errors import NnrError, UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnr-profile")
def cli() -> None:
    """Measure what deterministic training costs, per model, framework and GPU.

    \b
    Example:
      nnr-profile run --model resnet50 --gpu all
      nnr-profile report
    """


@cli.command("list")
@click.option(
    "--presets", "only_presets", is_flag=True, help="List the presets and what each sets."
)
def list_command(only_presets: bool) -> None:
    """List workloads, installed frameworks and the devices seen (or the presets).

    \b
    Example:
      nnr-profile list
      nnr-profile list --presets
    """
    if only_presets:
        from nnr_profile.core.presets import PRESETS

        for preset in PRESETS.values():
            click.echo(preset.line())
        return
    from nnr_profile.profiler.collectors.nvml import list_gpus
    from nnr_profile.workloads.adapter import framework_available
    from nnr_profile.workloads.registry import FRAMEWORKS, broken_plugins, load_workloads

    click.echo("Frameworks:")
    for framework in FRAMEWORKS:
        state = "installed" if framework_available(framework) else "not installed"
        click.echo(f"  {framework:6} {state}")
    click.echo("Devices:")
    gpus = list_gpus()
    for gpu in gpus:
        click.echo(
            f"  gpu{gpu['index']}   {gpu['name']} ({gpu['arch']}, sm_{gpu['compute_capability']})"
        )
    if not gpus:
        click.echo("  cpu    no NVIDIA GPU seen; trials run on the CPU")
    click.echo("Workloads (framework/name: input, default batch, arguments):")
    for (framework, name), workload in sorted(load_workloads().items()):
        args = ", ".join(f"{k}={v}" for k, v in workload.params.items())
        shape = "x".join(str(d) for d in workload.input_shape)
        needs = f"; needs {', '.join(workload.requires)}" if workload.requires else ""
        if workload.missing_requirements():
            needs += f" (not installed: {workload.install_hint})"
        click.echo(
            f"  {framework}/{name:20} {workload.input_kind} {shape}, batch "
            f"{workload.default_batch_size}{', ' + args if args else ''}{needs}"
        )
    broken = broken_plugins()
    if broken:
        click.echo("Broken workload plugins (skipped):")
        for line in broken:
            click.echo(f"  {line}")


@cli.command("env")
@click.option("--gpu", "gpu_index", type=int, default=None, help="NVML index of a GPU to describe.")
def env_command(gpu_index: int | None) -> None:
    """Print the environment fingerprint (versions, host, CPU, GPU) as JSON.

    \b
    Example:
      nnr-profile env --gpu 0
    """
    from nnr_profile.profiler.collectors.nvml import list_gpus
    from nnr_profile.profiler.runner.environment import host_fingerprint
    from nnr_profile.workloads.adapter import framework_available, get_adapter
    from nnr_profile.workloads.registry import FRAMEWORKS

    if gpu_index is not None and gpu_index not in {g["index"] for g in list_gpus()}:
        raise UsageError(f"--gpu {gpu_index} does not exist; 'nnr-profile list' shows the GPUs")
    info = host_fingerprint(gpu_index)
    info["gpus"] = list_gpus()
    info["frameworks"] = {
        f: get_adapter(f).environment() if framework_available(f) else None for f in FRAMEWORKS
    }
    click.echo(json.dumps(info, indent=2, default=str))


@cli.command("run")
@options.model(
    default="resnet50", help="Workload name(s), comma-separated (see 'nnr-profile list')."
)
@options.framework(help="torch, tf, jax, or all (every installed framework that has the model).")
@options.gpus()
@options.modes()
@options.measured_options(
    (options.COUNT_TYPE, 3, "Trials per mode and device."),
    100,
    "Keep adding repeats until every cell's 95 % CI is within +-PP percentage points of "
    "its overhead (or --max-repeats is reached).",
    "Machine minutes per cell (one model on one device, all its modes, a pilot of 2 repeats "
    "included): the pilot's estimates choose the iterations per trial and the repeats that "
    "give the narrowest 95 % CI (Kalibera and Jones); not with --repeats, --iterations, "
    "--target-ci, --max-repeats or --preset.",
)
@options.trial_options()
@options.launcher_options()
@options.preset("run")
@options.force()
@options.db()
def run_command(
    model: str,
    framework: str,
    gpu: str,
    modes: str,
    measured: options.MeasuredOptions,
    trial: options.TrialOptions,
    launcher: options.LauncherChoice,
    preset: str | None,
    force: bool,
    db: str,
) -> None:
    """Train each model in each mode on each device and store every iteration time.

    Each trial is a fresh process: mode and seeds, build, warm-up, timed iterations; it
    starts warm (forked from a server that imported the framework once) or cold (a new
    interpreter), as --trial-start says. Re-running the same command resumes: cells
    already done are skipped.

    \b
    Examples:
      nnr-profile run --model resnet50 --gpu all
      nnr-profile run --model resnet18,smallcnn --gpu cpu --batch-size 4 --image-size 32
      nnr-profile run --model calibrate --workload-arg overhead=0.2 --modes default,deterministic
      nnr-profile run --model resnet50 --collector timing,torch-profiler
      nnr-profile run --model resnet50 --launcher slurm --partition gpu --constraint a100
      nnr-profile run --preset study --gpu 0     # the study's overhead protocol
      nnr-profile run --model mlp --gpu cpu --batch-size 4 --budget 1
    """
    from nnr_profile.cli.progress import sweep_progress
    from nnr_profile.studies.measure import measure, plan_measurement

    runner = launcher.make(gpu=gpu)
    sizes = {**measured.sizes(), **trial.sweep_fields()}
    if measured.budget is not None:
        sys.exit(_run_budget(model, framework, modes, runner, measured, sizes, force, db))
    planned = plan_measurement(model, framework, modes, runner, **sizes)
    target = measured.target()
    measurement = measure(planned, db, runner, sweep_progress, target, force, _note, preset)
    sys.exit(_echo_measurement(measurement, db, target))


def _run_budget(
    model: str,
    framework: str,
    modes: str,
    runner: Any,
    measured: options.MeasuredOptions,
    sizes: dict[str, Any],
    force: bool,
    db: str,
) -> int:
    """`run --budget`: the pilot and the design (`studies.budget.run_budget`); the exit status."""
    from nnr_profile.cli.progress import sweep_progress
    from nnr_profile.studies.budget import run_budget
    from nnr_profile.studies.measure import Measurement

    options.refuse_given(
        options.BUDGET_EXCLUDES, "cannot go with {budget}, which chooses repeats and iterations"
    )
    config = measured.budget_config()
    fields = {k: v for k, v in sizes.items() if k not in ("repeats", "iterations")}
    done = run_budget(
        model, framework, modes, runner, config, db, sweep_progress, force, _note, **fields
    )
    status = _echo_measurement(Measurement(outcome=done.outcome), db, None)
    for line in done.summary():
        click.echo(line)
    return status


def _note(text: str) -> None:
    click.echo(text, err=True)


def _echo_measurement(measurement: Any, db: str, target: Any) -> int:
    """Print what a measured sweep did; the exit status: 1 when a trial failed, else 0."""
    if not measurement.waited:
        click.echo(measurement.submission.summary(), err=True)
        click.echo(measurement.submission.next_steps(db))
        return 0
    from nnr_profile.profiler.runner.warm import warm_start_problems

    for problem in warm_start_problems():
        _note(f"warm trial starts failed, so these trials started cold: {problem}")
    outcome = measurement.outcome
    click.echo(
        f"{outcome.ran} trial(s) run, {outcome.skipped} already in the store, "
        f"{len(outcome.failed)} failed; results in {db}"
    )
    if measurement.precision is not None:
        for line in measurement.precision.summary(target):
            click.echo(line)
    for result in outcome.failed:
        cell = result.spec
        _note(
            f"  {result.status}: {cell.framework}/{cell.workload} {cell.mode.name} "
            f"{cell.device_label} repeat {cell.repeat}: {result.error}"
        )
    if outcome.failed:
        _note(
            f"{len(outcome.failed)} trial(s) failed (errors above); "
            f"'nnr-profile report --db {db}' writes them all to failures.csv"
        )
        return 1
    return 0


@cli.command("report")
@options.db(
    type=click.Path(),
    help="SQLite results store, or a folder of shards (e.g. nnr-results/shards).",
)
@options.out(default=str(Path("nnr-results") / "report"), help="Folder for the tables and figures.")
@click.option(
    "--check",
    is_flag=True,
    help="Check the store for damage first (SQLite quick_check: reads every page).",
)
def report_command(db: str, out: str, check: bool) -> None:
    """Write the overhead table (CSV, Markdown, LaTeX) and figure (PNG, PDF) from the store.

    \b
    Example:
      nnr-profile report --db nnr-results/nnr.db --out nnr-results/report
      nnr-profile report --db nnr-results/shards    # the shards of a cluster sweep
    """
    from nnr_profile.reports.export import display_table, markdown_table
    from nnr_profile.reports.report import write_report

    if check:
        from nnr_profile.store.merge import check_stores

        click.echo(f"checked {check_stores(db)} store file(s): no damage found", err=True)
    report = write_report(db, out, check=False if check else None)
    if not report.overhead.empty:
        click.echo(markdown_table(display_table(report.overhead)))
    if report.variability is not None:
        from nnr_profile.reports.variability import display_variability

        click.echo(display_variability(report.variability).to_markdown(index=False))
    for note in report.notes:
        click.echo(f"note: {note}")
    if not report.overhead.empty and report.overhead["noisy"].any():
        click.echo(
            "warning: rows marked noisy have IQR/median above 10 % or trials whose GPU clocks "
            "dropped or throttled (their note says which): more iterations or a quieter, cooler "
            "machine would tighten them",
            err=True,
        )
    if not report.failures.empty:
        click.echo(f"{len(report.failures)} trial(s) failed: see failures.csv", err=True)
    click.echo("Wrote " + ", ".join(str(p) for p in report.files))


def _register_commands() -> None:
    from nnr_profile.cli.analyze import analyze, variability_command, verify_command
    from nnr_profile.cli.describe import describe_command
    from nnr_profile.cli.diagnose import compare_command, gate_command
    from nnr_profile.cli.merge import merge
    from nnr_profile.cli.ops import ops_command
    from nnr_profile.cli.trace import trace

    cli.add_command(trace)
    cli.add_command(merge)
    cli.add_command(verify_command)
    cli.add_command(gate_command)
    cli.add_command(compare_command)
    cli.add_command(ops_command)
    cli.add_command(variability_command)
    cli.add_command(analyze)
    cli.add_command(describe_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one clear line and a documented exit status, never a
    traceback.

    Exit status: what the command documents (0 success; ``run`` 1 when a trial failed;
    ``gate`` 0 pass, 1 fail, 3 inconclusive; ...), 2 for bad input (a usage error or any
    :class:`~nnr_profile.core.errors.NnrError`), 130 when aborted, and 74 (``EX_IOERR`` of
    sysexits.h) when reading or writing failed: standard output on a full device or a closed
    pipe, a full disk under an output file. A write error replaces the command's own status,
    so a gate whose verdict could not be written is never read as a pass. Standard output is
    flushed here, before the status is final, so a failed write is never left to the
    interpreter's exit.
    """
    _register_commands()
    status: int | str | None = 0
    streams = (sys.stdout, sys.stderr)
    try:
        try:
            cli.main(args=argv, prog_name="nnr-profile", standalone_mode=False)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(2)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"nnr-profile: error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except NnrError as exc:
            click.echo(f"nnr-profile: error: {options.error_message(exc, cli)}", err=True)
            sys.exit(2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("nnr-profile: aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        if sys.stdout is not None:  # None: started with standard output closed
            sys.stdout.flush()
    except SystemExit as exc:
        status = exc.code
        if (sys.stdout, sys.stderr) != streams:  # click wraps both after a broken pipe
            exits.silence(sys.stdout)
            exits.give_up(
                f"cannot write the output ({os.strerror(errno.EPIPE)}: its reader closed it)"
            )
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
        except OSError as flush_error:
            exits.io_failed(flush_error)
    except OSError as exc:
        exits.io_failed(exc)
    sys.exit(status)


if __name__ == "__main__":
    main()
