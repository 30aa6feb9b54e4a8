"""The ``notifier`` command. Other packages add subcommands through the
``notifier.commands`` entry point group (as Flask does with ``flask.commands``)."""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from .config import Settings
from .db import Database
from .errors import ConfigurationError, DuplicateAdminError, ValidationError
from .migrate import upgrade
from .users import create_admin


@click.group(help="notifier: admin notifications and platform alerts for Celery jobs.")
def cli() -> None:
    """Root command group."""


def load_settings() -> Settings:
    """Settings from the environment, or a clean CLI error saying what to set."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    settings = load_settings()
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # a CLI user needs the cause, not a traceback
        raise click.ClickException(
            f"could not migrate {_redacted(settings.database_url)}: {exc}"
        ) from exc
    click.echo(f"Database ready: {_redacted(settings.database_url)}")


@cli.command("create-admin")
@click.argument("email")
@click.option("--password", help="Password; prompted for (hidden, twice) when omitted.")
@click.option("--name", "display_name", help="Display name (default: the email's local part).")
def create_admin_command(email: str, password: str | None, display_name: str | None) -> None:
    """Create an admin who can log in to the web UI."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = load_settings()
    database = Database(settings.database_url)
    try:
        with database.session_scope() as db:
            user = create_admin(db, email=email, password=password, display_name=display_name)
            click.echo(f"Created admin {user.email} (id {user.id})")
    except (ValidationError, DuplicateAdminError) as exc:
        raise click.ClickException(_sentence(exc)) from exc
    finally:
        database.dispose()


def _sentence(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field} {why}" for field, why in exc.errors.items())
    return str(exc)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _load_plugins() -> None:
    for entry in entry_points(group="notifier.commands"):
        if entry.name in cli.commands:
            continue
        try:
            command = entry.load()
        except ImportError as exc:  # a broken plugin must not take the core commands down
            click.echo(f"warning: could not load command {entry.name!r}: {exc}", err=True)
            continue
        cli.add_command(command, entry.name)


def main() -> None:
    """Entry point of the ``notifier`` console script."""
    _load_plugins()
    cli(prog_name="notifier")


if __name__ == "__main__":
    main()
