"""`nnr-profile verify`, `variability` and `analyze`: what non-determinism does to training.

Thin layer: parse options, call the library (profiler/verify.py, profiler/variability.py,
profiler/grad_snr.py, profiler/landscape.py), print. Heavy imports happen inside commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nnr_profile.core.errors import UsageError

_DB = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=str(Path("nnr-results") / "nnr.db"),
    show_default=True,
    help="SQLite results store.",
)
_WORKLOAD_ARG = click.option(
    "--workload-arg",
    "workload_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Argument for the workload builder, repeatable (e.g. norm=batch).",
)
_DATA = [
    click.option(
        "--dataset",
        "-d",
        default="digits",
        show_default=True,
        help="digits (offline, bundled), mnist, fashion-mnist, cifar10, cifar100, celeba "
        "(binary on Blond_Hair; celeba:ATTRIBUTE for another target).",
    ),
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder with the dataset files (torchvision layout); nothing is downloaded.",
    ),
]


def _data_options(func):
    for option in reversed(_DATA):
        func = option(func)
    return func


def _single_device(gpu: str) -> int | None:
    """--gpu for commands that use one device: 'auto' (first GPU, else CPU), 'cpu', or an index."""
    from nnr_profile.runner.sweep import resolve_devices

    text = gpu.strip().lower()
    choice = resolve_devices("all" if text == "auto" else text)
    if len(choice.devices) != 1 and text != "auto":
        raise UsageError(f"--gpu {gpu!r}: this command uses one device; give one index or cpu")
    return choice.devices[0]


@click.command("verify")
@click.option("--model", "-m", default="mlp", show_default=True, help="Workload name.")
@click.option("--framework", "-f", default="torch", show_default=True, help="torch or tf.")
@click.option(
    "--gpu",
    default="auto",
    show_default=True,
    help="'auto' (first GPU, else the CPU), 'cpu', or one NVML GPU index.",
)
@click.option(
    "--modes",
    default="default,deterministic",
    show_default=True,
    help="Comma-separated modes to check (default, fast, deterministic, knob ladders).",
)
@click.option("--runs", default=2, show_default=True, help="Runs per mode (K), each a process.")
@click.option("--iterations", default=10, show_default=True, help="Training iterations per run.")
@click.option("--batch-size", type=int, default=None, help="Override the workload's batch size.")
@click.option("--image-size", type=int, default=None, help="Override the image side (e.g. 32).")
@_WORKLOAD_ARG
@click.option("--seed", default=0, show_default=True, help="Seed, the same for every run.")
@click.option("--timeout", "timeout_s", default=1800.0, show_default=True, help="Seconds per run.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
def verify_command(
    model: str,
    framework: str,
    gpu: str,
    modes: str,
    runs: int,
    iterations: int,
    batch_size: int | None,
    image_size: int | None,
    workload_args: tuple[str, ...],
    seed: int,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Is training bitwise reproducible here? Runs K times per mode and compares bitwise.

    Every run is its own process with the same seeds; per-iteration losses and final weights
    are compared bit for bit. Ops with no deterministic implementation on this device are
    listed (PyTorch: collected as warnings with warn_only=True; TF: the op that raised).
    Exit code 0 when the deterministic mode reproduced, 1 when it did not.

    \b
    Examples:
      nnr-profile verify --model resnet18 --gpu 0
      nnr-profile verify --model mlp --gpu cpu --json
    """
    from nnr_profile.core.modes import parse_modes
    from nnr_profile.core.specs import TrialSpec
    from nnr_profile.studies.verify import VerifySpec, verify
    from nnr_profile.workloads.registry import parse_workload_args
    from nnr_profile.workloads.selection import select_workloads

    selection = select_workloads(model, framework)
    if len(selection.workloads) != 1:
        raise UsageError("verify checks one model at a time: give one --model and --framework")
    fw, name = selection.workloads[0]
    from nnr_profile.workloads.registry import get_workload

    workload = get_workload(fw, name)
    args = workload.validate(parse_workload_args(workload_args), image_size)
    try:
        trial = TrialSpec(
            framework=fw,
            workload=name,
            mode=parse_modes(modes)[0],
            gpu_index=_single_device(gpu),
            batch_size=batch_size or workload.default_batch_size,
            image_size=image_size,
            warmup=0,
            iterations=iterations,
            seed=seed,
            workload_args=args,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    spec = VerifySpec(trial, tuple(parse_modes(modes)), runs, timeout_s)

    def on_run(mode, run, record) -> None:
        if not as_json:
            state = "ok" if record.status == "ok" else f"{record.status}: {record.error}"
            click.echo(f"  {mode.name} run {run + 1}/{runs}: {state}", err=True)

    report = verify(spec, on_run=on_run)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"{fw}/{name} on {report.device}, {runs} runs x {iterations} iterations:")
        for mode, verdict in report.verdicts.items():
            answer = "yes" if verdict.reproducible else "NO"
            line = f"  {mode:14} reproducible: {answer}"
            if verdict.first_divergent_iteration is not None:
                line += f"; runs part at iteration {verdict.first_divergent_iteration}"
            if verdict.max_abs_weight_diff:
                line += f"; max |weight diff| {verdict.max_abs_weight_diff:.3g}"
            click.echo(line)
            if verdict.nondeterministic_ops:
                click.echo(
                    "      no deterministic implementation: "
                    + ", ".join(verdict.nondeterministic_ops)
                )
            for error in verdict.errors[:1]:
                click.echo(f"      failed: {error}")
    if not report.passed:
        sys.exit(1)


