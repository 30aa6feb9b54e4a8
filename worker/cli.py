"""The worker's CLI plugin: the ``notifier spool`` commands and the ``-A`` app loader.

``notifier spool status`` and ``notifier spool retry`` join the command group through the
``notifier.commands`` entry point group; ``celery_app_conf`` is what every command's
``-A/--app MODULE:APP`` calls, through the ``notifier.app_loaders`` group.

The spool is where the worker keeps events until its drainer records them: a folder of
``*.json`` files (one per event, dead ones in its ``dead/`` subfolder), or a Redis stream
(dead ones in ``<stream>:dead``) when the app sets ``notifier_spool_url``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

import click

from notifier import Settings
from notifier.cli import app_conf, settings_options

from .spool.choice import configured_spool
from .spool.contract import EventSpool, SpoolUnavailable

#: How many dead events ``spool status`` names before it only counts.
_LISTED = 20


def import_celery_app(spec: str) -> Any:
    """The Celery app named by ``module:attribute`` (or ``module``, holding ``app``/``celery``).

    The current folder is put first on the import path, as ``celery -A`` does, so a
    project's own ``worker.py`` is found when the command runs from the project folder.
    """
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="-A") from exc
    names = [attribute] if attribute else ["app", "celery"]
    for name in names:
        app = getattr(module, name, None)
        if app is not None and hasattr(app, "conf"):
            return app
    raise click.BadParameter(
        f"{spec!r} names no Celery app; use MODULE:NAME, e.g. 'worker:app'", param_hint="-A"
    )


def celery_app_conf(spec: str) -> Mapping[str, Any]:
    """The conf of the Celery app named by ``-A`` (the ``notifier.app_loaders`` entry)."""
    conf: Mapping[str, Any] = import_celery_app(spec).conf
    return conf


def _spool(settings: Settings, spool_dir: str | None) -> EventSpool[Any]:
    """The spool the worker uses (``spools.configured_spool``), or the --spool-dir folder."""
    conf = app_conf(click.get_current_context())
    return configured_spool(conf, settings, spool_dir=spool_dir)


_spool_dir_option = click.option(
    "--spool-dir",
    type=click.Path(file_okay=False),
    help="The spool folder (default: the app's spool: notifier_spool_url's Redis stream, "
    "notifier_spool_dir, else instance/spool).",
)


@click.group("spool")
def spool() -> None:
    """Events the worker kept for its drainer: pending ones and dead ones (never recorded)."""


@spool.command("status")
@settings_options()
@_spool_dir_option
def status(settings: Settings, spool_dir: str | None) -> None:
    """Count pending and dead events, and name the dead ones."""
    folder = _spool(settings, spool_dir)
    try:
        pending, dead, _ = folder.stats()
        listed = folder.dead_listing(_LISTED)
    except (OSError, SpoolUnavailable) as exc:
        raise click.ClickException(
            f"cannot read the spool: {exc}; check that it exists and is readable (for a Redis "
            "spool, that the server at notifier_spool_url / NOTIFIER_SPOOL_URL answers)"
        ) from exc
    click.echo(f"Spool: {folder.location}")
    click.echo(f"Pending: {pending} event(s) waiting to be recorded")
    click.echo(f"Dead: {dead} event(s) in {folder.dead_location}")
    for line in listed:
        click.echo(f"  {line}")
    if dead > len(listed):
        click.echo(f"  ... and {dead - len(listed)} more")
    if dead:
        click.echo("Fix the cause (see the worker log), then `notifier spool retry`.")


@spool.command("retry")
@settings_options()
@_spool_dir_option
def retry(settings: Settings, spool_dir: str | None) -> None:
    """Move every dead event back to the spool, for the worker to record again."""
    folder = _spool(settings, spool_dir)
    try:
        moved = folder.retry_dead()
    except (OSError, SpoolUnavailable) as exc:
        raise click.ClickException(f"cannot move dead events back: {exc}") from exc
    if not moved:
        click.echo(f"No dead events in {folder.dead_location}.")
        return
    click.echo(
        f"Moved {moved} dead event(s) back to {folder.location}; "
        "a running worker records them within seconds."
    )
