"""The ``notifier`` command.

Other packages add subcommands through the ``notifier.commands`` entry point group (as Flask does
with ``flask.commands``).

Every command finds the database the same way, so its URL is written once: the
``--database-url`` option, else the ``notifier_database_url`` of the app named by
``-A/--app MODULE:APP`` (what the worker itself reads), else ``NOTIFIER_DATABASE_URL``,
else SQLite in the instance folder.

The core does not know what such an app is: a plugin does, through the
``notifier.app_loaders`` entry point group (as the web's ``--app`` is Flask's business). Its
entry is a callable taking the ``MODULE:APP`` text and returning the app's settings mapping,
or raising ``click.BadParameter``; notifier's worker side registers the one for its apps.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from . import __distribution__, __version__
from .accounts.users import (
    create_admin,
    deactivate_admin,
    delete_admin,
    find_admin,
    reactivate_admin,
    set_password,
)
from .config import Settings, parse_age
from .db import Database
from .errors import ConfigurationError, DuplicateAdminError, ValidationError
from .migrate import upgrade
from .models import AdminUser
from .retention import prune
from .retry import generate_key, reseal_runs

F = TypeVar("F", bound=Callable[..., Any])

#: The key of the app's settings every notifier command and the worker read the database URL from.
APP_DATABASE_SETTING = "notifier_database_url"
#: The entry point group whose callable turns ``-A MODULE:APP`` into the app's settings.
APP_LOADERS = "notifier.app_loaders"


@click.group(help="notifier: admin notifications and platform alerts for failed background jobs.")
@click.version_option(__version__, prog_name="notifier")
def cli() -> None:
    """Root command group."""


def load_settings() -> Settings:
    """Settings from the environment, or a clean CLI error saying what to set."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def load_app_conf(spec: str) -> Mapping[str, Any]:
    """The settings of the app named by ``spec``, read by the installed app loader plugin."""
    loaders = sorted(entry_points(group=APP_LOADERS), key=lambda entry: entry.name)
    if not loaders:
        raise click.UsageError(
            f"cannot load the app {spec!r} named by -A: no app loader is installed. Install "
            f"notifier's worker side (`pip install {__distribution__}`; it registers one in the "
            f"{APP_LOADERS!r} entry point group), or give --database-url instead"
        )
    try:
        loader: Callable[[str], Mapping[str, Any]] = loaders[0].load()
    except ImportError as exc:  # a broken plugin: say which, not a traceback
        raise click.ClickException(
            f"could not load the app loader {loaders[0].value}: {exc}"
        ) from exc
    return loader(spec)


def app_conf(ctx: click.Context) -> Mapping[str, Any]:
    """The settings of the app given with ``-A`` (empty without one)."""
    conf: Mapping[str, Any] = ctx.meta.get("notifier.app_conf", {})
    return conf


def resolve_settings(database_url: str | None, app_spec: str | None) -> Settings:
    """Settings with the database URL chosen as the module docstring says."""
    env = dict(os.environ)
    if app_spec:  # loaded even with --database-url: commands read other keys (the spool's)
        conf = load_app_conf(app_spec)
        click.get_current_context().meta["notifier.app_conf"] = conf
        database_url = database_url or conf.get(APP_DATABASE_SETTING) or None
    if database_url:
        env["NOTIFIER_DATABASE_URL"] = database_url
    try:
        return Settings.from_env(env)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def settings_options(*app_flags: str) -> Callable[[F], F]:
    """Add ``--database-url`` and ``-A/--app`` to a command; it receives ``settings``.

    ``app_flags`` renames the app option for a command whose ``--app`` means something
    else (``notifier serve --app`` names a Flask factory).
    """
    flags = app_flags or ("-A", "--app")

    def decorate(command: F) -> F:
        @click.option(
            "--database-url",
            metavar="URL",
            envvar=None,
            help="SQLAlchemy URL of the notifier's database "
            f"(default: the {flags[0]} app's notifier_database_url, else NOTIFIER_DATABASE_URL).",
        )
        @click.option(
            *flags,
            "settings_app",  # not app_spec: `serve --app` already takes that name
            metavar="MODULE:APP",
            help="Your worker's app, loaded through the installed worker plugin; "
            "its notifier_database_url is used.",
        )
        @functools.wraps(command)
        def wrapper(
            *args: Any, database_url: str | None, settings_app: str | None, **kw: Any
        ) -> Any:
            return command(*args, settings=resolve_settings(database_url, settings_app), **kw)

        return wrapper  # type: ignore[return-value]

    return decorate


@cli.command("init-db")
@settings_options()
def init_db(settings: Settings) -> None:
    """Create or upgrade the notifier's tables (safe to run again; leaves others' tables)."""
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # a CLI user needs the cause, not a traceback
        raise click.ClickException(
            f"could not migrate {redacted(settings.database_url)}: {exc}"
        ) from exc
    click.echo(f"Database ready: {redacted(settings.database_url)}")


