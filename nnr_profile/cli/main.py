"""The `nnr-profile` command line: parses options, calls the library, prints.

Heavy imports (torch, tensorflow, pandas) happen inside the commands that need them,
so `--help` and trace work stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nnr_profile import __version__
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


DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=str(Path("nnr-results") / "nnr.db"),
    show_default=True,
    help="SQLite results store.",
)


@cli.command("list")
def list_command() -> None:
    """List workloads, installed frameworks and the devices seen.

    \b
    Example:
      nnr-profile list
    """
    from nnr_profile.collectors.nvml import list_gpus
    from nnr_profile.workloads.adapter import framework_available
    from nnr_profile.workloads.registry import FRAMEWORKS, load_workloads

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
        click.echo(
            f"  {framework}/{name:20} {workload.input_kind} {shape}, batch "
            f"{workload.default_batch_size}{', ' + args if args else ''}"
        )


@cli.command("env")
@click.option("--gpu", "gpu_index", type=int, default=None, help="NVML index of a GPU to describe.")
def env_command(gpu_index: int | None) -> None:
    """Print the environment fingerprint (versions, host, CPU, GPU) as JSON.

    \b
    Example:
      nnr-profile env --gpu 0
    """
    from nnr_profile.collectors.nvml import list_gpus
    from nnr_profile.runner.environment import host_fingerprint
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
@click.option(
    "--model",
    "-m",
    default="resnet50",
    show_default=True,
    help="Workload name(s), comma-separated (see 'nnr-profile list').",
)
@click.option(
    "--framework",
    "-f",
    default="torch",
    show_default=True,
    help="torch, tf, or all (every installed framework that has the model).",
)
@click.option(
    "--gpu",
    default="all",
    show_default=True,
    help="'all', 'cpu', or NVML GPU indices like 0,2 (one worker per GPU).",
)
@click.option(
    "--modes",
    default="default,deterministic",
    show_default=True,
    help="Comma-separated: default, fast, deterministic, or knobs joined with '+'.",
)
@click.option("--repeats", default=3, show_default=True, help="Trials per mode and device.")
@click.option("--iterations", default=100, show_default=True, help="Timed iterations per trial.")
@click.option(
    "--warmup",
    default=10,
    show_default=True,
    help="Untimed iterations before timing (excluded from every figure).",
)
@click.option("--batch-size", type=int, default=None, help="Override the workload's batch size.")
@click.option("--image-size", type=int, default=None, help="Override the image side (e.g. 32).")
@click.option(
    "--workload-arg",
    "workload_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Argument for the workload builder, repeatable (e.g. overhead=0.2).",
)
@click.option("--seed", default=0, show_default=True, help="Seed fixed in every mode.")
@click.option(
    "--timeout",
    "timeout_s",
    default=1800.0,
    show_default=True,
    help="Seconds before a trial is killed and stored as timed out.",
)
@click.option(
    "--collector",
    "collectors",
    default="timing",
    show_default=True,
    help="Comma-separated: timing plus kernel collectors torch-profiler, tf-profiler, "
    "nsys, nvprof "
    "(each runs in trials of its own; traces kept next to --db in traces/).",
)
@click.option(
    "--launcher",
    type=click.Choice(["local", "slurm", "submitit-local"]),
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
    help="How Slurm tasks start Python, e.g. 'apptainer exec --nv nnr.sif python'.",
)
@click.option("--force", is_flag=True, help="Redo cells already in the store.")
@DB_OPTION
def run_command(
    model: str,
    framework: str,
    gpu: str,
    modes: str,
    repeats: int,
    iterations: int,
    warmup: int,
    batch_size: int | None,
    image_size: int | None,
    workload_args: tuple[str, ...],
    seed: int,
    timeout_s: float,
    collectors: str,
    launcher: str,
    partition: str | None,
    constraint: str | None,
    gpus_per_node: int | None,
    results_dir: str | None,
    no_wait: bool,
    task_python: str | None,
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
    from nnr_profile.collectors.base import parse_collectors
    from nnr_profile.core.modes import parse_modes, same_as_default_note
    from nnr_profile.runner.launchers.cluster import LaunchConfig
    from nnr_profile.runner.sweep import SweepSpec, plan_sweep, run_sweep
    from nnr_profile.workloads.registry import parse_workload_args
    from nnr_profile.workloads.selection import select_workloads

    launch = LaunchConfig(
        launcher=launcher,
        gpu=gpu,
        partition=partition,
        constraint=constraint,
        gpus_per_node=gpus_per_node,
        results_dir=results_dir,
        wait=not no_wait,
        task_python=task_python,
    )
    selection = select_workloads(model, framework)
    choice = launch.devices()
    spec = SweepSpec(
        workloads=selection.workloads,
        modes=tuple(parse_modes(modes)),
        devices=choice.devices,
        repeats=repeats,
        iterations=iterations,
        warmup=warmup,
        batch_size=batch_size,
        image_size=image_size,
        seed=seed,
        workload_args=parse_workload_args(workload_args),
        timeout_s=timeout_s,
        collectors=tuple(parse_collectors(collectors)),
    )
    total = sum(len(cells) for cells in plan_sweep(spec).values())
    skip_notes = [
        same_as_default_note(f, list(spec.modes)) for f in sorted({f for f, _ in spec.workloads})
    ]
    for note in [*selection.notes, choice.note, *skip_notes]:
        if note:
            click.echo(note, err=True)
    if launch.is_cluster:
        from nnr_profile.runner.launchers.cluster import finish_sweep, submit_sweep

        submission = submit_sweep(spec, launch, db, force=force)
        click.echo(submission.summary(), err=True)
        if not launch.wait:
            click.echo(submission.next_steps(db))
            return
        with sweep_progress(total) as on_progress:
            outcome = finish_sweep(submission, db, on_progress)
    else:
        with sweep_progress(total) as on_progress:
            outcome = run_sweep(spec, db, force=force, on_progress=on_progress)
    click.echo(
        f"{outcome.ran} trial(s) run, {outcome.skipped} already in the store, "
        f"{len(outcome.failed)} failed; results in {db}"
    )
    for result in outcome.failed:
        cell = result.spec
        click.echo(
            f"  {result.status}: {cell.framework}/{cell.workload} {cell.mode.name} "
            f"{cell.device_label} repeat {cell.repeat}: {result.error}",
            err=True,
        )


@cli.command("report")
@click.option(
    "--db",
    type=click.Path(),
    default=str(Path("nnr-results") / "nnr.db"),
    show_default=True,
    help="SQLite results store, or a folder of shards (e.g. nnr-results/shards).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=str(Path("nnr-results") / "report"),
    show_default=True,
    help="Folder for the tables and figures.",
)
def report_command(db: str, out: str) -> None:
    """Write the overhead table (CSV, Markdown, LaTeX) and figure (PNG, PDF) from the store.

    \b
    Example:
      nnr-profile report --db nnr-results/nnr.db --out nnr-results/report
      nnr-profile report --db nnr-results/shards    # the shards of a cluster sweep
    """
    from nnr_profile.reports.export import display_table
    from nnr_profile.reports.report import write_report

    report = write_report(db, out)
    if not report.overhead.empty:
        click.echo(display_table(report.overhead).to_markdown(index=False))
    if report.variability is not None:
        from nnr_profile.reports.variability import display_variability

        click.echo(display_variability(report.variability).to_markdown(index=False))
    for note in report.notes:
        click.echo(f"note: {note}")
    if not report.overhead.empty and report.overhead["noisy"].any():
        click.echo(
            "warning: rows marked noisy have IQR/median above 10 %: more iterations or a quieter "
            "machine would tighten them",
            err=True,
        )
    if not report.failures.empty:
        click.echo(f"{len(report.failures)} trial(s) failed: see failures.csv", err=True)
    click.echo("Wrote " + ", ".join(str(p) for p in report.files))


def _register_commands() -> None:
    from nnr_profile.cli.analyze import analyze, variability_command, verify_command
    from nnr_profile.cli.merge import merge
    from nnr_profile.cli.trace import trace

    cli.add_command(trace)
    cli.add_command(merge)
    cli.add_command(verify_command)
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
        click.echo(f"nnr-profile: error: {exc}", err=True)
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
