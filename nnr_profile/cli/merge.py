"""`nnr-profile merge`: union results stores (cluster shards, other machines) into one store."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=str(Path("nnr-results") / "nnr.db"),
    show_default=True,
    help="Store to merge into (created if absent).",
)
def merge(sources: tuple[str, ...], db: str) -> None:
    """Merge stores, or folders of shards, into one store: one copy of each sweep cell.

    Where both have a cell, a successful run wins over a failed one, else the newer run wins;
    the successful runs kept over newer failures are named. Every store is checked for damage
    first, and a new --db is only created when the merge succeeds. Stores from different
    machines combine into one table across GPU architectures; stores of another schema version
    are refused.

    \b
    Examples:
      nnr-profile merge nnr-results/shards --db nnr-results/nnr.db
      nnr-profile merge p100/nnr.db h100/nnr.db --db all-gpus.db
    """
    from nnr_profile.store.merge import merge_stores

    outcome = merge_stores(sources, db)
    click.echo(f"merged {outcome.sources} store(s) into {db}: {outcome.summary() or 'no rows'}")
    for line in outcome.kept_lines():
        click.echo(line)
