"""The ``notifier`` command. Other packages add subcommands through the
``notifier.commands`` entry point group (as Flask does with ``flask.commands``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points

import click
from sqlalchemy.orm import Session

from .config import Settings
from .db import Database
from .errors import ConfigurationError, DuplicateAdminError, ValidationError
from .migrate import upgrade
from .models import AdminUser
from .users import (
    create_admin,
    deactivate_admin,
    delete_admin,
    find_admin,
    reactivate_admin,
    set_password,
)


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


@contextmanager
def existing_admin(email: str) -> Iterator[tuple[Session, AdminUser]]:
    """The admin with ``email`` in a transaction that commits when the block ends.

    For commands: an unknown email, or a ValidationError raised in the block, becomes a
    ClickException that says what to do.
    """
    database = Database(load_settings().database_url)
    try:
        with database.session_scope() as db:
            user = find_admin(db, email)
            if user is None:
                raise click.ClickException(
                    f"no admin with email {email!r}; check the spelling, "
                    "or create one with `notifier create-admin EMAIL`"
                )
            yield db, user
    except ValidationError as exc:
        raise click.ClickException(_sentence(exc)) from exc
    finally:
        database.dispose()


def _ended(count: int) -> str:
    return f"{count} browser session{'s' if count != 1 else ''} ended"


@cli.command("set-password")
@click.argument("email")
@click.option("--password", help="New password; prompted for (hidden, twice) when omitted.")
def set_password_command(email: str, password: str | None) -> None:
    """Change an admin's password; every browser they are logged in on is logged out."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with existing_admin(email) as (db, user):
        ended = set_password(db, user, password)
    click.echo(f"Changed the password of {user.email} ({_ended(ended)}).")


def _state_command(
    name: str, change: Callable[[Session, AdminUser], int | None], done: str, help_text: str
) -> None:
    @cli.command(name, help=help_text)
    @click.argument("email")
    def command(email: str) -> None:
        with existing_admin(email) as (db, user):
            ended = change(db, user)
        click.echo(done.format(email=user.email) + (f" ({_ended(ended)})." if ended else "."))


_state_command(
    "deactivate-admin",
    deactivate_admin,
    "Deactivated {email}: they can no longer log in or use API tokens "
    "(undo with `notifier reactivate-admin`)",
    "Stop an admin from logging in or using API tokens; ends their sessions at once.",
)
_state_command(
    "reactivate-admin",
    reactivate_admin,
    "Reactivated {email}: they can log in again with their password",
    "Let a deactivated admin log in again (their API tokens work again too).",
)


@cli.command("delete-admin")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_admin_command(email: str, yes: bool) -> None:
    """Delete an admin, their sessions and API tokens (notifications they read stay)."""
    if not yes:
        click.confirm(
            f"Delete admin {email} with their sessions and API tokens? "
            "(`notifier deactivate-admin` keeps the account instead)",
            abort=True,
        )
    with existing_admin(email) as (db, user):
        address = user.email
        delete_admin(db, user)
    click.echo(f"Deleted admin {address}.")


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
