"""Shared command-line options: each flag, its type and its checks, defined once.

Numbers are checked as they are parsed (NaN and infinity never pass; counts are at least 1;
seeds fit PYTHONHASHSEED), so a bad value is a usage error before any trial starts. Each
factory takes click.option keywords to override, e.g. `seed(help="Base seed.")`. Options that
several commands take as a set (`trial_options`, `training_options`, `one_device_options`)
reach the command as one argument, a dataclass of their values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.params import COUNT, NON_NEGATIVE, POSITIVE, SEED, Range

DEFAULT_DB = str(Path("nnr-results") / "nnr.db")


class Number(click.ParamType):
    """A finite number (a whole one for integer ranges) within a `Range`."""

    def __init__(self, allowed: Range) -> None:
        self.allowed = allowed
        self.name = "integer" if allowed.integer else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """`value` as int or float, or a usage error naming the allowed range."""
        if isinstance(value, str):
            text = value.strip()
            try:
                value = int(text) if self.allowed.integer else float(text)
            except ValueError:
                self.fail(f"{text!r} is not {self.allowed.describe()}", param, ctx)
        elif not self.allowed.integer and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not self.allowed.contains(value):
            self.fail(f"must be {self.allowed.describe()}, not {value!r}", param, ctx)
        return value


COUNT_TYPE = Number(COUNT)
NON_NEGATIVE_TYPE = Number(NON_NEGATIVE)
POSITIVE_TYPE = Number(POSITIVE)
SEED_TYPE = Number(SEED)
AT_LEAST_2 = Number(Range(integer=True, min=2))
AT_LEAST_3 = Number(Range(integer=True, min=3))


def _shared(*decls: str, **defaults: Any) -> Callable[..., Callable[[Any], Any]]:
    """An option factory: `decls` and `defaults` fixed here, any keyword overridable per use."""

    def make(**overrides: Any) -> Callable[[Any], Any]:
        return click.option(*decls, **{**defaults, **overrides})

    return make


model = _shared("--model", "-m", default="mlp", show_default=True, help="Workload name.")
framework = _shared(
    "--framework", "-f", default="torch", show_default=True, help="torch, tf or jax."
)
gpus = _shared(
    "--gpu",
    default="all",
    show_default=True,
    help="'all', 'cpu', or NVML GPU indices like 0,2 (one worker per GPU).",
)
one_gpu = _shared(
    "--gpu",
    default="auto",
    show_default=True,
    help="'auto' (first GPU, else the CPU), 'cpu', or one NVML GPU index.",
)
modes = _shared(
    "--modes",
    default="default,deterministic",
    show_default=True,
    help="Comma-separated: default, fast, deterministic, ladder (the cumulative knob ladder), "
    "or knobs joined with '+'.",
)
iterations = _shared("--iterations", type=COUNT_TYPE, show_default=True)
epochs = _shared("--epochs", type=COUNT_TYPE, show_default=True)
batch_size = _shared(
    "--batch-size", type=COUNT_TYPE, default=None, help="Override the workload's batch size."
)
image_size = _shared(
    "--image-size", type=COUNT_TYPE, default=None, help="Override the image side (e.g. 32)."
)
workload_arg = _shared(
    "--workload-arg",
    "workload_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Argument for the workload builder, repeatable (e.g. overhead=0.2); "
    "'nnr-profile list' shows each model's arguments.",
)
learning_rate = _shared(
    "--lr", "learning_rate", type=POSITIVE_TYPE, default=None, help="Peak learning rate."
)
seed = _shared(
    "--seed", type=SEED_TYPE, default=0, show_default=True, help="Seed fixed in every mode."
)
timeout = _shared(
    "--timeout",
    "timeout_s",
    type=POSITIVE_TYPE,
    default=1800.0,
    show_default=True,
    help="Seconds before a trial is killed and stored as timed out.",
)


def trial_start() -> Callable[[Any], Any]:
    """--trial-start for a command without launcher options (`gate`, `verify`): the local
    launcher's option, with its help (`profiler.runner.launchers.config.LocalConfig`)."""
    from nnr_profile.profiler.runner.launchers.config import launcher_options as described

    (local,) = [each for each in described() if each.name == "trial_start"]
    return click.option(
        local.flag, local.name, default=None, metavar=local.metavar, help=local.help
    )


