"""`nnr-profile gate` and `compare`, and the diagnosis branches of `verify` (--resume-at, --across).

Thin layer: parse options, call the library (runner/sweep, studies/resume, studies/across,
reports/gate, reports/compare), print. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from nnr_profile.cli import options
from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.params import Range

RATIO_TYPE = options.Number(Range(min=0, min_open=True))
FROM_DB_REFUSES = (
    *("gpu", "repeats", "iterations", "warmup", "seed", "timeout_s", "collectors"),
    *("target_ci", "max_repeats", "db", "force", "trial_start"),
)
"""Options of `gate` that only apply to the trials it runs, refused with --from-db."""


@click.command("gate")
@options.model(
    default=None, help="Workload to gate (one name; with --from-db, default: every one stored)."
)
@options.framework()
@options.gpus()
@click.option("--baseline", default="default", show_default=True, help="Baseline mode.")
@click.option("--mode", default="deterministic", show_default=True, help="Mode to gate.")
@click.option(
    "--max-ratio",
    type=RATIO_TYPE,
    required=True,
    help="Largest acceptable time ratio mode/baseline, e.g. 1.30.",
)
@options.measured_options(
    (options.AT_LEAST_2, 5, "Paired repeats (modes interleaved)."),
    50,
    "Add repeats until the 95 % CI is within +-PP percentage points (or --max-repeats).",
)
@options.trial_options()
@options.trial_start()
@click.option(
    "--from-db",
    type=click.Path(),
    default=None,
    metavar="STORE",
    help="Judge this store (file or folder of shards) instead of running trials.",
)
@options.db(help="SQLite results store the gate's trials go into.")
@options.out(default=str(Path("nnr-results") / "gate"), help="Folder for gate.json/.xml/.csv.")
@options.force()
def gate_command(
    model: str | None,
    framework: str,
    gpu: str,
    baseline: str,
    mode: str,
    max_ratio: float,
    measured: options.MeasuredOptions,
    trial: options.TrialOptions,
    trial_start: str | None,
    from_db: str | None,
    db: str,
    out: str,
    force: bool,
) -> None:
    """CI check: fail when determinism costs more than --max-ratio, with statistics.

    Runs the paired A/B (baseline and mode interleaved in each repeat, --repeats or
    --target-ci) into --db, or judges --from-db, and compares the 95 % CI of the time ratio
    mode/baseline with --max-ratio. Exit code 1 when the CI's lower bound is above it, or
    when a trial of the baseline or the mode failed (fail), 0 when its upper bound is below
    it (pass), 3 with a warning when the CI straddles it (inconclusive: more repeats would
    decide), 2 on bad input. Writes gate.json (ratio, CI, n, verdict), gate.xml (JUnit),
    gate.csv, gate.html (one page) and, when a kernel collector ran, the top-10 kernel deltas
    per row (also gate_kernels.csv).

    \b
    Examples:
      nnr-profile gate --model resnet50 --gpu 0 --max-ratio 1.30
      nnr-profile gate --model resnet50 --gpu 0 --max-ratio 1.30 --target-ci 2 \\
          --collector timing,torch-profiler
      nnr-profile gate --model resnet18 --max-ratio 1.25 --from-db nnr-results/nnr.db
    """
    from nnr_profile.cli.progress import sweep_progress
    from nnr_profile.profiler.runner.launchers.base import make_launcher
    from nnr_profile.reports.gate import EXIT_CODES
    from nnr_profile.studies.gate import GateRequest, run_gate

    if from_db is not None:
        options.refuse_given(FROM_DB_REFUSES, "does not apply with {from_db}: it judges that store")
    sizes = {**measured.sizes(), **trial.sweep_fields()}
    request = GateRequest(model, framework, baseline, mode, max_ratio, out, from_db, sizes)
    runner = make_launcher(
        "local", gpu=gpu, **({"trial_start": trial_start} if trial_start else {})
    )
    outcome = run_gate(request, db, runner, sweep_progress, measured.target(), force, on_note=_note)
    _echo_gate(outcome, max_ratio)
    sys.exit(EXIT_CODES[outcome.verdict])


def _echo_gate(outcome: Any, max_ratio: float) -> None:
    """Print the judged rows, their top kernel deltas, the verdict and the files."""
    from nnr_profile.reports.gate import describe_row

    for row in outcome.document["rows"]:
        click.echo(describe_row(row, max_ratio))
        for kernel in row["kernel_deltas"][:3]:
            click.echo(
                f"    {kernel['delta_ms_per_iter']:+.4f} ms/iter {kernel['change']}: "
                f"{kernel['kernel'][:100]}"
            )
    verdict = outcome.verdict
    click.echo(f"gate: {verdict.upper()} (exit {outcome.document['exit_code']})")
    click.echo("Wrote " + ", ".join(str(p) for p in outcome.files))
    if verdict == "inconclusive":
        click.echo(
            f"warning: a 95 % interval straddles {max_ratio:.2f}x (or has fewer than 2 paired "
            "repeats): more repeats (--repeats, --target-ci) would decide",
            err=True,
        )


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.command("compare")
@click.argument("old", type=click.Path())
@click.argument("new", type=click.Path())
@options.out(default=str(Path("nnr-results") / "compare"), help="Folder for the tables and figure.")
@click.option(
    "--group-by",
    default=None,
    metavar="COLUMNS",
    help="Group the Markdown by version columns, comma-separated: old_/new_ + "
    "framework_version, cuda, cudnn, driver (e.g. new_framework_version,new_cuda).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def compare_command(old: str, new: str, out: str, group_by: str | None, as_json: bool) -> None:
    """Did the determinism tax change between two stores (versions, images, GPUs)?

    Per (workload, GPU, mode) the ratio mode/baseline in OLD and in NEW with their 95 % CIs,
    the change NEW/OLD with a 95 % CI (Welch, the stores being independent samples), and
    the versions of each side (framework, CUDA, cuDNN, driver, from the stored
    fingerprints). Writes compare.csv, compare.md, compare.{png,pdf}, compare.html and, when
    both stores have kernel tables, kernel_diff.csv (kernels that appeared, disappeared, got
    slower).
    OLD and NEW are store files or folders of shards.

    \b
    Examples:
      nnr-profile compare torch2.1.db torch2.4.db
      nnr-profile compare old.db new.db --group-by new_framework_version,new_cuda --json
    """
    from nnr_profile.core.paths import prepare_output_dir
    from nnr_profile.reports.compare import (
        GROUPABLE,
        compare_markdown,
        compare_tables,
        kernel_diff,
        load_side,
        write_compare,
    )

    columns = [c.strip() for c in (group_by or "").split(",") if c.strip()]
    unknown = [c for c in columns if c not in GROUPABLE]
    if unknown:
        raise ParameterError(
            "group_by",
            "{value}: not a version column; use {choices}",
            value=", ".join(unknown),
            choices=", ".join(GROUPABLE),
        )
    sides = [load_side(path) for path in (old, new)]
    table = compare_tables(sides[0].overhead, sides[1].overhead)
    if table.empty:
        raise NnrError(
            f"neither {old} nor {new} holds an overhead comparison (successful trials of a "
            "baseline mode and another mode): run 'nnr-profile run' into each first"
        )
    kernels = kernel_diff(sides[0].kernels, sides[1].kernels)
    files = write_compare(table, kernels, prepare_output_dir(out, "out"), columns)
    if as_json:
        _echo_json(_records(table))
        return
    click.echo(compare_markdown(table, columns))
    click.echo("Wrote " + ", ".join(str(p) for p in files))


def _records(table: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN -> None, NumPy scalars -> Python)."""
    return json.loads(table.to_json(orient="records"))


