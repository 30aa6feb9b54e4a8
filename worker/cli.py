"""``notifier spool status`` and ``notifier spool retry`` (entry point ``notifier.commands``).

The spool is a folder of pending ``*.json`` events (one per file) that the worker's
drainer records; events that can never be recorded are moved to its ``dead/`` subfolder.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from notifier import Settings
from notifier.cli import celery_conf, settings_options

from .spool import Spool

#: How many dead files ``spool status`` names before it only counts.
_LISTED = 20


def _spool(settings: Settings, spool_dir: str | None) -> Spool:
    """The spool the worker uses: --spool-dir, else the app's notifier_spool_dir, else
    ``<instance>/spool`` (the worker's own rule)."""
    configured = spool_dir or celery_conf(click.get_current_context()).get("notifier_spool_dir")
    return Spool(Path(configured) if configured else settings.instance_path / "spool")


def _dead(spool: Spool) -> list[Path]:
    try:
        names = sorted(n for n in os.listdir(spool.dead) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    return [spool.dead / n for n in names if not n.startswith(".")]


def _when(path: Path) -> str:
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


_spool_dir_option = click.option(
    "--spool-dir",
    type=click.Path(file_okay=False),
    help="The spool folder (default: the app's notifier_spool_dir, else instance/spool).",
)


@click.group("spool")
def spool() -> None:
    """Events the worker kept on disk: pending ones and dead ones (never recorded)."""


@spool.command("status")
@settings_options()
@_spool_dir_option
def status(settings: Settings, spool_dir: str | None) -> None:
    """Count pending and dead events, and name the dead ones."""
    folder = _spool(settings, spool_dir)
    pending, dead = folder.pending(), _dead(folder)
    click.echo(f"Spool: {folder.directory}")
    click.echo(f"Pending: {len(pending)} event(s) waiting to be recorded")
    click.echo(f"Dead: {len(dead)} event(s) in {folder.dead}")
    for path in dead[:_LISTED]:
        click.echo(f"  {path.name}  (moved {_when(path)})")
    if len(dead) > _LISTED:
        click.echo(f"  ... and {len(dead) - _LISTED} more")
    if dead:
        click.echo("Fix the cause (see the worker log), then `notifier spool retry`.")


@spool.command("retry")
@settings_options()
@_spool_dir_option
def retry(settings: Settings, spool_dir: str | None) -> None:
    """Move every dead event back to the spool, for the worker to record again."""
    folder = _spool(settings, spool_dir)
    dead = _dead(folder)
    for path in dead:
        os.replace(path, folder.directory / path.name)
    if not dead:
        click.echo(f"No dead events in {folder.dead}.")
        return
    click.echo(
        f"Moved {len(dead)} dead event(s) back to {folder.directory}; "
        "a running worker records them within seconds."
    )