force = _shared("--force", is_flag=True, help="Redo cells already in the store.")
db = _shared(
    "--db",
    type=click.Path(dir_okay=False),
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite results store.",
)
out = _shared("--out", type=click.Path(file_okay=False), show_default=True)
target_ci = _shared("--target-ci", type=POSITIVE_TYPE, default=None, metavar="PP")
max_repeats = _shared(
    "--max-repeats",
    type=AT_LEAST_2,
    default=None,
    help="Most repeats --target-ci may reach [default: 20].",
)


COLLECTOR_HELP = (
    "Comma-separated collectors; timing always runs, each other one in trials of its own "
    "(traces kept next to --db in traces/)."
)


class CollectorOption(click.Option):
    """--collector: its help lists the collector registry, read when the help is shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """The help line, with every registered collector and its description."""
        from nnr_profile.profiler.collectors.base import BROKEN, collector_descriptions

        try:
            found = "; ".join(f"{n}: {d}" for n, d in collector_descriptions().items())
        except NnrError as exc:
            found = str(exc)
        broken = "".join(f" Not loadable: {n} ({why})." for n, why in BROKEN.items())
        self.help = f"{COLLECTOR_HELP} Available: {found}.{broken}"
        return super().get_help_record(ctx)


collectors = _shared(
    "--collector",
    "collectors",
    cls=CollectorOption,
    default="timing",
    show_default=True,
    help=COLLECTOR_HELP,
)


def number(flag: str, kind: Number, default: Any, help: str) -> Callable[[Any], Any]:
    """A numeric option of its own (e.g. --steps), checked by `kind` as it is parsed."""
    return click.option(flag, type=kind, default=default, show_default=True, help=help)


def data(func: Any) -> Any:
    """--dataset and --data-dir: the training data of variability and analysis commands."""
    func = click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder with the dataset files (torchvision layout); nothing is downloaded.",
    )(func)
    return click.option(
        "--dataset",
        "-d",
        default="digits",
        show_default=True,
        help="digits (offline, bundled), mnist, fashion-mnist, cifar10, cifar100, celeba "
        "(binary on Blond_Hair; celeba:ATTRIBUTE for another target; celeba:all: the study's "
        "40 attributes at 128x128).",
    )(func)


@dataclass(frozen=True)
class TrialOptions:
    """What a trial-running command was given by `trial_options` (values as parsed)."""

    batch_size: int | None
    image_size: int | None
    workload_args: tuple[str, ...]
    seed: int
    timeout_s: float

    def parsed_args(self) -> dict[str, Any]:
        """--workload-arg as the workload registry parses it (KEY=VALUE -> {KEY: value})."""
        from nnr_profile.workloads.registry import parse_workload_args

        return parse_workload_args(self.workload_args)

    def sweep_fields(self) -> dict[str, Any]:
        """The `SweepSpec` fields these options set (workload arguments parsed)."""
        return {
            "batch_size": self.batch_size,
            "image_size": self.image_size,
            "seed": self.seed,
            "workload_args": self.parsed_args(),
            "timeout_s": self.timeout_s,
        }


def trial_options(
    seed_help: str | None = None, timeout_help: str | None = None
) -> Callable[[Any], Any]:
    """--batch-size, --image-size, --workload-arg, --seed and --timeout (help overridable),
    given to the command as one `TrialOptions` argument named `trial`."""
    return _grouped(
        "trial",
        TrialOptions,
        batch_size(),
        image_size(),
        workload_arg(),
        seed(**_help(seed_help)),
        timeout(**_help(timeout_help)),
    )


@dataclass(frozen=True)
class MeasuredOptions:
    """What a measured sweep's command was given by `measured_options` (values as parsed)."""

    repeats: int
    iterations: int
    warmup: int
    collectors: str
    target_ci: float | None
    max_repeats: int | None
    budget: float | None = None
    """--budget MINUTES (only where `measured_options` was given `budget_help`)."""

    def sizes(self) -> dict[str, Any]:
        """The `SweepSpec` fields these set (repeats, iterations, warmup, collectors)."""
        return {
            "repeats": self.repeats,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "collectors": self.collectors,
        }

    def target(self) -> Any:
        """The --target-ci goal (`studies.precision.PrecisionTarget`), or None without it."""
        from nnr_profile.studies.precision import precision_target

        return precision_target(self.target_ci, self.max_repeats, self.repeats)

    def budget_config(self) -> Any:
        """The --budget design (`studies.budget.BudgetConfig`), or None without it."""
        from nnr_profile.studies.budget import BudgetConfig

        return None if self.budget is None else BudgetConfig(self.budget)


