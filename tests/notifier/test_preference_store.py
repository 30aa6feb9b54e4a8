"""Saving and reading admins' preferences on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from notifier import Database, ValidationError
from notifier.accounts.users import create_admin
from notifier.models import AdminUser
from notifier.preferences.rules import (
    Action,
    Channel,
    DigestFrequency,
    Event,
    Mode,
    Rule,
    Window,
    decide,
)
from notifier.preferences.store import (
    load_preferences,
    preferences_document,
    save_preferences,
    turn_off,
)

BERLIN_WEEKNIGHTS = {"days": [4, 0, 1, 2, 3], "start": "22:00", "end": "07:00"}
DOCUMENT: dict[str, Any] = {
    "channels": {"in_app": True, "email": True},
    "rules": {
        "email": {"notification:import_failure": {"mode": "digest", "min_level": "high"}},
        "in_app": {"alert:capacity": {"mode": "immediate", "min_level": "critical"}},
    },
    "time_zone": "Europe/Berlin",
    "quiet_hours": [BERLIN_WEEKNIGHTS],
    "digest": {"frequency": "daily", "hour": 7},
}


def _admin(database: Database, email: str = "a@shop.example") -> int:
    with database.session_scope() as db:
        return create_admin(db, email=email, password="pw-123456", display_name="A").id


def test_an_admin_without_preferences_reads_the_defaults(database: Database) -> None:
    admin = _admin(database)
    with database.session_scope() as db:
        document = preferences_document(db, admin)
        assert load_preferences(db) == {}
    assert document["channels"] == {"in_app": True, "email": True}
    assert document["rules"]["email"]["notification:store_issue"] == {
        "mode": "immediate",
        "min_level": None,
    }
    assert document["digest"] == {"frequency": "off", "hour": 8}
    assert document["quiet_hours"] == [] and document["time_zone"] == "UTC"


def test_saved_preferences_come_back_and_drive_the_decision(database: Database) -> None:
    admin = _admin(database)
    with database.session_scope() as db:
        saved = save_preferences(db, admin, DOCUMENT)
    with database.session_scope() as db:
        assert preferences_document(db, admin) == saved
        preferences = load_preferences(db)[admin]
    assert saved["quiet_hours"] == [{"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "07:00"}]
    assert preferences.rule(Channel.EMAIL, "notification:import_failure") == Rule(
        Mode.DIGEST, "high"
    )
    assert preferences.quiet.windows == (Window(frozenset(range(5)), time(22), time(7)),)
    assert preferences.digest.frequency is DigestFrequency.DAILY
    # Monday 23:00 in Berlin (21:00 UTC, summer): an import failure at high waits for the
    # digest, a store issue is held until 07:00 Berlin.
    monday_night = datetime(2026, 6, 15, 21, tzinfo=UTC)
    high_import = Event("notification", "import_failure", "high")
    assert decide(high_import, preferences, monday_night)[Channel.EMAIL].action is Action.DIGEST
    store = decide(Event("notification", "store_issue", "normal"), preferences, monday_night)
    assert store[Channel.EMAIL].until == datetime(2026, 6, 16, 5, tzinfo=UTC)


BAD = [
    ({"rules": {"sms": {}}}, "rules.sms"),
    ({"rules": {"email": {"notification:nope": {"mode": "off"}}}}, "rules.email.notification:nope"),
    (
        {"rules": {"email": {"alert:database": {"mode": "loud"}}}},
        "rules.email.alert:database.mode",
    ),
    (
        {"rules": {"in_app": {"alert:database": {"mode": "digest"}}}},
        "rules.in_app.alert:database.mode",
    ),
    (
        {"rules": {"email": {"alert:database": {"mode": "off", "min_level": "high"}}}},
        "rules.email.alert:database.min_level",
    ),
    ({"channels": {"email": "no"}}, "channels.email"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"quiet_hours": [{"days": [7], "start": "22:00", "end": "07:00"}]}, "quiet_hours.0.days"),
    ({"quiet_hours": [{"days": [1], "start": "24:00", "end": "07:00"}]}, "quiet_hours.0.start"),
    ({"quiet_hours": [{"days": [1], "start": "07:00", "end": "7:30"}]}, "quiet_hours.0.end"),
    ({"quiet_hours": [BERLIN_WEEKNIGHTS] * 15}, "quiet_hours"),
    ({"digest": {"frequency": "weekly"}}, "digest.frequency"),
    ({"digest": {"frequency": "daily", "hour": 24}}, "digest.hour"),
    ({"volume": 11}, "volume"),
]


@pytest.mark.parametrize(("document", "field"), BAD, ids=[b[1] for b in BAD])
def test_bad_preferences_are_refused_and_nothing_is_written(
    database: Database, document: dict[str, Any], field: str
) -> None:
    admin = _admin(database)
    with database.session_scope() as db:
        save_preferences(db, admin, DOCUMENT)
    with pytest.raises(ValidationError) as caught, database.session_scope() as db:
        save_preferences(db, admin, document)
    assert field in caught.value.errors
    with database.session_scope() as db:
        assert preferences_document(db, admin)["time_zone"] == "Europe/Berlin"


def test_turn_off_is_idempotent_and_keeps_the_rest(database: Database) -> None:
    admin = _admin(database)
    with database.session_scope() as db:
        assert turn_off(db, admin, Channel.EMAIL, "alert:database")
    with database.session_scope() as db:
        save_preferences(db, admin, preferences_document(db, admin) | {"time_zone": "Asia/Tokyo"})
    with database.session_scope() as db:
        assert not turn_off(db, admin, Channel.EMAIL, "alert:database")
        document = preferences_document(db, admin)
    # alert:database is locked at critical: "off" there is immediate from critical.
    assert document["rules"]["email"]["alert:database"] == {
        "mode": "immediate",
        "min_level": "critical",
    }
    assert document["time_zone"] == "Asia/Tokyo"


def test_preferences_go_with_the_admin(database: Database) -> None:
    admin = _admin(database)
    with database.session_scope() as db:
        save_preferences(db, admin, DOCUMENT)
    with database.session_scope() as db:
        db.delete(db.get(AdminUser, admin))
    with database.session_scope() as db:
        assert load_preferences(db) == {}
