"""Reading and saving admins' preferences: the stored row <-> ``Preferences`` <-> a JSON document.

The document is what the API and the settings page exchange::

    {"channels": {"in_app": true, "email": true},
     "rules": {"email": {"notification:import_failure": {"mode": "digest", "min_level": "high"}}},
     "time_zone": "Europe/Berlin",
     "quiet_hours": [{"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "07:00"}],
     "digest": {"frequency": "daily", "hour": 8}}

Saving replaces the whole document (a missing part takes its default); every problem is
reported at once, keyed by the field's path, before anything is written. A locked row
(``category_table``'s ``locked_at``) cannot be off: its required events arrive anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..enums import DigestFrequency, Priority, Severity
from ..models import AdminPreferences, AdminUser
from ..types import utcnow
from ..validation import QUIET_WINDOWS_MAX, Checker, clock_problem, time_zone_problem
from .rules import (
    DEFAULT_RULE,
    REQUIRED_NOTIFICATION_TYPES,
    Audience,
    Channel,
    DigestSchedule,
    Mode,
    Preferences,
    QuietHours,
    Rule,
    Window,
    bell_filter,
    categories,
)

__all__ = [
    "admin_bell_filter",
    "category_table",
    "document_of",
    "load_preferences",
    "preferences_document",
    "preferences_of",
    "save_preferences",
    "turn_off",
]

_LEVELS = {"notification": [str(p) for p in Priority], "alert": [str(s) for s in Severity]}
_CACHE = "notifier_preferences"
_AUDIENCE = "notifier_email_audience"


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _locked_at(category: str) -> str | None:
    """The level from which ``category`` is required (always delivered at once), if any."""
    kind, type_ = category.split(":", 1)
    if kind == "alert" or type_ in REQUIRED_NOTIFICATION_TYPES:
        return "critical"
    return None


def _rule(category: str, cell: Mapping[str, Any]) -> Rule:
    mode, level = Mode(cell["mode"]), cell.get("min_level")
    locked = _locked_at(category)
    if mode is Mode.OFF and locked is not None:
        # "Off" on a locked row (stored before saving refused it, or by an unsubscribe
        # link) delivers exactly what "immediate from the locked level" does: say so.
        return Rule(Mode.IMMEDIATE, locked)
    return Rule(mode, level)


def preferences_of(row: AdminPreferences | None) -> Preferences:
    """The decision's view of a stored row (defaults when there is none)."""
    if row is None:
        return Preferences()
    rules = {
        (Channel(channel), category): _rule(category, cell)
        for channel, cells in (row.rules or {}).items()
        for category, cell in cells.items()
    }
    return Preferences(
        rules=rules,
        channels={Channel(c): bool(on) for c, on in (row.channels or {}).items()},
        quiet=QuietHours(
            row.time_zone,
            tuple(
                Window(frozenset(w["days"]), _clock(w["start"]), _clock(w["end"]))
                for w in row.quiet_windows or []
            ),
        ),
        digest=DigestSchedule(DigestFrequency(row.digest_frequency), row.digest_hour),
    )


def admin_bell_filter(db: Session, user_id: int) -> dict[str, frozenset[str]] | None:
    """What lights this admin's bell (``bell_filter`` of their preferences); None: all."""
    row = db.get(AdminPreferences, user_id)
    return None if row is None else bell_filter(preferences_of(row))


def load_preferences(db: Session, user_ids: Iterable[int] | None = None) -> dict[int, Preferences]:
    """Preferences of the admins who have any (all, or those in ``user_ids``)."""
    query = select(AdminPreferences)
    if user_ids is not None:
        query = query.where(AdminPreferences.user_id.in_(list(user_ids)))
    return {row.user_id: preferences_of(row) for row in db.scalars(query)}


def category_table() -> list[dict[str, Any]]:
    """Every category with its kind, type, levels and the level at which it is locked."""
    table = []
    for key in categories():
        kind, type_ = key.split(":", 1)
        locked = _locked_at(key)
        table.append(
            {"key": key, "kind": kind, "type": type_, "levels": _LEVELS[kind], "locked_at": locked}
        )
    return table