BUDGET_EXCLUDES = ("repeats", "iterations", "target_ci", "max_repeats", "preset")
"""Options that `--budget` refuses: it chooses the repeats and iterations itself."""


def measured_options(
    repeats: tuple[Number, int, str],
    iterations_default: int,
    target_help: str,
    budget_help: str | None = None,
) -> Callable[[Any], Any]:
    """--repeats (kind, default, help), --iterations, --warmup, --collector, --target-ci,
    --max-repeats and, with `budget_help`, --budget, given to the command as one
    `MeasuredOptions` argument named `measured`."""
    budget = (
        [
            click.option(
                "--budget", type=POSITIVE_TYPE, default=None, metavar="MINUTES", help=budget_help
            )
        ]
        if budget_help
        else []
    )
    return _grouped(
        "measured",
        MeasuredOptions,
        number("--repeats", *repeats),
        iterations(default=iterations_default, help="Timed iterations per trial."),
        number(
            "--warmup",
            NON_NEGATIVE_TYPE,
            10,
            "Untimed iterations before timing (excluded from every figure).",
        ),
        collectors(),
        target_ci(help=target_help),
        max_repeats(),
        *budget,
    )


@dataclass(frozen=True)
class TrainingOptions:
    """What a training study command was given by `training_options`."""

    model: str
    framework: str
    dataset: str
    data_dir: str | None

    def spec_fields(self) -> dict[str, Any]:
        """The study spec's fields these set: workload (the name stripped), framework, data."""
        return {
            "workload": self.model.strip(),
            "framework": self.framework,
            "dataset": self.dataset,
            "data_dir": self.data_dir,
        }


def training_options(framework_help: str) -> Callable[[Any], Any]:
    """--model, --framework (torch or tf), --dataset and --data-dir, given to the command as one
    `TrainingOptions` argument named `training`."""
    return _grouped(
        "training",
        TrainingOptions,
        model(),
        framework(type=click.Choice(["torch", "tf"]), help=framework_help),
        data,
    )


@dataclass(frozen=True)
class OneDeviceOptions:
    """What a one-device analysis command was given by `one_device_options`."""

    gpu: str
    workload_args: tuple[str, ...]
    seed: int

    def spec_fields(self) -> dict[str, Any]:
        """The spec's fields these set: seed, gpu_index (`single_device`), workload_args."""
        from nnr_profile.workloads.registry import parse_workload_args

        return {
            "seed": self.seed,
            "gpu_index": single_device(self.gpu),
            "workload_args": parse_workload_args(self.workload_args),
        }


def one_device_options(seed_help: str) -> Callable[[Any], Any]:
    """--gpu (one device), --workload-arg and --seed, given to the command as one
    `OneDeviceOptions` argument named `setup`."""
    return _grouped("setup", OneDeviceOptions, one_gpu(), workload_arg(), seed(help=seed_help))


def single_device(gpu: str) -> int | None:
    """--gpu for commands that use one device: 'auto' (first GPU, else CPU), 'cpu', or an index."""
    from nnr_profile.profiler.runner.sweep import resolve_devices

    text = gpu.strip().lower()
    choice = resolve_devices("all" if text == "auto" else text)
    if len(choice.devices) != 1 and text != "auto":
        raise ParameterError(
            "gpu", "{value!r}: this command uses one device; give one index or cpu", value=gpu
        )
    return choice.devices[0]


def _help(text: str | None) -> dict[str, str]:
    """A help override for an option factory ({} keeps the factory's own help)."""
    return {"help": text} if text else {}


