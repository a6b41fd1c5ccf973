"""`nnr-profile report`: the store -> every registered report table, its files and figures.

`REPORT_TABLES` is the registry (a `core.registry.Registry`): each entry builds one DataFrame
from the `ReportInputs` (a pure function) and hands it to its writers (CSV, Markdown/LaTeX,
figures). `write_report` is a loop over it; an empty table writes nothing. A new table is one
`register_report_table` call. Builders and figures of heavy modules are named by their
``"module:function"`` reference and imported when a report is written (`load_reference`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nnr_profile.core.errors import NnrError
from nnr_profile.core.paths import prepare_output_dir
from nnr_profile.core.registry import Registry, load_reference
from nnr_profile.core.specs import STATUS_OK
from nnr_profile.reports.export import write_csv, write_paper_table, write_tables
from nnr_profile.reports.html import environment_facts, write_html
from nnr_profile.reports.load import ReportInputs, load_inputs, skipped_note, unchecked_note
from nnr_profile.reports.nondeterministic_ops import ops_table, write_ops
from nnr_profile.reports.overhead import failure_table, framework_notes
from nnr_profile.reports.overhead_report import report_ladder, report_overhead
from nnr_profile.store.merge import open_results

Writer = Callable[[pd.DataFrame, Path], list[Path]]


@dataclass(frozen=True)
class ReportTable:
    """One report table: `build` (inputs -> DataFrame, pure) and the `writers` of its files."""

    name: str
    build: Callable[[ReportInputs], pd.DataFrame]
    writers: Sequence[Writer] = ()


REPORT_TABLES: Registry[ReportTable] = Registry("report table")


def register_report_table(name: str, build: Callable, *writers: Writer) -> None:
    """Add (or replace) the report table `name`; `write_report` runs them in this order."""
    REPORT_TABLES.register(name, ReportTable(name, build, writers))


@dataclass
class Report:
    """What `write_report` produced: the tables by registry name, notes and the files written
    (`table_files`: those of each table, by name)."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table_files: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def overhead(self) -> pd.DataFrame:
        """The overhead table (empty when there is none)."""
        return self.tables.get("overhead", pd.DataFrame())

    @property
    def failures(self) -> pd.DataFrame:
        """Trials that did not succeed (empty when none)."""
        return self.tables.get("failures", pd.DataFrame())

    @property
    def variability(self) -> pd.DataFrame | None:
        """The variability table, or None without replicas."""
        table = self.tables.get("variability")
        return None if table is None or table.empty else table

    @property
    def per_class(self) -> pd.DataFrame | None:
        """Per-class accuracy spread, or None without replicas."""
        return self.tables.get("per_class")

    @property
    def subgroups(self) -> pd.DataFrame | None:
        """Subgroup error rates (CelebA), or None."""
        return self.tables.get("subgroups")


def write_report(db_path: str | Path, out_dir: str | Path, check: bool | None = None) -> Report:
    """Read the store (file or folder of shards) at `db_path`; write every table into `out_dir`.
    `check`: as `store.merge.open_results` (None: a store file that is not large is checked).

    Raises NnrError when the store holds nothing to report, or trials but no comparison (after
    writing failures.csv when trials failed).
    """
    new_folders = [f for f in (Path(out_dir), *Path(out_dir).parents) if not f.exists()]
    out = prepare_output_dir(out_dir, "out")
    try:
        with open_results(db_path, check=check) as store:
            inputs = load_inputs(store)
            environment = environment_facts(store)
        if inputs.trials.empty and inputs.replicas.empty and inputs.op_probes.empty:
            raise NnrError(f"the store {db_path} holds no trials yet: run 'nnr-profile run' first")
    except NnrError:
        with contextlib.suppress(OSError):
            for folder in new_folders:
                folder.rmdir()
        raise
    report = Report()
    for entry in REPORT_TABLES.values():
        table = entry.build(inputs)
        report.tables[entry.name] = table
        if table is not None and not table.empty:
            written = [path for writer in entry.writers for path in writer(table, out)]
            report.table_files[entry.name] = written
            report.files += written
    notes = [skipped_note(inputs.skipped), None if inputs.checked else unchecked_note(db_path)]
    notes += preset_notes(report.overhead, report.variability) + recipe_notes(inputs.trials)
    report.notes = framework_notes(report.overhead) + [n for n in notes if n]
    report.files.append(write_html(report, inputs, environment, out, str(db_path)))
    if not inputs.trials.empty and report.overhead.empty and inputs.replicas.empty:
        failed = len(report.failures)
        where = f"; see {out / 'failures.csv'}" if failed else ""
        if inputs.per_trial.empty and not inputs.skipped.empty:
            raise NnrError(
                f"the store {db_path} has no usable iteration time: all "
                f"{len(inputs.skipped)} stored time(s) of its successful timing trials are "
                f"unusable ({skipped_note(inputs.skipped)})"
            )
        raise NnrError(
            f"the store {db_path} has {len(inputs.trials)} trial(s) but no comparison to make: "
            "it needs successful trials of a baseline mode (default or fast) and another mode "
            f"for the same workload and device ({failed} trial(s) failed{where})"
        )
    return report


