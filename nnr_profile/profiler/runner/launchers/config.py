"""The built-in launchers' options: one config dataclass per launcher, each field declared once
with its command-line flag and help (`option`), and the checks of its values.

This module imports nothing heavy, so the command line builds its launcher options from it
(`launcher_options`) without importing any launcher. A field whose metadata is an `option`
becomes a command-line option of the launchers whose config has it; a plain field (`gpu`) is
set by the command from an option of its own.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.params import COUNT, require

OPTION_TYPES = (str, int, bool, Path)
"""What an option holds: text, a whole number, a flag (bool) or a folder (Path)."""


def option(cli: str, help: str, type: type = str, metavar: str | None = None) -> dict[str, Any]:
    """A config field's metadata that makes it a command-line option: flag, help and type.

    Use as ``field(default=..., metadata=option("--time", "Slurm time limit ..."))``.
    """
    if type not in OPTION_TYPES:
        raise ValueError(f"option {cli}: type must be one of {OPTION_TYPES}, not {type!r}")
    return {"cli": cli, "help": help, "type": type, "metavar": metavar}


@dataclass(frozen=True)
class LauncherOption:
    """One command-line option of the launchers, read from their config fields.

    `name` is the config field (and the command's parameter); `launchers` those that take it.
    """

    name: str
    flag: str
    type: type
    help: str
    default: Any
    metavar: str | None
    launchers: tuple[str, ...]


@dataclass(frozen=True)
class LocalConfig:
    """Options of the local launcher: the devices of this machine (`gpu`: all, cpu, 0,2) and
    how each trial's process starts (`profiler.runner.warm`)."""

    gpu: str = "all"
    trial_start: str = field(
        default="warm",
        metadata=option(
            "--trial-start",
            "warm: fork each trial from a server that imported the framework once (PyTorch, "
            "JAX; TensorFlow, nsys and nvprof trials start cold); cold: a fresh interpreter per "
            "trial [default: warm].",
            metavar="warm|cold",
        ),
    )

    def __post_init__(self) -> None:
        from nnr_profile.profiler.runner.warm import check_trial_start

        check_trial_start(self.trial_start)


@dataclass(frozen=True)
class ClusterConfig:
    """Options every submitit launcher takes: devices, shared results folder, waiting."""

    gpu: str = "all"
    results_dir: str | Path | None = field(
        default=None,
        metadata=option(
            "--results-dir",
            "Shared folder for shards, job logs and traces [default: the folder of --db].",
            Path,
        ),
    )
    no_wait: bool = field(
        default=False, metadata=option("--no-wait", "Submit, print the job ids and return.", bool)
    )

    def folder(self, db: str | Path) -> Path:
        """The shared results folder: `results_dir`, or the folder of `db`."""
        return Path(self.results_dir) if self.results_dir else Path(db).resolve().parent


@dataclass(frozen=True)
class SubmititLocalConfig(ClusterConfig):
    """Options of the submitit-local launcher: devices, results folder, waiting."""


_TIME = re.compile(r"(?:(\d+)-)?(\d+(?::\d+){0,2})")
_MEM = re.compile(r"\d+[KMGT]?", re.IGNORECASE)


def slurm_minutes(text: str) -> int:
    """Whole minutes in a Slurm time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); ParameterError if bad."""
    match = _TIME.fullmatch(text.strip())
    if match:
        parts = [int(p) for p in match[2].split(":")]
        if match[1] is not None:  # D-H, D-H:M, D-H:M:S
            total_s = int(match[1]) * 86400 + sum(
                p * s for p, s in zip(parts, (3600, 60, 1), strict=False)
            )
        else:  # M, M:S, H:M:S
            scale = {1: (60,), 2: (60, 1), 3: (3600, 60, 1)}[len(parts)]
            total_s = sum(p * s for p, s in zip(parts, scale, strict=True))
        if total_s > 0:
            return math.ceil(total_s / 60)
    raise ParameterError(
        "time_limit",
        "{value!r} is not a Slurm time: use minutes (90), H:M:S (1:30:00) or D-H:M (2-00:00)",
        value=text,
    )


SHELL_SYNTAX = frozenset(";|&$`<>\n")
"""Characters --task-python refuses: they would be shell syntax, which its quoting never runs."""


def task_python_command(text: str) -> str:
    """The --task-python words, each quoted for the sbatch script (no shell syntax runs)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ParameterError(
            "task_python", "{value!r} cannot be split into words: {reason}", value=text, reason=exc
        ) from exc
    if not words:
        raise ParameterError("task_python", "is empty: give the command that starts Python")
    syntax = sorted({c for word in words for c in word if c in SHELL_SYNTAX})
    if syntax:
        raise ParameterError(
            "task_python",
            "{value!r} holds shell syntax ({chars}), which would not run (every word is quoted): "
            "give the command alone, e.g. 'apptainer exec --nv nnr.sif python', and put more "
            "in a script",
            value=text,
            chars=" ".join(syntax),
        )
    return shlex.join(words)


@dataclass(frozen=True)
class SlurmConfig(ClusterConfig):
    """Options of the Slurm launcher, checked together before anything is planned."""

    partition: str | None = field(
        default=None,
        metadata=option("--partition", "Slurm partition (needed with --launcher slurm)."),
    )
    constraint: str | None = field(
        default=None, metadata=option("--constraint", "Slurm --constraint, e.g. a GPU feature.")
    )
    gpus_per_node: int | None = field(
        default=None,
        metadata=option(
            "--gpus-per-node",
            "GPUs each Slurm task reserves [default: 1]; the trial uses the first.",
            int,
        ),
    )
    account: str | None = field(
        default=None, metadata=option("--account", "Slurm account to charge (sbatch --account).")
    )
    qos: str | None = field(
        default=None, metadata=option("--qos", "Slurm quality of service (sbatch --qos).")
    )
    time_limit: str | None = field(
        default=None,
        metadata=option(
            "--time",
            "Slurm time limit per task, e.g. 90 or 1:30:00 [default: --timeout plus 10 min].",
            metavar="TIME",
        ),
    )
    mem: str | None = field(
        default=None, metadata=option("--mem", "Memory per Slurm task, e.g. 16G (sbatch --mem).")
    )
    task_python: str | None = field(
        default=None,
        metadata=option(
            "--task-python",
            "How Slurm tasks start Python, e.g. 'apptainer exec --nv nnr.sif python' (split "
            "into words like a shell and quoted: no ;, |, $VAR).",
            metavar="COMMAND",
        ),
    )

    def __post_init__(self) -> None:
        if not self.partition:
            raise ParameterError(
                "launcher", "slurm needs {partition} (see 'sinfo -s' for the partitions)"
            )
        for name in ("partition", "constraint", "account", "qos"):
            value = getattr(self, name)
            if value is not None and (
                not value.strip() or any(c.isspace() or not c.isprintable() for c in value)
            ):
                raise ParameterError(
                    name, "{value!r} is not a Slurm name (no spaces or control characters)",
                    value=value,
                )  # fmt: skip
        require("gpus_per_node", self.gpus_per_node, COUNT, optional=True)
        if self.on_cpu and self.gpus_per_node is not None:
            raise ParameterError(
                "gpus_per_node", "reserves GPUs but {gpu} cpu runs on the CPU: drop one"
            )
        if self.gpu.strip().lower() not in ("all", "cpu"):
            raise ParameterError(
                "gpu",
                "{value} names GPUs of this machine; with {launcher} slurm each task runs on the "
                "GPU Slurm gives it: use {gpu} all (the default) or {gpu} cpu",
                value=self.gpu,
            )
        if self.time_limit is not None:
            slurm_minutes(self.time_limit)
        if self.mem is not None and not _MEM.fullmatch(self.mem.strip()):
            raise ParameterError(
                "mem", "{value!r} is not a Slurm memory size: use e.g. 16G or 500M", value=self.mem
            )
        if self.task_python is not None:
            task_python_command(self.task_python)

    @property
    def on_cpu(self) -> bool:
        """True when the trials run on the CPU (--gpu cpu)."""
        return self.gpu.strip().lower() == "cpu"


CONFIGS: dict[str, type] = {
    "local": LocalConfig,
    "slurm": SlurmConfig,
    "submitit-local": SubmititLocalConfig,
}
"""Each built-in launcher's config class by launcher name (its `Launcher.config_class`)."""


def launcher_options() -> list[LauncherOption]:
    """The built-in launchers' command-line options, in field order, each with its launchers.

    Read from the config classes alone: no launcher module is imported.
    """
    found: dict[str, LauncherOption] = {}
    for launcher, config in CONFIGS.items():
        for f in fields(config):
            if "cli" not in f.metadata:
                continue
            known = found.get(f.name)
            if known is not None:
                found[f.name] = replace(known, launchers=(*known.launchers, launcher))
                continue
            found[f.name] = LauncherOption(
                name=f.name,
                flag=f.metadata["cli"],
                type=f.metadata["type"],
                help=f.metadata["help"],
                default=None if f.default is MISSING else f.default,
                metavar=f.metadata["metavar"],
                launchers=(launcher,),
            )
    return list(found.values())