def _grouped(
    name: str, make: Callable[..., Any], *decorators: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """The option `decorators` in their order; the command gets their values as one argument,
    `name` = `make(**values)`."""

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            kwargs[name] = make(**{param: kwargs.pop(param) for param in params})
            return func(*args, **kwargs)

        stack = list(getattr(func, "__click_params__", []))
        command.__dict__["__click_params__"] = stack  # its own list: click appends to it
        below = len(stack)
        for decorator in reversed(decorators):
            decorator(command)
        params = [param.name for param in stack[below:]]
        return command

    return decorate


def preset(command: str | None, help: str | None = None) -> Callable[[Any], Any]:
    """--preset NAME: a named set of `command`'s options (`core.presets`; None: any command's),
    read before the others; an option given on the command line overrides its preset value."""

    def apply(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        from nnr_profile.core.presets import preset_settings

        name = value.strip()
        ctx.default_map = {**(ctx.default_map or {}), **preset_settings(name, command)}
        return name

    return click.option(
        "--preset",
        default=None,
        metavar="NAME",
        is_eager=True,
        callback=apply,
        help=help
        or "The study's protocol as option values (see 'nnr-profile list --presets'); "
        "options given here override it.",
    )


def refuse_given(names: Sequence[str], problem: str) -> None:
    """Refuse (ParameterError, exit 2) the first of the parameters `names` that the user gave
    to the running command; `problem` says why it does not apply (it may name `{param}`s)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    for name in names:
        if ctx.get_parameter_source(name) in given:
            raise ParameterError(name, problem)


def option_flags(command: click.Command) -> dict[str, str]:
    """Parameter name -> its long flag, over `command` and all its subcommands."""
    flags: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            flags.setdefault(param.name, max(param.opts, key=len))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            for name, flag in option_flags(sub).items():
                flags.setdefault(name, flag)
    return flags


def error_message(exc: NnrError, root: click.Command) -> str:
    """The one-line message for a library error: parameters named by their command-line flags."""
    if isinstance(exc, ParameterError):
        flags = option_flags(root)
        return exc.render(lambda name: flags.get(name, name))
    return " ".join(str(exc).split())


LAUNCHER_HELP = (
    "Where trials run: here, as a Slurm job array (one task and GPU per trial), or through "
    "submitit's local executor (the cluster path on this machine)."
)


class LauncherNameOption(click.Option):
    """--launcher: its help lists the launcher registry (plugins too), read when it is shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """The help line, with every registered launcher and the plugins that do not load."""
        from nnr_profile.profiler.runner.launchers import LAUNCHERS

        names = ", ".join(LAUNCHERS.names())
        broken = "".join(f" Not loadable: {n} ({why})." for n, why in LAUNCHERS.broken.items())
        self.help = f"{LAUNCHER_HELP} Available: {names}.{broken}"
        return super().get_help_record(ctx)


@dataclass(frozen=True)
class LauncherChoice:
    """What `launcher_options` was given: the launcher's name and the options the user set."""

    name: str
    values: dict[str, Any]
    """Config field -> value, only for the launcher options given on the command line."""

    def make(self, **common: Any) -> Any:
        """The configured launcher, `make_launcher(name, **common, **values)` (common: e.g.
        gpu); an option the launcher does not take is a ParameterError naming those that do."""
        from nnr_profile.profiler.runner.launchers.base import make_launcher

        return make_launcher(self.name, **common, **self.values)


def _launcher_choice(launcher: str, **values: Any) -> LauncherChoice:
    """The `LauncherChoice` of parsed values: an option left out (None, flag off) is not given."""
    given = {
        key: value for key, value in values.items() if value is not None and value is not False
    }
    return LauncherChoice(launcher.strip(), given)


def launcher_options() -> Callable[[Any], Any]:
    """--launcher and every launcher's options, generated from the launchers' config fields
    (`profiler.runner.launchers.config`), given to the command as one `LauncherChoice` argument
    named `launcher`; `launcher.make(gpu=gpu)` builds the launcher."""
    from nnr_profile.profiler.runner.launchers.config import launcher_options as described

    decorators: list[Callable[[Any], Any]] = [
        click.option(
            "--launcher",
            cls=LauncherNameOption,
            default="local",
            show_default=True,
            help=LAUNCHER_HELP,
        )
    ]
    kinds: dict[type, dict[str, Any]] = {
        bool: {"is_flag": True, "default": False},
        int: {"type": int},
        Path: {"type": click.Path(file_okay=False)},
        str: {},
    }
    for each in described():
        metavar = {"metavar": each.metavar} if each.metavar else {}
        decorators.append(
            click.option(each.flag, each.name, help=each.help, **kinds[each.type], **metavar)
        )
    return _grouped("launcher", _launcher_choice, *decorators)
