"""`nnr-profile describe`: a workload's layer table, parameters, MACs per example and recipe."""

from __future__ import annotations

import json

import click

from nnr_profile.cli import options


@click.command("describe")
@options.model(
    default=None, required=True, show_default=False, help="Workload name (e.g. smallcnn)."
)
@options.framework(help="torch, tf, or all (each framework that has the model).")
@options.image_size()
@options.workload_arg()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list with --framework all).")
def describe_command(
    model: str,
    framework: str,
    image_size: int | None,
    workload_args: tuple[str, ...],
    as_json: bool,
) -> None:
    """What a model is: layers, trainable and non-trainable parameters, MACs, input, recipe.

    Builds the model with random weights (nothing is trained or timed); MACs are the forward
    multiply-accumulates of one example (convolutions, dense layers, attention products).

    \b
    Examples:
      nnr-profile describe --model smallcnn
      nnr-profile describe --model resnet18_cifar --framework all --json
      nnr-profile describe --model 'MediumCNN 7*7' --framework tf --image-size 64
    """
    from nnr_profile.workloads.describe import describe
    from nnr_profile.workloads.registry import parse_workload_args

    described = describe(model, framework, image_size, parse_workload_args(workload_args))
    if as_json:
        data = [d.to_dict() for d in described]
        click.echo(json.dumps(data if framework.strip().lower() == "all" else data[0], indent=2))
        return
    click.echo("\n\n".join(d.render() for d in described))
