"""The ``notifier`` command: init-db and create-admin, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier import Database, admin_notification_service
from notifier.accounts.sessions import session_admin, start_session
from notifier.accounts.users import authenticate
from notifier.models import AdminSession, AdminUser
from tests.receivers import MailSink


def _notifier(
    tmp_path: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "NOTIFIER_INSTANCE_PATH": str(tmp_path / "instance"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "notifier.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        cwd=tmp_path,
        timeout=120,
    )


@pytest.fixture
def cli_db(tmp_path: Path) -> Database:
    result = _notifier(tmp_path, "init-db")
    assert result.returncode == 0, result.stderr
    assert "Database ready" in result.stdout
    return Database(f"sqlite:///{tmp_path / 'instance' / 'notifier.db'}")


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _notifier(tmp_path, "--help")
    assert result.returncode == 0
    assert "init-db" in result.stdout and "create-admin" in result.stdout


def test_init_db_is_safe_twice(tmp_path: Path, cli_db: Database) -> None:
    result = _notifier(tmp_path, "init-db")
    assert result.returncode == 0, result.stderr


def test_create_admin_hashes_the_password(tmp_path: Path, cli_db: Database) -> None:
    result = _notifier(tmp_path, "create-admin", "Ops@Example.com", "--password", "hunter2hunter2")
    assert result.returncode == 0, result.stderr
    with cli_db.session_scope() as db:
        user = db.scalars(select(AdminUser)).one()
        assert user.email == "Ops@Example.com"
        assert "hunter2" not in user.password_hash
        assert authenticate(db, "ops@example.com", "hunter2hunter2") is not None
        assert authenticate(db, "ops@example.com", "wrong") is None


def test_create_admin_prompts_when_password_is_omitted(tmp_path: Path, cli_db: Database) -> None:
    result = _notifier(
        tmp_path, "create-admin", "a@example.com", stdin="pass-word-1\npass-word-1\n"
    )
    assert result.returncode == 0, result.stderr
    with cli_db.session_scope() as db:
        assert authenticate(db, "a@example.com", "pass-word-1") is not None


def test_duplicate_email_is_refused_case_insensitively(tmp_path: Path, cli_db: Database) -> None:
    assert (
        _notifier(tmp_path, "create-admin", "a@example.com", "--password", "12345678").returncode
        == 0
    )
    result = _notifier(tmp_path, "create-admin", "A@EXAMPLE.COM", "--password", "12345678")
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_password_is_refused(tmp_path: Path, cli_db: Database) -> None:
    result = _notifier(tmp_path, "create-admin", "a@example.com", "--password", "")
    assert result.returncode != 0
    assert "password must not be empty" in result.stderr
    with cli_db.session_scope() as db:
        assert db.scalars(select(AdminUser)).all() == []


def test_bad_database_url_is_explained(tmp_path: Path) -> None:
    env_url = "NOTIFIER_DATABASE_URL=mysql://x/y"
    result = subprocess.run(
        [sys.executable, "-m", "notifier.cli", "init-db"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", env_url.split("=")[0]: env_url.split("=", 1)[1]},
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    assert "supports 'sqlite' and 'postgresql'" in result.stderr
    assert "Traceback" not in result.stderr


def _admin_with_session(cli_db: Database, tmp_path: Path, email: str = "a@example.com") -> str:
    """Create an admin through the CLI and open a browser session for them."""
    result = _notifier(tmp_path, "create-admin", email, "--password", "first-password")
    assert result.returncode == 0, result.stderr
    with cli_db.session_scope() as db:
        user = db.scalars(select(AdminUser).where(AdminUser.email == email)).one()
        return start_session(db, user)


def test_set_password_prompts_and_logs_the_admin_out(tmp_path: Path, cli_db: Database) -> None:
    session_id = _admin_with_session(cli_db, tmp_path)
    result = _notifier(
        tmp_path, "set-password", "A@example.com", stdin="second-password\nsecond-password\n"
    )
    assert result.returncode == 0, result.stderr
    assert "1 browser session ended" in result.stdout
    with cli_db.session_scope() as db:
        assert authenticate(db, "a@example.com", "second-password") is not None
        assert authenticate(db, "a@example.com", "first-password") is None
        assert session_admin(db, session_id) is None


def test_set_password_refuses_a_short_one_and_changes_nothing(
    tmp_path: Path, cli_db: Database
) -> None:
    session_id = _admin_with_session(cli_db, tmp_path)
    result = _notifier(tmp_path, "set-password", "a@example.com", "--password", "short")
    assert result.returncode != 0
    assert "password must be at least 8 characters" in result.stderr
    assert "Traceback" not in result.stderr
    with cli_db.session_scope() as db:
        assert authenticate(db, "a@example.com", "first-password") is not None
        assert session_admin(db, session_id) is not None


def test_deactivate_and_reactivate_an_admin(tmp_path: Path, cli_db: Database) -> None:
    session_id = _admin_with_session(cli_db, tmp_path)
    result = _notifier(tmp_path, "deactivate-admin", "a@example.com")
    assert result.returncode == 0, result.stderr
    assert "reactivate-admin" in result.stdout  # says how to undo it
    with cli_db.session_scope() as db:
        assert authenticate(db, "a@example.com", "first-password") is None
        assert session_admin(db, session_id) is None
    result = _notifier(tmp_path, "reactivate-admin", "a@example.com")
    assert result.returncode == 0, result.stderr
    with cli_db.session_scope() as db:
        assert authenticate(db, "a@example.com", "first-password") is not None
        assert session_admin(db, session_id) is None  # the old login stays ended


def test_delete_admin_asks_first_then_deletes(tmp_path: Path, cli_db: Database) -> None:
    _admin_with_session(cli_db, tmp_path)
    result = _notifier(tmp_path, "delete-admin", "a@example.com", stdin="n\n")
    assert result.returncode != 0 and "Aborted" in result.stderr
    with cli_db.session_scope() as db:
        assert db.scalars(select(AdminUser)).all() != []
    result = _notifier(tmp_path, "delete-admin", "a@example.com", stdin="y\n")
    assert result.returncode == 0, result.stderr
    with cli_db.session_scope() as db:
        assert db.scalars(select(AdminUser)).all() == []
        assert db.scalars(select(AdminSession)).all() == []


@pytest.mark.parametrize(
    "command", ["set-password", "deactivate-admin", "reactivate-admin", "delete-admin"]
)
def test_an_unknown_admin_is_explained(tmp_path: Path, cli_db: Database, command: str) -> None:
    extra = ["--password", "long-enough"] if command == "set-password" else []
    extra += ["--yes"] if command == "delete-admin" else []
    result = _notifier(tmp_path, command, "nobody@example.com", *extra)
    assert result.returncode != 0
    assert "no admin with email 'nobody@example.com'" in result.stderr
    assert "notifier create-admin" in result.stderr


def test_version(tmp_path: Path) -> None:
    result = _notifier(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout == "notifier, version 0.2.0\n"


def test_database_url_option_wins_over_the_instance_default(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    result = _notifier(tmp_path, "init-db", "--database-url", f"sqlite:///{target}")
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert target.exists()
    assert not (tmp_path / "instance" / "notifier.db").exists()


_CELERY_PROJECT = """
from celery import Celery