def preset_notes(*tables: pd.DataFrame | None) -> list[str]:
    """One note per preset that planned rows of these tables (overhead, variability): its name
    and protocol."""
    from nnr_profile.core.presets import PRESETS

    found = [
        value
        for table in tables
        if table is not None and "preset" in table.columns
        for value in table["preset"].dropna()
    ]
    names = sorted({name for value in found for name in str(value).split("/") if name})
    return [
        f"rows with preset {name}: {PRESETS.get(name).description}"
        if name in PRESETS
        else f"rows with preset {name} (not known to this version)"
        for name in names
    ]


def recipe_notes(trials: pd.DataFrame) -> list[str]:
    """One note naming each workload's training recipe when the stored trials ran more than
    one (read from the `recipe` each trial records in knobs_applied); none when all agree."""
    if trials.empty or "knobs_applied" not in trials.columns:
        return []
    recipes: dict[str, set[str]] = {}
    for framework, workload, text in trials[["framework", "workload", "knobs_applied"]].values:
        recipe = _recipe_of(text)
        if recipe:
            recipes.setdefault(f"{framework}/{workload}", set()).add(recipe)
    if len({r for found in recipes.values() for r in found}) < 2:
        return []
    named = "; ".join(f"{name}: {' | '.join(sorted(found))}" for name, found in recipes.items())
    return [f"the rows were trained with different recipes: {named}"]


def _recipe_of(knobs_applied: object) -> str | None:
    """'adam lr 0.001, categorical_crossentropy on softmax' from a trial's knobs_applied JSON."""
    try:
        recipe = json.loads(str(knobs_applied)).get("recipe")
        optimizer, rate = recipe["optimizer"], float(recipe["learning_rate"])
        return f"{optimizer} lr {rate:g}, {recipe['loss']} on {recipe['output']}"
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _overhead(inputs: ReportInputs) -> pd.DataFrame:
    return report_overhead(inputs.per_trial, inputs.trials)


def _ladder(inputs: ReportInputs) -> pd.DataFrame:
    return report_ladder(inputs.per_trial, inputs.trials)


def _write_ladder(table: pd.DataFrame, out: Path) -> list[Path]:
    from nnr_profile.reports.export import ladder_display_table
    from nnr_profile.reports.ladder_plots import ladder_figures
    from nnr_profile.reports.plots import save_figures

    files = write_tables(table, out / "ladder", ladder_display_table)
    return [*files, *save_figures(ladder_figures(table), out / "ladder")]


def _write_overhead(table: pd.DataFrame, out: Path) -> list[Path]:
    files = write_tables(table, out / "overhead")
    notes = framework_notes(table)
    if notes:
        with open(out / "overhead.md", "a", encoding="utf-8") as handle:
            handle.writelines(f"\nNote: {note}\n" for note in notes)
    return [*files, write_paper_table(table, out / "overhead_paper.tex")]