@click.command("variability")
@click.option("--model", "-m", default="mlp", show_default=True, help="Workload name.")
@click.option(
    "--framework",
    "-f",
    type=click.Choice(["torch", "tf"]),
    default="torch",
    show_default=True,
    help="Framework that trains the replicas.",
)
@_data_options
@click.option(
    "--settings",
    default="algo+impl,algo,impl,control",
    show_default=True,
    help="Noise settings: algo+impl (nothing fixed), algo (kernels deterministic), impl "
    "(seeds fixed), control (all fixed).",
)
@click.option("--replicas", default=10, show_default=True, help="Replicas per setting.")
@click.option("--epochs", default=30, show_default=True, help="Training epochs per replica.")
@click.option("--batch-size", type=int, default=None, help="Override the workload's batch size.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option(
    "--gpu",
    default="all",
    show_default=True,
    help="'all', 'cpu', or NVML GPU indices like 0,2 (replicas spread over them).",
)
@click.option("--jobs", default=1, show_default=True, help="Replicas at once on each device.")
@_WORKLOAD_ARG
@click.option("--seed", default=0, show_default=True, help="Base seed (replica r adds r).")
@click.option(
    "--timeout", "timeout_s", default=21600.0, show_default=True, help="Seconds per replica."
)
@click.option("--force", is_flag=True, help="Redo replicas already in the store.")
@_DB
def variability_command(
    model: str,
    framework: str,
    dataset: str,
    data_dir: str | None,
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
    db: str,
) -> None:
    """Train R replicas per noise setting to the end and store accuracy, predictions, weights.

    Each replica is its own process; re-running the same command resumes. 'nnr-profile report'
    then writes variability.csv, per_class.csv, subgroups.csv (CelebA) and the figures. On the
    CPU the kernels are deterministic, so 'impl' behaves like 'control' there.

    \b
    Examples:
      nnr-profile variability --model mlp --dataset digits --replicas 5 --epochs 20 --gpu cpu
      nnr-profile variability --model smallcnn --dataset cifar10 --data-dir ~/data \\
          --replicas 10 --settings algo+impl,algo,impl,control --epochs 30
      nnr-profile variability --framework tf --model resnet18 --dataset celeba --data-dir ~/data
    """
    from nnr_profile.runner.sweep import resolve_devices
    from nnr_profile.studies.variability import (
        VariabilitySpec,
        parse_settings,
        plan_variability,
        run_variability,
    )
    from nnr_profile.workloads.adapter import require_framework
    from nnr_profile.workloads.datasets import load_dataset
    from nnr_profile.workloads.registry import parse_workload_args

    require_framework(framework)
    choice = resolve_devices(gpu)
    spec = VariabilitySpec(
        workload=model.strip(),
        framework=framework,
        dataset=dataset,
        settings=parse_settings(settings),
        replicas=replicas,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        devices=choice.devices,
        jobs=jobs,
        seed=seed,
        data_dir=data_dir,
        workload_args=parse_workload_args(workload_args),
        timeout_s=timeout_s,
    )
    total = len(plan_variability(spec))
    load_dataset(dataset, data_dir)  # a missing dataset is one clear line, before any process
    if choice.note:
        click.echo(choice.note, err=True)
    done = 0

    def on_progress(cell, result) -> None:
        nonlocal done
        done += 1
        if result is not None:
            acc = (
                f"accuracy {result.test_accuracy:.4f}"
                if result.status == "ok"
                else f"{result.status}: {result.error}"
            )
            click.echo(
                f"[{done}/{total}] {cell.setting} replica {cell.replica} on "
                f"{cell.device_label}: {acc}",
                err=True,
            )

    outcome = run_variability(spec, db, force=force, on_progress=on_progress)
    click.echo(
        f"{outcome.ran} replica(s) run, {outcome.skipped} already in the store, "
        f"{len(outcome.failed)} failed; results in {db} ('nnr-profile report' summarises)"
    )


@click.group("analyze")
def analyze() -> None:
    """Analyses of training noise: gradient signal-to-noise and loss landscapes.

    \b
    Examples:
      nnr-profile analyze grad-snr --model mlp --dataset digits
      nnr-profile analyze landscape --model mlp --dataset digits
    """


_OUT = click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=str(Path("nnr-results") / "analysis"),
    show_default=True,
    help="Folder for the CSV and figures.",
)


