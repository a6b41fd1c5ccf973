"""The `nnr-profile` command line: parses options, calls the library, prints.

Heavy imports (torch, tensorflow, pandas) happen inside the commands that need them,
so `--help` and trace work stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from nnr_profile import __version__
from nnr_profile.cli import options
from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.profiler.runner.launchers import LAUNCHER_MODULES


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
def list_command() -> None:
    """List workloads, installed frameworks and the devices seen.

    \b
    Example:
      nnr-profile list
    """
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
@options.framework(help="torch, tf, or all (every installed framework that has the model).")
@options.gpus()
@options.modes()
@options.number("--repeats", options.COUNT_TYPE, 3, "Trials per mode and device.")
@options.iterations(default=100, help="Timed iterations per trial.")
@options.number(
    "--warmup",
    options.NON_NEGATIVE_TYPE,
    10,
    "Untimed iterations before timing (excluded from every figure).",
)
@options.trial_options()
@options.collectors()
@click.option(
    "--launcher",
    type=click.Choice(list(LAUNCHER_MODULES)),
    default="local",
    show_default=True,
    help="Where trials run: here, as a Slurm job array (one task and GPU per trial), or "
    "through submitit's local executor (the cluster path on this machine).",
)
@click.option("--partition", default=None, help="Slurm partition (needed with --launcher slurm).")
@click.option("--constraint", default=None, help="Slurm --constraint, e.g. a GPU feature.")
@click.option(
    "--gpus-per-node",
    type=int,
    default=None,
    help="GPUs each Slurm task reserves [default: 1]; the trial uses the first.",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared folder for shards, job logs and traces [default: the folder of --db].",
)
@click.option("--no-wait", is_flag=True, help="Submit, print the job ids and return.")
@click.option(
    "--task-python",
    default=None,
    metavar="COMMAND",
    help="How Slurm tasks start Python, e.g. 'apptainer exec --nv nnr.sif python' (split into "
    "words like a shell and quoted: no ;, |, $VAR).",
)
@click.option("--account", default=None, help="Slurm account to charge (sbatch --account).")
@click.option("--qos", default=None, help="Slurm quality of service (sbatch --qos).")
@click.option(
    "--time",
    "time_limit",
    default=None,
    metavar="TIME",
    help="Slurm time limit per task, e.g. 90 or 1:30:00 [default: --timeout plus 10 min].",
)
@click.option("--mem", default=None, help="Memory per Slurm task, e.g. 16G (sbatch --mem).")
@options.target_ci(
    help="Keep adding repeats until every cell's 95 % CI is within +-PP percentage points of "
    "its overhead (or --max-repeats is reached)."
)
@options.max_repeats()
@options.force()
@options.db()
def run_command(
    model: str,
    framework: str,
    gpu: str,
    modes: str,
    repeats: int,
    iterations: int,
    warmup: int,
    trial: options.TrialOptions,
    collectors: str,
    launcher: str,
    partition: str | None,
    constraint: str | None,
    gpus_per_node: int | None,
    results_dir: str | None,
    no_wait: bool,
    task_python: str | None,
    account: str | None,
    qos: str | None,
    time_limit: str | None,
    mem: str | None,
    target_ci: float | None,
    max_repeats: int | None,
    force: bool,
    db: str,
) -> None:
    """Train each model in each mode on each device and store every iteration time.

    Each trial is a fresh process: mode and seeds, build, warm-up, timed iterations.
    Re-running the same command resumes: cells already done are skipped.

    \b
    Examples:
      nnr-profile run --model resnet50 --gpu all
      nnr-profile run --model resnet18,smallcnn --gpu cpu --batch-size 4 --image-size 32
      nnr-profile run --model calibrate --workload-arg overhead=0.2 --modes default,deterministic
      nnr-profile run --model resnet50 --collector timing,torch-profiler
      nnr-profile run --model resnet50 --launcher slurm --partition gpu --constraint a100
    """
    from nnr_profile.cli.progress import sweep_progress
    from nnr_profile.core.modes import parse_modes, same_as_default_note
    from nnr_profile.core.paths import prepare_output_dir, prepare_output_file
    from nnr_profile.profiler.collectors.base import parse_collectors
    from nnr_profile.profiler.runner.launchers.base import make_launcher
    from nnr_profile.profiler.runner.launchers.cluster import ClusterLauncher
    from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
    from nnr_profile.workloads.selection import select_workloads

    runner = make_launcher(
        launcher,
        gpu=gpu,
        partition=partition,
        constraint=constraint,
        gpus_per_node=gpus_per_node,
        results_dir=results_dir,
        no_wait=no_wait or None,
        task_python=task_python,
        account=account,
        qos=qos,
        time_limit=time_limit,
        mem=mem,
    )
    selection = select_workloads(model, framework)
    choice = runner.devices()
    spec = SweepSpec(
        workloads=selection.workloads,
        modes=tuple(parse_modes(modes)),
        devices=choice.devices,
        repeats=repeats,
        iterations=iterations,
        warmup=warmup,
        **trial.sweep_fields(),
        collectors=tuple(parse_collectors(collectors)),
    )
    total = sum(len(cells) for cells in plan_sweep(spec).values())
    skip_notes = [
        same_as_default_note(f, list(spec.modes)) for f in sorted({f for f, _ in spec.workloads})
    ]
    target = _precision_target(target_ci, max_repeats, spec, no_wait)
    prepare_output_file(db, "db")
    if results_dir:
        prepare_output_dir(results_dir, "results_dir")
    for note in [*selection.notes, choice.note, *skip_notes]:
        if note:
            click.echo(note, err=True)

    def launch(part: SweepSpec) -> Any:
        part_total = total if part is spec else sum(map(len, plan_sweep(part).values()))
        if isinstance(runner, ClusterLauncher):
            submission = runner.submit(part, db, force=force and part is spec)
            click.echo(submission.summary(), err=True)
            with sweep_progress(part_total) as on_progress:
                return runner.finish(submission, db, on_progress)
        with sweep_progress(part_total) as on_progress:
            return runner.launch(part, db, force=force and part is spec, on_progress=on_progress)

    if isinstance(runner, ClusterLauncher) and not runner.waits:
        submission = runner.submit(spec, db, force=force)
        click.echo(submission.summary(), err=True)
        click.echo(submission.next_steps(db))
        return
    precision = None
    if target is None:
        outcome = launch(spec)
    else:
        from nnr_profile.studies.precision import run_to_precision

        precision = run_to_precision(spec, db, target, launch)
        outcome = precision.outcome
    click.echo(
        f"{outcome.ran} trial(s) run, {outcome.skipped} already in the store, "
        f"{len(outcome.failed)} failed; results in {db}"
    )
    if precision is not None:
        for line in precision.summary(target):
            click.echo(line)
    for result in outcome.failed:
        cell = result.spec
        click.echo(
            f"  {result.status}: {cell.framework}/{cell.workload} {cell.mode.name} "
            f"{cell.device_label} repeat {cell.repeat}: {result.error}",
            err=True,
        )
    if outcome.failed:
        click.echo(
            f"{len(outcome.failed)} trial(s) failed (errors above); "
            f"'nnr-profile report --db {db}' writes them all to failures.csv",
            err=True,
        )
        sys.exit(1)


def _precision_target(
    target_ci: float | None, max_repeats: int | None, spec: Any, no_wait: bool
) -> Any:
    """The --target-ci goal (None without it), checked against the other options."""
    from nnr_profile.core.errors import ParameterError
    from nnr_profile.studies.precision import precision_target

    target = precision_target(target_ci, max_repeats, spec.repeats)
    if target is not None:
        if no_wait:
            raise ParameterError("target_ci", "needs the results, so it cannot go with {no_wait}")
        target.check(spec)
    return target


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
    from nnr_profile.core.paths import prepare_output_dir
    from nnr_profile.reports.export import display_table, markdown_table
    from nnr_profile.reports.report import write_report

    prepare_output_dir(out, "out")
    if check:
        from nnr_profile.store.merge import check_stores

        click.echo(f"checked {check_stores(db)} store file(s): no damage found", err=True)
    report = write_report(db, out)
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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one clear line and exit 2 on bad input, never a traceback."""
    _register_commands()
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


if __name__ == "__main__":
    main()