def document_of(preferences: Preferences) -> dict[str, Any]:
    """The full document of ``preferences``: every channel and category filled in."""
    return {
        "channels": {str(c): preferences.channel_on(c) for c in Channel},
        "rules": {
            str(channel): {
                key: {
                    "mode": str(preferences.rule(channel, key).mode),
                    "min_level": preferences.rule(channel, key).min_level,
                }
                for key in categories()
            }
            for channel in Channel
        },
        "time_zone": preferences.quiet.zone,
        "quiet_hours": [
            {
                "days": sorted(w.days),
                "start": w.start.strftime("%H:%M"),
                "end": w.end.strftime("%H:%M"),
            }
            for w in preferences.quiet.windows
        ],
        "digest": {
            "frequency": str(preferences.digest.frequency),
            "hour": preferences.digest.hour,
        },
    }


def preferences_document(db: Session, user_id: int) -> dict[str, Any]:
    """The admin's full preferences document."""
    return document_of(preferences_of(db.get(AdminPreferences, user_id)))


def _rules(check: Checker, value: Any) -> dict[str, dict[str, dict[str, Any]]]:
    stored: dict[str, dict[str, dict[str, Any]]] = {}
    if value is None:
        return stored
    if not isinstance(value, dict):
        check.fail("rules", "must be an object of channels (in_app, email)")
        return stored
    known = set(categories())
    for channel, cells in value.items():
        where = f"rules.{channel}"
        if channel not in {str(c) for c in Channel}:
            check.fail(where, "is not a channel; channels are in_app and email")
            continue
        if not isinstance(cells, dict):
            check.fail(where, "must be an object of categories such as notification:store_issue")
            continue
        for category, cell in cells.items():
            rule = _cell(check, channel, category, cell, known)
            if rule is not None and rule != DEFAULT_RULE:
                stored.setdefault(channel, {})[category] = {
                    "mode": str(rule.mode),
                    "min_level": rule.min_level,
                }
    return stored


def _cell(check: Checker, channel: str, category: str, cell: Any, known: set[str]) -> Rule | None:
    """One channel's rule for one category, or None (and a failure noted) when invalid."""
    at = f"rules.{channel}.{category}"
    if category not in known:
        check.fail(at, "is not a category; see GET .../preferences for the list")
        return None
    if not isinstance(cell, dict) or set(cell) - {"mode", "min_level"}:
        check.fail(at, 'must be an object {"mode": ..., "min_level": ...}')
        return None
    mode = check.enum(f"{at}.mode", cell.get("mode"), Mode)
    if channel == Channel.IN_APP and mode is Mode.DIGEST:
        check.fail(f"{at}.mode", "must be off or immediate on the in-app channel")
    locked = _locked_at(category)
    if mode is Mode.OFF and locked is not None:
        # Saved, "off" would read as off while the required ones keep arriving.
        check.fail(
            f"{at}.mode",
            f"{category} is locked at {locked}: {locked} ones always arrive at once, "
            f'so it cannot be off; for only those, choose "immediate" from {locked}',
        )
    level = cell.get("min_level")
    levels = _LEVELS[category.split(":", 1)[0]]
    if level is not None and level not in levels:
        check.fail(f"{at}.min_level", f"must be null or one of: {', '.join(levels)}")
        return None
    return Rule(mode, level)


def _channels(check: Checker, value: Any) -> dict[str, bool]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.fail("channels", 'must be an object such as {"email": false}')
        return {}
    result = {}
    for channel, on in value.items():
        if channel not in {str(c) for c in Channel} or not isinstance(on, bool):
            check.fail(f"channels.{channel}", "must be in_app or email, mapped to true or false")
            continue
        if not on:
            result[channel] = False
    return result