@cli.command("retry-key")
def retry_key_command() -> None:
    """Print a new key for NOTIFIER_RETRY_KEY (put it first; keep older keys after it)."""
    click.echo(generate_key())


@cli.command("reseal-retries")
@settings_options()
def reseal_retries_command(settings: Settings) -> None:
    """Seal every kept task's arguments again with the first NOTIFIER_RETRY_KEY key."""
    database = Database(settings.database_url)
    try:
        with database.session_scope() as db:
            count = reseal_runs(db)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    click.echo(f"Sealed {count} failed runs' arguments with the first key; older keys may go.")


@cli.command("prune")
@settings_options()
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    help="Age limit, e.g. 90d (days), 36h (hours) or 2w (weeks).",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Delete. Without it, a dry run: counts what would go and deletes nothing.",
)
def prune_command(settings: Settings, older_than: str, apply: bool) -> None:
    """Remove read notifications and resolved alerts older than AGE (a dry run first)."""
    try:
        age = parse_age(older_than)
    except ValidationError as exc:
        raise click.BadParameter(exc.errors["older_than"], param_hint="--older-than") from exc
    database = Database.from_settings(settings)
    try:
        report = prune(database, age, dry_run=not apply)
    finally:
        database.dispose()
    verb = "Removed" if apply else "Would remove"
    click.echo(
        f"{verb} {report.notifications} read notifications and {report.alerts} resolved alerts "
        f"older than {report.cutoff:%Y-%m-%d %H:%M} UTC."
    )
    if not apply:
        click.echo("Nothing was deleted; run again with --apply to delete them.")


@cli.command("create-admin")
@settings_options()
@click.argument("email")
@click.option("--password", help="Password; prompted for (hidden, twice) when omitted.")
@click.option("--name", "display_name", help="Display name (default: the email's local part).")
def create_admin_command(
    settings: Settings, email: str, password: str | None, display_name: str | None
) -> None:
    """Create an admin who can log in to the web UI."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    database = Database.from_settings(settings)
    try:
        with database.session_scope() as db:
            user = create_admin(db, email=email, password=password, display_name=display_name)
            click.echo(f"Created admin {user.email} (id {user.id})")
    except (ValidationError, DuplicateAdminError) as exc:
        raise click.ClickException(_sentence(exc)) from exc
    finally:
        database.dispose()


@cli.command("dispatch")
@settings_options()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--sweep-every", default=5.0, show_default=True, help="Seconds between two looks for due rows."
)
def dispatch_command(settings: Settings, once: bool, sweep_every: float) -> None:
    """Send queued deliveries (email, webhooks, Slack, Teams); runs until Ctrl-C.

    Workers with the plugin installed already do this next to their drainer; run this
    where no such worker runs (a web-only install) or to flush the outbox by hand.
    """
    import signal
    import threading

    from .delivery.dispatch import DispatchSettings, dispatch_batches, run_dispatcher

    try:
        delivery = DispatchSettings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    database = Database.from_settings(settings)
    try:
        if once:
            report = dispatch_batches(database, delivery)
            click.echo(f"Dispatched {report.total} deliveries")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"Dispatching from {redacted(settings.database_url)}; Ctrl-C stops")
        try:
            run_dispatcher(database, delivery, stop=stop, sweep_every=sweep_every)
        except KeyboardInterrupt:
            stop.set()
    finally:
        database.dispose()


@contextmanager
def existing_admin(settings: Settings, email: str) -> Iterator[tuple[Session, AdminUser]]:
    """The admin with ``email`` in a transaction that commits when the block ends.

    For commands: an unknown email, or a ValidationError raised in the block, becomes a
    ClickException that says what to do.
    """
    database = Database.from_settings(settings)
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
@settings_options()
@click.argument("email")
@click.option("--password", help="New password; prompted for (hidden, twice) when omitted.")
def set_password_command(settings: Settings, email: str, password: str | None) -> None:
    """Change an admin's password; every browser they are logged in on is logged out."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with existing_admin(settings, email) as (db, user):
        ended = set_password(db, user, password)
    click.echo(f"Changed the password of {user.email} ({_ended(ended)}).")


def _state_command(
    name: str, change: Callable[[Session, AdminUser], int | None], done: str, help_text: str
) -> None:
    @cli.command(name, help=help_text)
    @settings_options()
    @click.argument("email")
    def command(settings: Settings, email: str) -> None:
        with existing_admin(settings, email) as (db, user):
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
@settings_options()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_admin_command(settings: Settings, email: str, yes: bool) -> None:
    """Delete an admin, their sessions and API tokens (notifications they read stay)."""
    if not yes:
        click.confirm(
            f"Delete admin {email} with their sessions and API tokens? "
            "(`notifier deactivate-admin` keeps the account instead)",
            abort=True,
        )
    with existing_admin(settings, email) as (db, user):
        address = user.email
        delete_admin(db, user)
    click.echo(f"Deleted admin {address}.")


def _sentence(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field} {why}" for field, why in exc.errors.items())
    return str(exc)


def redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
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