def _overhead_figures(table: pd.DataFrame, out: Path) -> list[Path]:
    from nnr_profile.reports.plots import overhead_figures, save_figures

    return save_figures(overhead_figures(table), out / "overhead")


def _csv(name: str) -> Writer:
    return lambda table, out: [write_csv(table, out / f"{name}.csv")]


def _kernels(inputs: ReportInputs) -> pd.DataFrame:
    from nnr_profile.reports.kernels import kernel_table

    return kernel_table(inputs.kernels)


def _attribution(inputs: ReportInputs) -> pd.DataFrame:
    from nnr_profile.reports.kernels import attribution_table

    return attribution_table(inputs.kernels)


def _attribution_figures(table: pd.DataFrame, out: Path) -> list[Path]:
    from nnr_profile.reports.plots import attribution_figures, save_figures

    return save_figures(attribution_figures(table), out / "attribution")


_VARIABILITY = "nnr_profile.reports.variability"
_VARIABILITY_PLOTS = "nnr_profile.reports.variability_plots"


def _from_replicas(make: str, *fields: str) -> Callable[[ReportInputs], pd.DataFrame]:
    """A table built by `make` (a "module:function" reference) from the replicas and `fields`
    of the inputs: empty without replicas."""

    def build(inputs: ReportInputs) -> pd.DataFrame:
        if inputs.replicas.empty:
            return pd.DataFrame()
        return load_reference(make)(inputs.replicas, *(getattr(inputs, f) for f in fields))

    return build


def _replica_failures(inputs: ReportInputs) -> pd.DataFrame:
    if inputs.replicas.empty:
        return pd.DataFrame()
    failed = inputs.replicas[inputs.replicas["status"] != STATUS_OK]
    columns = ["workload", "dataset", "setting", "replica", "device", "status", "error"]
    return failed[columns].reset_index(drop=True)


def _figure(make: str, stem: str) -> Writer:
    """A writer that draws the table with `make` (a "module:function" reference) into
    `stem`.png/.pdf."""

    def write(table: pd.DataFrame, out: Path) -> list[Path]:
        from nnr_profile.reports.plots import save_figure

        return save_figure(load_reference(make)(table), out / stem)

    return write


register_report_table("overhead", _overhead, _write_overhead, _overhead_figures)
register_report_table("ladder", _ladder, _write_ladder)
register_report_table("failures", lambda i: failure_table(i.trials), _csv("failures"))
register_report_table("skipped_iterations", lambda i: i.skipped, _csv("skipped_iterations"))
register_report_table("kernels", _kernels, _csv("kernels"))
register_report_table("attribution", _attribution, _csv("attribution"), _attribution_figures)
register_report_table(
    "variability",
    _from_replicas(
        f"{_VARIABILITY}:variability_table",
        "predictions",
        "weights",
        "non_trainable_weights",
        "outputs",
    ),
    _csv("variability"),
)
register_report_table(
    "outputs",
    _from_replicas("nnr_profile.reports.multilabel:output_table", "outputs"),
    _csv("outputs"),
    _figure(f"{_VARIABILITY_PLOTS}:output_rates_figure", "output_rates"),
)
register_report_table(
    "per_class",
    _from_replicas(f"{_VARIABILITY}:per_class_table", "predictions"),
    _csv("per_class"),
    _figure(f"{_VARIABILITY_PLOTS}:per_class_std_figure", "per_class_std"),
)
register_report_table(
    "accuracy_points",
    _from_replicas(f"{_VARIABILITY}:accuracy_points"),
    _figure(f"{_VARIABILITY_PLOTS}:accuracy_strip_figure", "variability_accuracy"),
)
register_report_table(
    "subgroups",
    _from_replicas(f"{_VARIABILITY}:subgroup_table", "predictions", "attributes"),
    _csv("subgroups"),
    _figure(f"{_VARIABILITY_PLOTS}:subgroup_rates_figure", "subgroup_rates"),
)
register_report_table("replica_failures", _replica_failures, _csv("replica_failures"))
register_report_table("nondeterministic_ops", lambda i: ops_table(i.op_probes), write_ops)
