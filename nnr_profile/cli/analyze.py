"""`nnr-profile verify`, `variability` and `analyze`: what non-determinism does to training.

Thin layer: parse options, call the library (nnr_profile.studies: verify, variability,
grad_snr, landscape), print. Heavy imports happen inside commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from nnr_profile.cli import options


@click.command("verify")
@options.model()
@options.framework()
@options.one_gpu()
@options.modes(help="Comma-separated modes to check (default, fast, deterministic, knob ladders).")
@options.number("--runs", options.AT_LEAST_2, 2, "Runs per mode (K), each a process.")
@options.iterations(default=10, help="Training iterations per run.")
@options.trial_options(seed_help="Seed, the same for every run.", timeout_help="Seconds per run.")
@options.trial_start()
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option(
    "--locate",
    is_flag=True,
    help="Hash every module's tensors in each run and name the first (iteration, module, "
    "phase) where the runs part.",
)
@click.option(
    "--resume-at",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Checkpoint at iteration N, resume in a fresh process, compare with an uninterrupted "
    "run (PyTorch).",
)
@click.option(
    "--restore",
    default=None,
    help="With --resume-at: what the checkpoint restores: all, or some of model, optimizer, "
    "rng_torch, rng_cuda, rng_numpy, rng_python, data [default: all].",
)
@click.option(
    "--across",
    is_flag=True,
    help="Compare stored trials of one spec across GPU architectures and framework versions "
    "(give the stores as arguments).",
)
@options.db(
    default=None,
    show_default=False,
    help="Also store the ops without a deterministic implementation found here in this "
    "store (see 'nnr-profile ops').",
)
@click.argument("stores", nargs=-1, type=click.Path())
def verify_command(
    model: str,
    framework: str,
    gpu: str,
    modes: str,
    runs: int,
    iterations: int,
    trial: options.TrialOptions,
    trial_start: str | None,
    as_json: bool,
    locate: bool,
    resume_at: int | None,
    restore: str | None,
    across: bool,
    db: str | None,
    stores: tuple[str, ...],
) -> None:
    """Is training bitwise reproducible here? Runs K times per mode and compares bitwise.

    Every run is its own process with the same seeds; per-iteration losses and final weights
    are compared bit for bit; ops with no deterministic implementation here are listed. Exit
    code 0 when the deterministic mode reproduced, 1 when it did not. --locate names where the
    runs first part (iteration, module, phase); --resume-at N checks a run resumed from a
    checkpoint at iteration N against an uninterrupted one; --across STORES... compares the
    stored trials of each spec between GPU architectures and framework versions.

    \b
    Examples:
      nnr-profile verify --model resnet18 --gpu 0
      nnr-profile verify --model mlp --gpu cpu --json
      nnr-profile verify --model resnet18 --gpu 0 --modes deterministic --locate
      nnr-profile verify --model mlp --gpu cpu --resume-at 5 --restore model,optimizer
      nnr-profile verify --across a100.db h100.db v100.db
    """
    if across or stores:
        from nnr_profile.cli.diagnose import verify_across

        options.refuse_given(VERIFY_RUN_OPTIONS, "does not apply with {across}: it reads stores")
        sys.exit(verify_across(stores, across, as_json))
    from nnr_profile.studies.verify_request import plan_verify, run_verify

    fields = trial.sweep_fields()
    device = options.single_device(gpu)
    resume = resume_at is not None or restore is not None
    if resume:
        options.refuse_given(["trial_start"], "does not apply with {resume_at}: runs start cold")
    start = "cold" if resume else trial_start or "warm"
    planned = plan_verify(
        model, framework, modes, runs, iterations, device, fields, start, locate and not resume
    )
    _notes(planned.notes)
    if resume:
        from nnr_profile.cli.diagnose import verify_resume

        options.refuse_given(["db"], "does not apply with {resume_at}: it stores nothing")
        sys.exit(verify_resume(planned.spec, resume_at, restore, locate, as_json))
    outcome = run_verify(planned.spec, locate, db, None if as_json else _run_printer(runs))
    if outcome.ops_stored is False:
        click.echo("no mode turned determinism on: no ops to store", err=True)
    _echo_verify(outcome.report, planned.spec, locate, as_json)
    sys.exit(0 if outcome.report.passed else 1)


def _notes(notes: Any) -> None:
    for note in filter(None, notes):
        click.echo(note, err=True)


def _run_printer(runs: int) -> Any:
    """An `on_run` callback printing each finished run of `runs` per mode."""

    def on_run(mode: Any, run: int, record: Any) -> None:
        state = "ok" if record.status == "ok" else f"{record.status}: {record.error}"
        click.echo(f"  {mode.name} run {run + 1}/{runs}: {state}", err=True)

    return on_run


VERIFY_RUN_OPTIONS = (
    *("model", "framework", "gpu", "modes", "runs", "iterations", "batch_size"),
    *("image_size", "workload_args", "seed", "timeout_s", "locate", "resume_at", "restore", "db"),
    "trial_start",
)
"""Options of `verify` that only apply to the runs it makes, refused with --across."""


def _echo_verify(report: Any, spec: Any, locate: bool, as_json: bool) -> None:
    """Print the verify verdicts: JSON, or one line per mode with where the runs part."""
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    trial = spec.trial
    click.echo(
        f"{trial.framework}/{trial.workload} on {report.device}, {spec.runs} runs x "
        f"{trial.iterations} iterations:"
    )
    for mode, verdict in report.verdicts.items():
        answer = "yes" if verdict.reproducible else "NO"
        line = f"  {mode:14} reproducible: {answer}"
        if verdict.first_divergent_iteration is not None:
            line += f"; runs part at iteration {verdict.first_divergent_iteration}"
        if verdict.max_abs_weight_diff:
            line += f"; max |weight diff| {verdict.max_abs_weight_diff:.3g}"
        click.echo(line)
        if locate and report.located(mode):
            click.echo(f"      located: {report.located(mode)}")
        if verdict.nondeterministic_ops:
            ops = ", ".join(verdict.nondeterministic_ops)
            click.echo(f"      no deterministic implementation: {ops}")
        for error in verdict.errors[:1]:
            click.echo(f"      failed: {error}")


@click.command("variability")
@options.training_options(framework_help="Framework that trains the replicas.")
@click.option(
    "--settings",
    default="algo+impl,algo,impl,control",
    show_default=True,
    help="Noise settings: algo+impl (nothing fixed), algo (kernels deterministic), impl "
    "(seeds fixed), control (all fixed).",
)
@options.number("--replicas", options.COUNT_TYPE, 10, "Replicas per setting.")
@options.epochs(default=30, help="Training epochs per replica.")
@options.batch_size()
@options.learning_rate()
@options.gpus(help="'all', 'cpu', or NVML GPU indices like 0,2 (replicas spread over them).")
@options.number("--jobs", options.COUNT_TYPE, 1, "Replicas at once on each device.")
@options.workload_arg()
@options.seed(help="Base seed (replica r adds r).")
@options.timeout(default=21600.0, help="Seconds per replica.")
@options.force(help="Redo replicas already in the store.")
@options.preset("variability")
@options.db()
def variability_command(
    training: options.TrainingOptions,
    settings: str,
    replicas: int,
    epochs: int,
    batch_size: int | None,
    learning_rate: float | None,
    gpu: str,
    jobs: int,
    workload_args: tuple[str, ...],
    seed: int,
    timeout_s: float,
    force: bool,
    preset: str | None,
    db: str,
) -> None:
    """Train R replicas per noise setting to the end and store accuracy, predictions, weights.

    Each replica is its own process; re-running resumes. 'nnr-profile report' then writes
    variability.csv, per_class.csv, subgroups.csv (binary CelebA), outputs.csv (celeba:all, the
    study's 40 attributes) and the figures. On the CPU the kernels are deterministic, so 'impl'
    behaves like 'control' there.

    \b
    Examples:
      nnr-profile variability --model mlp --dataset digits --replicas 5 --epochs 20 --gpu cpu
      nnr-profile variability --preset study-smallcnn-cifar10 --data-dir ~/data --gpu 0
      nnr-profile variability --preset study-celeba --data-dir ~/data --gpu 0
    """
    from nnr_profile.profiler.runner.sweep import resolve_devices
    from nnr_profile.studies.variability import (
        VariabilitySpec,
        parse_settings,
        plan_variability,
        run_variability,
    )
    from nnr_profile.workloads.adapter import require_framework
    from nnr_profile.workloads.registry import parse_workload_args

    require_framework(training.framework)
    choice = resolve_devices(gpu)
    spec = VariabilitySpec(
        **training.spec_fields(),
        settings=parse_settings(settings),
        replicas=replicas,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        devices=choice.devices,
        jobs=jobs,
        seed=seed,
        workload_args=parse_workload_args(workload_args),
        timeout_s=timeout_s,
    )
    _notes([choice.note, preset and f"preset {preset}"])
    printer = _replica_printer(len(plan_variability(spec)))
    outcome = run_variability(spec, db, force=force, on_progress=printer, preset=preset)
    click.echo(
        f"{outcome.ran} replica(s) run, {outcome.skipped} already in the store, "
        f"{len(outcome.failed)} failed; results in {db} ('nnr-profile report' summarises)"
    )


def _replica_printer(total: int) -> Any:
    """An `on_progress` callback printing each finished replica of `total`."""
    done = 0

    def on_progress(cell: Any, result: Any) -> None:
        nonlocal done
        done += 1
        if result is None:
            return
        ok = result.status == "ok"
        acc = f"accuracy {result.test_accuracy:.4f}" if ok else f"{result.status}: {result.error}"
        where = f"{cell.setting} replica {cell.replica} on {cell.device_label}"
        click.echo(f"[{done}/{total}] {where}: {acc}", err=True)

    return on_progress


@click.group("analyze")
def analyze() -> None:
    """Analyses of training noise: gradient signal-to-noise and loss landscapes.

    \b
    Examples:
      nnr-profile analyze grad-snr --model mlp --dataset digits
      nnr-profile analyze landscape --model mlp --dataset digits
    """


_OUT = options.out(
    default=str(Path("nnr-results") / "analysis"), help="Folder for the CSV and figures."
)


@analyze.command("grad-snr")
@options.training_options(framework_help="Framework of the model.")
@click.option(
    "--settings",
    default=None,
    help="Noise settings to compare, each over --replicas runs: algo+impl, algo, impl, control "
    "[default: all four, unless --modes].",
)
@options.number("--replicas", options.AT_LEAST_2, None, "Runs per noise setting [default: 3].")
@options.modes(
    default=None,
    show_default=False,
    help="Compare determinism modes instead of noise settings (one run per mode, seeds fixed).",
)
@options.number("--batches", options.AT_LEAST_2, 32, "Minibatches B for the SNR.")
@options.batch_size(default=64, show_default=True, help="Minibatch size.")
@options.epochs(type=options.NON_NEGATIVE_TYPE, default=1, help="Training epochs before measuring.")
@options.learning_rate(help="Learning rate for training.")
@options.one_device_options(
    seed_help="Base seed (replica r of a varying setting adds r); fixes the batches."
)
@_OUT
def grad_snr_command(
    training: options.TrainingOptions,
    settings: str | None,
    replicas: int | None,
    modes: str | None,
    batches: int,
    batch_size: int,
    epochs: int,
    learning_rate: float | None,
    setup: options.OneDeviceOptions,
    out: str,
) -> None:
    """Per-layer gradient SNR, and the noise of each setting next to minibatch sampling noise.

    SNR = |mean gradient| / sqrt(variance / B) over B fixed minibatches; the table gives the
    share of weights with SNR < 1 per layer. Each noise setting (as in 'variability') trains
    --replicas runs, each its own process; the first minibatch's gradient is compared across
    them (replica_to_sampling: std over replicas / sampling std) and taken twice within each
    (impl_to_sampling: 0 where kernels are deterministic, e.g. on the CPU). --modes compares
    determinism modes instead. Writes grad_snr.csv and grad_snr.{png,pdf}.

    \b
    Examples:
      nnr-profile analyze grad-snr --model lenet --dataset mnist --data-dir ~/data --gpu 0
      nnr-profile analyze grad-snr --framework tf --model mlp --settings algo,control
      nnr-profile analyze grad-snr --model mlp --modes default,deterministic
    """
    from nnr_profile.core.modes import parse_modes
    from nnr_profile.core.paths import prepare_output_dir
    from nnr_profile.reports.variability_plots import write_grad_snr
    from nnr_profile.studies.grad_snr import GradSnrSpec, run_grad_snr
    from nnr_profile.studies.variability import NOISE_SETTINGS, parse_settings
    from nnr_profile.workloads.adapter import require_framework
    from nnr_profile.workloads.datasets import load_dataset

    require_framework(training.framework)
    if settings is None and modes is None:
        settings = ",".join(NOISE_SETTINGS)
    spec = GradSnrSpec(
        **training.spec_fields(),
        settings=parse_settings(settings) if settings is not None else (),
        modes=tuple(parse_modes(modes)) if modes is not None else (),
        replicas=replicas,
        batches=batches,
        batch_size=batch_size,
        epochs=epochs,
        learning_rate=learning_rate,
        **setup.spec_fields(),
    )
    load_dataset(training.dataset, training.data_dir)  # a missing one: one line, no process
    folder = prepare_output_dir(out, "out")
    table = run_grad_snr(spec, on_run=_measured)
    files = write_grad_snr(table, folder)
    group = "setting" if spec.settings else "mode"
    columns = [group, "layer", "n_weights", "share_snr_below_1", "impl_to_sampling"]
    if spec.settings:
        columns.append("replica_to_sampling")
    click.echo(table[columns].to_markdown(index=False, floatfmt=".3g"))
    click.echo("Wrote " + ", ".join(str(p) for p in files))


def _measured(run: Any) -> None:
    where = f"{run.setting} replica {run.replica}" if run.setting else f"mode {run.mode.name}"
    click.echo(f"  measured {where}", err=True)


@analyze.command("landscape")
@options.training_options(framework_help="Framework of the model.")
@options.epochs(type=options.NON_NEGATIVE_TYPE, default=5, help="Training epochs for the centre.")
@options.batch_size()
@options.learning_rate(help="Learning rate.")
@options.number("--steps", options.AT_LEAST_3, 21, "Grid points per axis.")
@options.number("--span", options.POSITIVE_TYPE, 1.0, "Grid half-width along each axis.")
@options.number("--examples", options.COUNT_TYPE, 2048, "Training examples for the loss.")
@options.one_device_options(seed_help="Seed for training and directions.")
@options.db(
    default=None,
    show_default=False,
    help="Centre on a stored variability replica from this store (others are projected).",
)
@click.option("--setting", default=None, help="With --db: the noise setting of the replicas.")
@click.option(
    "--replica",
    type=options.NON_NEGATIVE_TYPE,
    default=None,
    help="With --db: the centre replica [default: 0].",
)
@_OUT
def landscape_command(
    training: options.TrainingOptions,
    epochs: int,
    batch_size: int | None,
    learning_rate: float | None,
    steps: int,
    span: float,
    examples: int,
    setup: options.OneDeviceOptions,
    db: str | None,
    setting: str | None,
    replica: int | None,
    out: str,
) -> None:
    """Loss on a 2-D grid around trained weights along two filter-normalised random directions.

    Writes landscape.csv (alpha, beta, loss), landscape_points.csv, and contour and 3-D
    surface figures (PNG, PDF). With --db the centre is a stored replica and the other
    replicas of its setting are marked, projected into the plane.

    \b
    Examples:
      nnr-profile analyze landscape --model mlp --dataset fashion-mnist --data-dir ~/data
      nnr-profile analyze landscape --model mlp --db nnr-results/nnr.db --setting algo+impl
      nnr-profile analyze landscape --framework tf --model smallcnn --dataset digits
    """
    from nnr_profile.core.paths import prepare_output_dir
    from nnr_profile.reports.landscape import write_landscape
    from nnr_profile.studies.landscape import LandscapeSpec, compute_landscape
    from nnr_profile.workloads.adapter import require_framework

    require_framework(training.framework)
    spec = LandscapeSpec(
        **training.spec_fields(),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps=steps,
        span=span,
        examples=examples,
        **setup.spec_fields(),
        db=db,
        setting=setting,
        replica=replica,
    )
    prepare_output_dir(out, "out")
    landscape = compute_landscape(spec)
    files = write_landscape(landscape.surface, landscape.points, out)
    losses = landscape.surface["loss"]
    click.echo(
        f"centre: {landscape.centre}; loss {losses.min():.4g} to {losses.max():.4g} over "
        f"{len(losses)} grid points; {len(landscape.points)} other replica(s) projected"
    )
    click.echo("Wrote " + ", ".join(str(p) for p in files))
