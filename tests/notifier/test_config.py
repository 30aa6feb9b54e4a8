"""Settings from the environment, and engines that behave."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from notifier import ConfigurationError, Settings
from notifier.db import Database, make_engine


def test_defaults_live_in_the_instance_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"NOTIFIER_INSTANCE_PATH": str(tmp_path / "inst")})
    assert settings.database_url == f"sqlite:///{tmp_path / 'inst' / 'notifier.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'inst' / 'broker.db'}"
    assert settings.timezone == "UTC"
    assert settings.live_redis_url is None  # live push needs no Redis by default
    # Reading settings writes no file: the web app makes its key when it needs one
    # (tests/web/test_extension.py::test_app_keeps_a_generated_secret_key).
    assert settings.secret_key is None
    assert settings.spool_url is None  # the worker spools to <instance>/spool
    assert not (tmp_path / "inst" / "secret_key").exists()


def test_explicit_values_win(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "NOTIFIER_INSTANCE_PATH": str(tmp_path),
            "NOTIFIER_DATABASE_URL": "postgresql+psycopg://u@db/x",
            "NOTIFIER_BROKER_URL": "redis://localhost:6379/0",
            "NOTIFIER_SECRET_KEY": "s3cret",
            "NOTIFIER_TIMEZONE": "Europe/Luxembourg",
            "NOTIFIER_SPOOL_URL": "redis://redis:6379/2",
            "NOTIFIER_LIVE_REDIS_URL": "redis://localhost:6379/3",
        }
    )
    assert settings.spool_url == "redis://redis:6379/2"
    assert settings.database_url == "postgresql+psycopg://u@db/x"
    assert settings.live_redis_url == "redis://localhost:6379/3"
    assert settings.broker_url == "redis://localhost:6379/0"
    assert settings.secret_key == "s3cret"
    assert str(settings.tz) == "Europe/Luxembourg"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"NOTIFIER_DATABASE_URL": "not a url"}, "is not a SQLAlchemy URL"),
        ({"NOTIFIER_DATABASE_URL": "mysql://u@h/db"}, "supports 'sqlite' and 'postgresql'"),
        ({"NOTIFIER_TIMEZONE": "Mars/Olympus"}, "is not a known time zone"),
        ({"NOTIFIER_SPOOL_URL": "/var/spool/notifier"}, "set it to redis://host:6379/0"),
        ({"NOTIFIER_LIVE_REDIS_URL": "memcached://x"}, "is not a Redis URL; set it to e.g."),
    ],
)
def test_bad_settings_say_what_to_do(tmp_path: Path, env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env({"NOTIFIER_INSTANCE_PATH": str(tmp_path), **env})


def test_instance_path_that_is_a_file_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="NOTIFIER_DATABASE_URL is not set"):
        Settings.from_env({"NOTIFIER_INSTANCE_PATH": str(blocker / "inst")})


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 15_000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_naive_datetimes_are_refused(db_session: object) -> None:
    from notifier.models import AdminNotification

    note = AdminNotification(
        type="system_info", title="t", message="m", created_at=datetime(2026, 1, 1)
    )
    db_session.add(note)  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="naive datetime"):
        db_session.flush()  # type: ignore[attr-defined]


def test_forked_child_does_not_reuse_the_parents_connection(postgres_url: str) -> None:
    database = Database(postgres_url)
    with database.engine.connect() as conn:
        parent_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            with database.engine.connect() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            os.write(write, str(pid).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    child_backend = int(os.read(read, 64).decode())
    os.close(read)
    assert status == 0
    assert child_backend != parent_pid
    # and the parent's pooled connection still works after the child exits
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == parent_pid
    database.dispose()


def test_idle_connection_killed_by_the_server_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import notifier.db

    database = Database(postgres_url)
    with database.engine.connect() as conn:
        first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    killer = make_engine(postgres_url)
    with killer.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()
    monkeypatch.setattr(notifier.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle
    with database.session_scope() as db:
        second = db.execute(text("SELECT pg_backend_pid()")).scalar()
    assert second != first
    database.dispose()