@analyze.command("grad-snr")
@click.option("--model", "-m", default="mlp", show_default=True, help="Workload name.")
@_data_options
@click.option(
    "--modes",
    default="default,deterministic",
    show_default=True,
    help="Modes to measure implementation noise under, each in its own process.",
)
@click.option("--batches", default=32, show_default=True, help="Minibatches B for the SNR.")
@click.option("--batch-size", default=64, show_default=True, help="Minibatch size.")
@click.option("--epochs", default=1, show_default=True, help="Training epochs before measuring.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate for training.")
@click.option("--gpu", default="auto", show_default=True, help="'auto', 'cpu' or one GPU index.")
@_WORKLOAD_ARG
@click.option("--seed", default=0, show_default=True, help="Seed for init, data and batches.")
@_OUT
def grad_snr_command(
    model: str,
    dataset: str,
    data_dir: str | None,
    modes: str,
    batches: int,
    batch_size: int,
    epochs: int,
    learning_rate: float | None,
    gpu: str,
    workload_args: tuple[str, ...],
    seed: int,
    out: str,
) -> None:
    """Per-layer gradient SNR, and implementation noise next to minibatch sampling noise.

    SNR = |mean gradient| / sqrt(variance / B) over B minibatches; the table gives the share
    of weights with SNR < 1 per layer. The same minibatch's gradient is taken twice per mode:
    |difference| / sampling std says whether implementation noise is small or large next
    to sampling noise (exactly 0 where kernels are deterministic, e.g. on the CPU).
    Writes grad_snr.csv and grad_snr.{png,pdf}.

    \b
    Example:
      nnr-profile analyze grad-snr --model lenet --dataset mnist --data-dir ~/data --gpu 0
    """
    from nnr_profile.core.modes import parse_modes
    from nnr_profile.reports.plots import save_figure
    from nnr_profile.reports.variability_plots import grad_snr_figure
    from nnr_profile.studies.grad_snr import GradSnrSpec, run_grad_snr
    from nnr_profile.workloads.datasets import load_dataset
    from nnr_profile.workloads.registry import get_workload, parse_workload_args

    get_workload("torch", model)
    load_dataset(dataset, data_dir)
    spec = GradSnrSpec(
        workload=model,
        dataset=dataset,
        data_dir=data_dir,
        modes=tuple(parse_modes(modes)),
        batches=batches,
        batch_size=batch_size,
        epochs=epochs,
        learning_rate=learning_rate,
        seed=seed,
        gpu_index=_single_device(gpu),
        workload_args=parse_workload_args(workload_args),
    )
    table = run_grad_snr(spec)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "grad_snr.csv", index=False)
    files = [folder / "grad_snr.csv", *save_figure(grad_snr_figure(table), folder / "grad_snr")]
    shown = table[["mode", "layer", "n_weights", "share_snr_below_1", "impl_to_sampling"]]
    click.echo(shown.to_markdown(index=False, floatfmt=".3g"))
    click.echo("Wrote " + ", ".join(str(p) for p in files))


@analyze.command("landscape")
@click.option("--model", "-m", default="mlp", show_default=True, help="Workload name.")
@_data_options
@click.option("--epochs", default=5, show_default=True, help="Training epochs for the centre.")
@click.option("--batch-size", type=int, default=None, help="Override the workload's batch size.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate.")
@click.option("--steps", default=21, show_default=True, help="Grid points per axis.")
@click.option("--span", default=1.0, show_default=True, help="Grid half-width along each axis.")
@click.option("--examples", default=2048, show_default=True, help="Training examples for the loss.")
@click.option("--gpu", default="auto", show_default=True, help="'auto', 'cpu' or one GPU index.")
@_WORKLOAD_ARG
@click.option("--seed", default=0, show_default=True, help="Seed for training and directions.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Centre on a stored variability replica from this store (others are projected).",
)
@click.option("--setting", default=None, help="With --db: the noise setting of the replicas.")
@click.option("--replica", default=0, show_default=True, help="With --db: the centre replica.")
@_OUT
def landscape_command(
    model: str,
    dataset: str,
    data_dir: str | None,
    epochs: int,
    batch_size: int | None,
    learning_rate: float | None,
    steps: int,
    span: float,
    examples: int,
    gpu: str,
    workload_args: tuple[str, ...],
    seed: int,
    db: str | None,
    setting: str | None,
    replica: int,
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
    """
    from nnr_profile.reports.landscape import write_landscape
    from nnr_profile.studies.landscape import LandscapeSpec, compute_landscape
    from nnr_profile.workloads.registry import parse_workload_args

    spec = LandscapeSpec(
        workload=model,
        dataset=dataset,
        data_dir=data_dir,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps=steps,
        span=span,
        examples=examples,
        seed=seed,
        gpu_index=_single_device(gpu),
        workload_args=parse_workload_args(workload_args),
        db=db,
        setting=setting,
        replica=replica,
    )
    landscape = compute_landscape(spec)
    files = write_landscape(landscape.surface, landscape.points, out)
    losses = landscape.surface["loss"]
    click.echo(
        f"centre: {landscape.centre}; loss {losses.min():.4g} to {losses.max():.4g} over "
        f"{len(losses)} grid points; {len(landscape.points)} other replica(s) projected"
    )
    click.echo("Wrote " + ", ".join(str(p) for p in files))
