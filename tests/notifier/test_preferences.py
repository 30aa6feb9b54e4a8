"""The decision "who gets what, when, on which channel" as a pure function, case by case."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time

import pytest

from bench.preference_samples import random_preferences
from notifier.enums import AlertType, NotificationType, Priority, Severity
from notifier.preferences.rules import (
    Action,
    Audience,
    Channel,
    DigestFrequency,
    DigestSchedule,
    Event,
    Mode,
    Preferences,
    QuietHours,
    Rule,
    Window,
    decide,
    decide_for_all,
    is_required,
)

EMAIL, IN_APP = Channel.EMAIL, Channel.IN_APP
EVERY_DAY = frozenset(range(7))
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # a Wednesday

IMPORT_LOW = Event("notification", "import_failure", "low")
IMPORT_HIGH = Event("notification", "import_failure", "high")
SECURITY_CRITICAL = Event("notification", "security_alert", "critical")
SECURITY_HIGH = Event("notification", "security_alert", "high")
ERROR_CRITICAL = Event("notification", "critical_error", "critical")
STORE_CRITICAL = Event("notification", "store_issue", "critical")
DB_CRITICAL = Event("alert", "database", "critical")
DB_WARNING = Event("alert", "database", "warning")

ALL_OFF = Preferences(channels={EMAIL: False, IN_APP: False})
IMPORT_OFF = Preferences(
    rules={
        (EMAIL, "notification:import_failure"): Rule(Mode.OFF),
        (IN_APP, "notification:import_failure"): Rule(Mode.OFF),
    }
)
IMPORT_DIGEST_FROM_HIGH = Preferences(
    rules={(EMAIL, "notification:import_failure"): Rule(Mode.DIGEST, "high")}
)
SECURITY_OFF = Preferences(
    rules={
        (EMAIL, "notification:security_alert"): Rule(Mode.OFF),
        (IN_APP, "notification:security_alert"): Rule(Mode.OFF),
    }
)
DB_FROM_ERROR = Preferences(
    rules={
        (EMAIL, "alert:database"): Rule(Mode.IMMEDIATE, "error"),
        (IN_APP, "alert:database"): Rule(Mode.OFF),
    }
)
QUIET_ALL_DAY = Preferences(quiet=QuietHours("UTC", (Window(EVERY_DAY, time(0), time(23, 59)),)))
QUIET_UNTIL = datetime(2026, 6, 10, 23, 59, tzinfo=UTC)

NOW, S, D, H = Action.IMMEDIATE, Action.SKIP, Action.DIGEST, Action.HELD

CASES = [
    # (name, event, preferences, in-app action, email action)
    ("defaults: everything, both channels", IMPORT_LOW, Preferences(), NOW, NOW),
    ("type off on both", IMPORT_LOW, IMPORT_OFF, S, S),
    ("type off does not touch other types", STORE_CRITICAL, IMPORT_OFF, NOW, NOW),
    ("digest from high: low is off", IMPORT_LOW, IMPORT_DIGEST_FROM_HIGH, NOW, S),
    ("digest from high: high goes to the digest", IMPORT_HIGH, IMPORT_DIGEST_FROM_HIGH, NOW, D),
    ("channels switched off", IMPORT_HIGH, ALL_OFF, S, S),
    ("switch off, critical store issue is not required", STORE_CRITICAL, ALL_OFF, S, S),
    ("locked: critical security alert through switches", SECURITY_CRITICAL, ALL_OFF, NOW, NOW),
    ("locked: critical security alert through type off", SECURITY_CRITICAL, SECURITY_OFF, NOW, NOW),
    ("locked: critical error through switches", ERROR_CRITICAL, ALL_OFF, NOW, NOW),
    ("not locked: high security alert obeys off", SECURITY_HIGH, SECURITY_OFF, S, S),
    ("locked: critical alert through switches", DB_CRITICAL, ALL_OFF, NOW, NOW),
    ("alert under the minimum severity", DB_WARNING, DB_FROM_ERROR, S, S),
    ("alert at the minimum, bell off for the type", DB_CRITICAL, DB_FROM_ERROR, NOW, NOW),
    ("quiet hours hold email, not the bell", IMPORT_LOW, QUIET_ALL_DAY, NOW, H),
    ("quiet hours let required through", SECURITY_CRITICAL, QUIET_ALL_DAY, NOW, NOW),
    ("quiet hours let critical alerts through", DB_CRITICAL, QUIET_ALL_DAY, NOW, NOW),
]


@pytest.mark.parametrize(
    ("event", "preferences", "in_app", "email"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(
    event: Event, preferences: Preferences, in_app: Action, email: Action
) -> None:
    decision = decide(event, preferences, NOON)
    assert decision[IN_APP].action is in_app
    assert decision[EMAIL].action is email
    assert decision[EMAIL].until == (QUIET_UNTIL if email is H else None)


def test_required_is_exactly_the_locked_set() -> None:
    assert {e for e in (SECURITY_CRITICAL, ERROR_CRITICAL, DB_CRITICAL) if is_required(e)} == {
        SECURITY_CRITICAL,
        ERROR_CRITICAL,
        DB_CRITICAL,
    }
    assert not any(is_required(e) for e in (SECURITY_HIGH, STORE_CRITICAL, DB_WARNING))


def test_decide_for_all_gives_defaults_to_admins_without_preferences() -> None:
    routed = decide_for_all(IMPORT_LOW, {2: IMPORT_OFF}, [1, 2, 3], NOON, EMAIL)
    assert {admin: r.action for admin, r in routed.items()} == {1: NOW, 2: S, 3: NOW}


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


WEEKNIGHTS = frozenset(range(5))  # Monday to Friday evenings
BERLIN_NIGHT = QuietHours("Europe/Berlin", (Window(EVERY_DAY, time(22), time(7)),))
NY_NIGHT = QuietHours("America/New_York", (Window(EVERY_DAY, time(22), time(7)),))
# 01:00-03:00 local on Sundays: the hour clocks skip (spring) or repeat (autumn) is inside.
BERLIN_SUNDAY_SMALL_HOURS = QuietHours("Europe/Berlin", (Window(frozenset({6}), time(1), time(3)),))
NY_WORK_NIGHTS = QuietHours("America/New_York", (Window(WEEKNIGHTS, time(22), time(7)),))
BACK_TO_BACK = QuietHours(
    "UTC",
    (Window(EVERY_DAY, time(20), time(23)), Window(EVERY_DAY, time(23), time(6))),
)

QUIET_CASES = [
    # (name, quiet hours, now (UTC), held until (UTC) or None)
    ("Berlin summer, before the window", BERLIN_NIGHT, _utc(2026, 6, 10, 19, 59), None),
    (
        "Berlin summer, 22:00 CEST opens",
        BERLIN_NIGHT,
        _utc(2026, 6, 10, 20, 0),
        _utc(2026, 6, 11, 5),
    ),
    (
        "Berlin summer, across midnight",
        BERLIN_NIGHT,
        _utc(2026, 6, 10, 23, 30),
        _utc(2026, 6, 11, 5),
    ),
    ("Berlin summer, 07:00 CEST closes", BERLIN_NIGHT, _utc(2026, 6, 11, 5, 0), None),
    (
        "Berlin winter, across midnight",
        BERLIN_NIGHT,
        _utc(2026, 1, 14, 23, 0),
        _utc(2026, 1, 15, 6),
    ),
    # Spring forward, Sunday 29 March 2026 02:00 CET -> 03:00 CEST: the night is an hour
    # shorter; it still ends at 07:00 on the wall, which is 05:00 UTC (not 06:00).
    ("Berlin spring-forward night", BERLIN_NIGHT, _utc(2026, 3, 28, 23, 0), _utc(2026, 3, 29, 5)),
    # Fall back, Sunday 25 October 2026 03:00 CEST -> 02:00 CET: an hour longer night.
    ("Berlin fall-back night", BERLIN_NIGHT, _utc(2026, 10, 24, 21, 0), _utc(2026, 10, 25, 6)),
    (
        "Berlin fall-back, in the repeated hour",
        BERLIN_NIGHT,
        _utc(2026, 10, 25, 1, 30),
        _utc(2026, 10, 25, 6),
    ),
    # 01:00-03:00 on the spring-forward Sunday is one real hour (01:00 CET = 00:00 UTC to
    # 03:00 CEST = 01:00 UTC); on the fall-back Sunday it is three (23:00 to 02:00 UTC).
    (
        "Berlin window over the skipped hour",
        BERLIN_SUNDAY_SMALL_HOURS,
        _utc(2026, 3, 29, 0, 30),
        _utc(2026, 3, 29, 1),
    ),
    (
        "Berlin window over the skipped hour, after",
        BERLIN_SUNDAY_SMALL_HOURS,
        _utc(2026, 3, 29, 1, 0),
        None,
    ),
    (
        "Berlin window over the repeated hour",
        BERLIN_SUNDAY_SMALL_HOURS,
        _utc(2026, 10, 25, 1, 30),
        _utc(2026, 10, 25, 2),
    ),
    ("Berlin window, not on Saturday", BERLIN_SUNDAY_SMALL_HOURS, _utc(2026, 10, 24, 0, 30), None),
    # New York: spring forward Sunday 8 March 2026 (EST -> EDT), fall back 1 November 2026.
    ("New York spring-forward night", NY_NIGHT, _utc(2026, 3, 8, 4, 0), _utc(2026, 3, 8, 11)),
    ("New York winter night", NY_NIGHT, _utc(2026, 3, 7, 4, 0), _utc(2026, 3, 7, 12)),
    ("New York fall-back night", NY_NIGHT, _utc(2026, 11, 1, 4, 0), _utc(2026, 11, 1, 12)),
    ("New York summer night", NY_NIGHT, _utc(2026, 10, 31, 4, 0), _utc(2026, 10, 31, 11)),
    # Friday 22:00 opens a window that ends Saturday 07:00; Saturday 22:00 opens none.
    (
        "weeknights: Friday night wraps into Saturday",
        NY_WORK_NIGHTS,
        _utc(2026, 6, 13, 5, 0),
        _utc(2026, 6, 13, 11),
    ),
    ("weeknights: Saturday night is free", NY_WORK_NIGHTS, _utc(2026, 6, 14, 3, 0), None),
    ("weeknights: Sunday night is free", NY_WORK_NIGHTS, _utc(2026, 6, 15, 3, 0), None),
    (
        "weeknights: Monday 23:00 EDT",
        NY_WORK_NIGHTS,
        _utc(2026, 6, 16, 3, 0),
        _utc(2026, 6, 16, 11),
    ),
    ("back-to-back windows are one", BACK_TO_BACK, _utc(2026, 6, 10, 21, 0), _utc(2026, 6, 11, 6)),
    ("no windows, never quiet", QuietHours("Europe/Berlin"), _utc(2026, 6, 10, 23, 0), None),
]


@pytest.mark.parametrize(
    ("quiet", "now", "until"),
    [case[1:] for case in QUIET_CASES],
    ids=[case[0] for case in QUIET_CASES],
)
def test_quiet_hours_table(quiet: QuietHours, now: datetime, until: datetime | None) -> None:
    assert quiet.held_until(now) == until
    routing = decide(IMPORT_LOW, Preferences(quiet=quiet), now)[EMAIL]
    assert (routing.action, routing.until) == ((H, until) if until else (NOW, None))


DIGEST_CASES = [
    # (name, schedule, zone, now (UTC), key, period start (UTC))
    ("off", DigestSchedule(), "UTC", _utc(2026, 6, 10, 12), None, None),
    (
        "hourly",
        DigestSchedule(DigestFrequency.HOURLY),
        "Europe/Berlin",
        _utc(2026, 6, 10, 12, 40),
        "h2026-06-10T12:00Z",
        _utc(2026, 6, 10, 12),
    ),
    (
        "hourly, half-hour zone",
        DigestSchedule(DigestFrequency.HOURLY),
        "Asia/Kolkata",
        _utc(2026, 6, 10, 12, 10),
        "h2026-06-10T11:30Z",
        _utc(2026, 6, 10, 11, 30),
    ),
    # The repeated hour (02:00-03:00 twice in Berlin on 25 October) is two periods.
    (
        "hourly, first of the repeated hour",
        DigestSchedule(DigestFrequency.HOURLY),
        "Europe/Berlin",
        _utc(2026, 10, 25, 0, 30),
        "h2026-10-25T00:00Z",
        _utc(2026, 10, 25, 0),
    ),
    (
        "hourly, second of the repeated hour",
        DigestSchedule(DigestFrequency.HOURLY),
        "Europe/Berlin",
        _utc(2026, 10, 25, 1, 30),
        "h2026-10-25T01:00Z",
        _utc(2026, 10, 25, 1),
    ),
    (
        "daily at 8, after 8 local",
        DigestSchedule(DigestFrequency.DAILY, 8),
        "America/New_York",
        _utc(2026, 6, 10, 13),
        "d2026-06-10",
        _utc(2026, 6, 10, 12),
    ),
    (
        "daily at 8, before 8 local: yesterday's",
        DigestSchedule(DigestFrequency.DAILY, 8),
        "America/New_York",
        _utc(2026, 6, 10, 11),
        "d2026-06-09",
        _utc(2026, 6, 9, 12),
    ),
    (
        "daily at 8, after the fall-back",
        DigestSchedule(DigestFrequency.DAILY, 8),
        "America/New_York",
        _utc(2026, 11, 1, 13, 30),
        "d2026-11-01",
        _utc(2026, 11, 1, 13),
    ),
    (
        "daily at 0, across midnight",
        DigestSchedule(DigestFrequency.DAILY, 0),
        "Europe/Berlin",
        _utc(2026, 6, 10, 22, 30),
        "d2026-06-11",
        _utc(2026, 6, 10, 22),
    ),
]


@pytest.mark.parametrize(
    ("schedule", "zone", "now", "key", "start"),
    [case[1:] for case in DIGEST_CASES],
    ids=[case[0] for case in DIGEST_CASES],
)
def test_digest_periods(
    schedule: DigestSchedule, zone: str, now: datetime, key: str | None, start: datetime | None
) -> None:
    period = schedule.period(now, zone)
    assert (period == (key, start)) if key else period is None


def test_the_grouped_audience_routes_every_admin_as_decide_does() -> None:
    rng = random.Random(7)
    held = {admin: random_preferences(rng, varied=True) for admin in range(300)}
    admins = [*held, 1000, 1001]  # two without preferences
    audience = Audience(held, admins)
    for _ in range(40):
        kind = rng.choice(["notification", "alert"])
        types = list(NotificationType) if kind == "notification" else list(AlertType)
        levels = list(Priority) if kind == "notification" else list(Severity)
        event = Event(kind, str(rng.choice(types)), str(rng.choice(levels)))
        now = datetime(2026, 3, 29, rng.randrange(24), rng.randrange(60), tzinfo=UTC)
        for channel in (IN_APP, EMAIL):
            routed = audience.route(event, now, channel)
            assert routed == {
                admin: decide(event, held.get(admin, Preferences()), now)[channel]
                for admin in admins
            }