def verify_resume(
    spec: Any, resume_at: int | None, restore: str | None, locate: bool, as_json: bool
) -> int:
    """`verify --resume-at N`: print each mode's resume verdict; exit code 0 when all match."""
    from nnr_profile.studies.resume import ResumeSpec, check_resume, parse_restore

    if resume_at is None:
        raise ParameterError("restore", "only applies together with {resume_at}")
    if locate:
        raise ParameterError("locate", "does not go with {resume_at}: run them one at a time")
    check = ResumeSpec(spec, resume_at, parse_restore(restore))
    verdicts = check_resume(check, on_note=None if as_json else _note)
    if as_json:
        _echo_json({mode: verdict.to_dict() for mode, verdict in verdicts.items()})
    else:
        trial = spec.trial
        click.echo(
            f"{trial.framework}/{trial.workload} on {trial.device_label}: checkpoint at "
            f"iteration {resume_at} of {trial.iterations}, restoring {', '.join(check.restore)}:"
        )
        for mode, verdict in verdicts.items():
            answer = "yes" if verdict.matches else "NO"
            line = f"  {mode:14} resumed run matches: {answer}"
            if verdict.first_divergent_iteration is not None:
                line += f"; parts at iteration {verdict.first_divergent_iteration}"
            click.echo(line)
            click.echo(f"      {verdict.explanation}")
            for error in verdict.errors[:1]:
                click.echo(f"      failed: {error}")
    return 0 if all(v.matches for v in verdicts.values()) else 1


def _note(text: str) -> None:
    click.echo(text, err=True)


def verify_across(stores: tuple[str, ...], across: bool, as_json: bool) -> int:
    """`verify --across STORES...`: the matrix per spec; exit code 0 when every pair agrees."""
    from nnr_profile.studies.across import across_table, load_trials, matrix

    if not across:
        raise ParameterError("across", "is needed to compare stores: verify --across A.db B.db")
    if not stores:
        raise ParameterError("across", "needs the stores to compare: verify --across A.db B.db")
    table = across_table(load_trials(stores))
    if as_json:
        _echo_json(_records(table))
    else:
        for label, grid in matrix(table).items():
            click.echo(f"{label}:")
            click.echo(grid.to_markdown())
            click.echo("")
        if table["env_a"].nunique() < 2 and (table["env_a"] == table["env_b"]).all():
            click.echo(
                "note: each spec was found in one (architecture, framework version) only; "
                "the matrix compares its trials among themselves",
                err=True,
            )
    return 0 if table["reproducible"].fillna(True).astype(bool).all() else 1