def _windows(check: Checker, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > QUIET_WINDOWS_MAX:
        check.fail("quiet_hours", f"must be a list of at most {QUIET_WINDOWS_MAX} windows")
        return []
    windows = []
    for n, window in enumerate(value):
        at = f"quiet_hours.{n}"
        if not isinstance(window, dict) or set(window) != {"days", "start", "end"}:
            check.fail(
                at, 'must be {"days": [0..6, Monday is 0], "start": "HH:MM", "end": "HH:MM"}'
            )
            continue
        days = window["days"]
        if (
            not isinstance(days, list)
            or not days
            or any(isinstance(d, bool) or d not in range(7) for d in days)
        ):
            check.fail(f"{at}.days", "must be a non-empty list of weekdays 0-6 (Monday is 0)")
            continue
        bad = False
        for end in ("start", "end"):
            clock = window[end]
            problem = clock_problem(clock) if isinstance(clock, str) else "must be a string"
            if problem:
                check.fail(f"{at}.{end}", problem)
                bad = True
        if not bad:
            windows.append(
                {"days": sorted(set(days)), "start": window["start"], "end": window["end"]}
            )
    return windows


def save_preferences(db: Session, user_id: int, document: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``document`` and make it the admin's preferences; returns the full document.

    Raises ``ValidationError`` (every problem, keyed by path) and writes nothing on error.
    """
    check = Checker()
    unknown = set(document) - {"channels", "rules", "time_zone", "quiet_hours", "digest"}
    for key in sorted(unknown):
        check.fail(key, "is not a preference")
    rules = _rules(check, document.get("rules"))
    channels = _channels(check, document.get("channels"))
    zone = document.get("time_zone", "UTC")
    if not isinstance(zone, str) or time_zone_problem(zone):
        check.fail("time_zone", "must be an IANA time zone name such as Europe/Berlin or UTC")
    windows = _windows(check, document.get("quiet_hours"))
    digest = document.get("digest") or {}
    frequency, hour = DigestFrequency.OFF, 8
    if not isinstance(digest, dict) or set(digest) - {"frequency", "hour"}:
        check.fail("digest", 'must be {"frequency": "off" | "hourly" | "daily", "hour": 0-23}')
    else:
        frequency = check.enum("digest.frequency", digest.get("frequency", "off"), DigestFrequency)
        hour = digest.get("hour", 8)
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            check.fail("digest.hour", "must be a whole hour from 0 to 23 (local time)")
    check.done()
    if db.get(AdminUser, user_id) is None:
        raise LookupError(f"admin {user_id} does not exist")
    row = db.get(AdminPreferences, user_id) or AdminPreferences(user_id=user_id)
    row.rules = rules
    row.channels = channels
    row.time_zone = zone
    row.quiet_windows = windows
    row.digest_frequency = frequency
    row.digest_hour = hour
    row.updated_at = utcnow()
    db.add(row)
    db.flush()
    forget_preferences(db)
    return document_of(preferences_of(row))


def turn_off(db: Session, user_id: int, channel: Channel, category: str) -> bool:
    """Turn ``category`` off on ``channel`` for the admin (unsubscribe); False if already off.

    Idempotent: a second call changes nothing. A locked category keeps its required events:
    it is set to what "off" delivers there, immediate from the locked level.
    """
    row = db.get(AdminPreferences, user_id)
    if row is None:
        row = AdminPreferences(user_id=user_id, rules={}, channels={}, quiet_windows=[])
        db.add(row)
    rules = {c: dict(cells) for c, cells in (row.rules or {}).items()}
    cell = rules.get(str(channel), {}).get(category)
    off = _rule(category, {"mode": str(Mode.OFF)})
    if cell is not None and (cell["mode"] == Mode.OFF or _rule(category, cell) == off):
        return False
    rules.setdefault(str(channel), {})[category] = {
        "mode": str(off.mode),
        "min_level": off.min_level,
    }
    row.rules = rules
    row.updated_at = utcnow()
    db.flush()
    forget_preferences(db)
    return True


def cached_preferences(db: Session) -> dict[int, Preferences]:
    """Every admin's preferences, read once per session (a batch of events reads them once)."""
    cached: dict[int, Preferences] | None = db.info.get(_CACHE)
    if cached is None:
        cached = load_preferences(db)
        db.info[_CACHE] = cached
    return cached


def cached_audience(db: Session, admin_ids: list[int]) -> Audience:
    """The admins grouped for routing (``Audience``), kept for the session like the above."""
    cached: Audience | None = db.info.get(_AUDIENCE)
    if cached is None or cached.admin_ids != tuple(admin_ids):
        cached = db.info[_AUDIENCE] = Audience(cached_preferences(db), admin_ids)
    return cached


def forget_preferences(db: Session) -> None:
    """Drop the session's cached preferences (after a change), and what was built on them."""
    db.info.pop(_CACHE, None)
    db.info.pop(_AUDIENCE, None)
