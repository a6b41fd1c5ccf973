"""`nnr-profile describe`: a workload's layer table, parameters, MACs per example and recipe."""

from __future__ import annotations

import json

import click

from nnr_profile.cli import options


@click.command("describe")
@options.model(
    default=None, required=True, show_default=False, help="Workload name (e.g. smallcnn)."
)
@options.framework(help="torch, tf, jax, or all (each framework that has the model).")
@options.image_size()
@options.workload_arg()
@options.preset(
    None,
    help="Describe what a preset runs (see 'nnr-profile list --presets'): its model(s), "
    "framework, image size, workload arguments and recipe; options given here override it.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (a list with --framework all or models)."
)
def describe_command(
    model: str,
    framework: str,
    image_size: int | None,
    workload_args: tuple[str, ...],
    preset: str | None,
    as_json: bool,
) -> None:
    """What a model is: layers, trainable and non-trainable parameters, MACs, input, recipe.

    Builds the model with random weights (nothing is trained or timed); MACs are the forward
    multiply-accumulates of one example (convolutions, dense layers, attention products).
    --model takes a comma-separated list too (a preset's model list), one description each.

    \b
    Examples:
      nnr-profile describe --model smallcnn
      nnr-profile describe --model resnet18_cifar --framework all --json
      nnr-profile describe --model 'MediumCNN 7*7' --framework tf --image-size 64
      nnr-profile describe --preset study-resnet18-cifar100
    """
    from nnr_profile.core.presets import preset_settings
    from nnr_profile.workloads.describe import RECIPE_OVERRIDES, describe
    from nnr_profile.workloads.registry import parse_workload_args

    settings = preset_settings(preset, None) if preset else {}
    recipe = {k: settings[k] for k in RECIPE_OVERRIDES if k in settings}
    args = parse_workload_args(workload_args)
    models = [m.strip() for m in model.split(",") if m.strip()]
    described = [d for name in models for d in describe(name, framework, image_size, args, recipe)]
    if as_json:
        data = [d.to_dict() for d in described]
        single = len(models) == 1 and framework.strip().lower() != "all"
        click.echo(json.dumps(data[0] if single else data, indent=2))
        return
    click.echo("\n\n".join(d.render() for d in described))