app = Celery("shop")
app.conf.notifier_database_url = {url!r}
"""


def test_celery_app_option_reads_the_url_from_the_apps_conf(tmp_path: Path) -> None:
    target = tmp_path / "from-conf.db"
    (tmp_path / "shopworker.py").write_text(_CELERY_PROJECT.format(url=f"sqlite:///{target}"))
    assert _notifier(tmp_path, "init-db", "-A", "shopworker:app").returncode == 0
    result = _notifier(
        tmp_path, "create-admin", "ops@example.com", "--password", "12345678", "--app", "shopworker"
    )
    assert result.returncode == 0, result.stderr
    database = Database(f"sqlite:///{target}")
    try:
        with database.session_scope() as db:
            assert db.scalars(select(AdminUser.email)).all() == ["ops@example.com"]
    finally:
        database.dispose()
    assert not (tmp_path / "instance" / "notifier.db").exists()


def test_unknown_celery_app_is_explained(tmp_path: Path) -> None:
    result = _notifier(tmp_path, "init-db", "-A", "no_such_module:app")
    assert result.returncode != 0
    assert "cannot import 'no_such_module'" in result.stderr
    assert "Traceback" not in result.stderr


def test_app_option_without_the_worker_plugin_says_what_to_install(tmp_path: Path) -> None:
    # The distribution's metadata as an install without the worker side would have it: no
    # entry points, so no app loader (found first on the path, it hides the real one's).
    bare = tmp_path / "bare" / "celery_notifier-0.2.0.dist-info"
    bare.mkdir(parents=True)
    (bare / "METADATA").write_text("Metadata-Version: 2.1\nName: celery-notifier\nVersion: 0.2.0\n")
    (tmp_path / "shopworker.py").write_text(_CELERY_PROJECT.format(url="sqlite:///x.db"))
    result = _notifier(
        tmp_path, "init-db", "-A", "shopworker:app", env={"PYTHONPATH": str(bare.parent)}
    )
    assert result.returncode == 2
    assert "no app loader is installed" in result.stderr
    assert "pip install celery-notifier" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "notifier.db").exists()


def test_dispatch_with_smtp_set_emails_the_admins_of_a_web_only_install(
    tmp_path: Path, cli_db: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    smtp = {"NOTIFIER_SMTP_URL": url, "NOTIFIER_MAIL_FROM": "notifier@shop.example"}
    created = _notifier(tmp_path, "create-admin", "ops@example.com", "--password", "pass-word-1")
    assert created.returncode == 0, created.stderr
    # No worker: `notifier dispatch` is the only dispatcher, and starting it with SMTP set
    # creates the "Admins by email" rule.
    started = _notifier(tmp_path, "dispatch", "--once", env=smtp)
    assert started.returncode == 0, started.stderr
    with cli_db.session_scope() as db:  # what the web app records
        admin_notification_service.create_notification(
            db, type="security_alert", priority="critical", title="Breach", message="m"
        )
    sent = _notifier(tmp_path, "dispatch", "--once", env=smtp)
    assert sent.returncode == 0, sent.stderr
    assert "Dispatched 1 deliveries" in sent.stdout
    [mail] = sink.to("ops@example.com")
    assert mail["Subject"] == "[CRITICAL] security_alert: Breach"
