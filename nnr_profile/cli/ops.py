"""`nnr-profile ops`: list and store the ops without a deterministic implementation, per model."""

from __future__ import annotations

import sys

import click

from nnr_profile.cli import options


@click.command("ops")
@options.model(help="Comma-separated workload names (e.g. resnet50,vgg16).")
@options.framework(help="torch, tf, jax, or all (every installed framework that has the model).")
@options.gpus(help="'all' (every GPU, else the CPU), 'cpu', or NVML GPU indices like 0,2.")
@options.iterations(default=2, help="Training iterations per probe (nothing is timed).")
@options.trial_options(timeout_help="Seconds per probe.")
@options.db()
def ops_command(
    model: str,
    framework: str,
    gpu: str,
    iterations: int,
    trial: options.TrialOptions,
    db: str,
) -> None:
    """Which ops have no deterministic implementation? Probe each model and store the answer.

    Each model trains a few iterations in the deterministic mode on each device, in its own
    process, without timing: PyTorch lists every such op (warn_only=True), TensorFlow stops at
    the first one. The ops are stored per model, framework version and GPU architecture;
    'nnr-profile report' writes them as nondeterministic_ops.csv and a model x op table.
    Exit code 1 when a probe failed.

    \b
    Examples:
      nnr-profile ops --model resnet50,vgg16,inception_v3 --gpu 0
      nnr-profile ops --model mlp,smallcnn --framework all --gpu cpu --batch-size 4
    """
    from nnr_profile.core.paths import prepare_output_file
    from nnr_profile.core.specs import STATUS_OK
    from nnr_profile.profiler.runner.sweep import resolve_devices
    from nnr_profile.studies.ops import plan_probes, probe_ops
    from nnr_profile.workloads.selection import select_workloads

    selection = select_workloads(model, framework)
    choice = resolve_devices(gpu)
    cells = plan_probes(
        selection.workloads,
        choice.devices,
        iterations=iterations,
        batch_size=trial.batch_size,
        image_size=trial.image_size,
        seed=trial.seed,
        workload_args=trial.parsed_args(),
    )
    prepare_output_file(db, "db")
    for note in [*selection.notes, choice.note]:
        if note:
            click.echo(note, err=True)

    def show(probe) -> None:
        spec = probe.spec
        where = f"{spec.framework}/{spec.workload} on {spec.device_label}"
        if probe.status != STATUS_OK:
            click.echo(f"{where}: failed: {probe.error}")
            return
        found = ", ".join(probe.ops) or "none"
        partial = " (stopped at the first: later ops unknown)" if not probe.complete else ""
        click.echo(f"{where}: ops without a deterministic implementation: {found}{partial}")

    probes = probe_ops(cells, db, trial.timeout_s, on_probe=show)
    click.echo(f"Stored {len(probes)} probe(s) in {db}; 'nnr-profile report' tabulates them")
    if any(probe.status != STATUS_OK for probe in probes):
        sys.exit(1)
