"""Who gets what, when, on which channel: each admin's preferences as a pure decision.

Nothing here reads a database or a clock: ``decide(event, preferences, now)`` looks only at
its arguments, so the whole rule is a table of cases (tests/notifier/test_preferences.py).

- A *category* is a notification type (``notification:import_failure``) or an alert type
  (``alert:database``). Each admin has, per channel (the in-app bell, email; webhooks stay
  system-wide) and category, a ``Rule``: off, immediate or digest, and a minimum priority
  (notifications) or severity (alerts). A channel switched off overrides every rule.
- *Required* events (critical ``security_alert`` and ``critical_error`` notifications, and
  every critical alert) are delivered at once on both channels whatever the preferences,
  switch and quiet hours say: the settings page shows them locked.
- *Quiet hours*: an IANA zone and weekly windows; an email due inside a window is held until
  the window ends (in UTC, so a window across a daylight-saving change ends at the right
  instant), never dropped. The bell is not held: nobody is woken by an unread count.
- The defaults reproduce the behaviour before preferences: the bell shows everything, email
  follows the system-wide email rule (the email endpoint's filter), no digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..enums import AlertType, DigestFrequency, NotificationType, Priority, Severity

__all__ = [
    "DEFAULT_PREFERENCES",
    "DEFAULT_RULE",
    "REQUIRED_NOTIFICATION_TYPES",
    "Action",
    "Audience",
    "Channel",
    "DigestSchedule",
    "Event",
    "Mode",
    "Preferences",
    "QuietHours",
    "Routing",
    "Rule",
    "Window",
    "bell_filter",
    "categories",
    "category_of",
    "decide",
    "decide_for_all",
    "is_required",
    "level_meets",
]


class Channel(StrEnum):
    """Where an admin may be told: the in-app bell or their mailbox."""

    IN_APP = "in_app"
    EMAIL = "email"


class Mode(StrEnum):
    """What an admin wants of one category on one channel."""

    OFF = "off"
    IMMEDIATE = "immediate"
    DIGEST = "digest"


class Action(StrEnum):
    """What happens to one event for one admin on one channel."""

    SKIP = "skip"
    IMMEDIATE = "immediate"
    DIGEST = "digest"
    HELD = "held"  # immediate, but only once the admin's quiet hours end


#: Notification types whose critical notifications nobody may turn off.
REQUIRED_NOTIFICATION_TYPES = frozenset(
    {NotificationType.SECURITY_ALERT, NotificationType.CRITICAL_ERROR}
)
_PRIORITY_RANK = {str(priority): rank for rank, priority in enumerate(Priority)}
_SEVERITY_RANK = {str(severity): severity.rank for severity in Severity}


@dataclass(frozen=True, slots=True)
class Event:
    """The facts about a notification or an alert event that preferences look at."""

    kind: str  # "notification" or "alert"
    type: str  # a NotificationType or AlertType value
    level: str  # a Priority (notifications) or Severity (alerts) value

    @property
    def category(self) -> str:
        """The category key, e.g. ``notification:import_failure``."""
        return f"{self.kind}:{self.type}"


def category_of(kind: str, type_: str) -> str:
    """The category key of a notification type or alert type."""
    return f"{kind}:{type_}"


def categories() -> list[str]:
    """Every category, notification types first, in the enums' order."""
    return [category_of("notification", str(t)) for t in NotificationType] + [
        category_of("alert", str(t)) for t in AlertType
    ]


def is_required(event: Event) -> bool:
    """Whether ``event`` must reach every admin at once (it cannot be turned off)."""
    if event.kind == "alert":
        return event.level == Severity.CRITICAL
    return event.level == Priority.CRITICAL and event.type in REQUIRED_NOTIFICATION_TYPES


def level_meets(kind: str, level: str, minimum: str | None) -> bool:
    """Whether ``level`` is at least ``minimum`` (priorities or severities by ``kind``)."""
    if minimum is None:
        return True
    ranks = _SEVERITY_RANK if kind == "alert" else _PRIORITY_RANK
    return ranks[level] >= ranks[minimum]


@dataclass(frozen=True, slots=True)
class Rule:
    """One cell of the matrix: a mode and the lowest priority/severity it applies from."""

    mode: Mode = Mode.IMMEDIATE
    min_level: str | None = None


DEFAULT_RULE = Rule()


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly quiet window: on each of ``days`` (0 = Monday) from ``start`` to ``end``.

    An ``end`` at or before ``start`` ends on the next day (22:00-07:00 wraps past midnight;
    07:00-07:00 is a whole day).
    """

    days: frozenset[int]
    start: time
    end: time

    def spans(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The window opened on ``day``, as UTC instants."""
        end_day = day if self.end > self.start else day + timedelta(days=1)
        opens = datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)
        return opens, closes


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """An admin's time zone and weekly quiet windows."""

    zone: str = "UTC"
    windows: tuple[Window, ...] = ()

    def held_until(self, now: datetime) -> datetime | None:
        """The UTC instant the quiet window around ``now`` ends, or None outside any window.

        Windows that touch or overlap are one long window: the end of the last is returned.
        """
        if not self.windows:
            return None
        zone = _zone(self.zone)
        moment = now.astimezone(UTC)
        until: datetime | None = None
        for _ in range(8):  # a week of back-to-back windows at most
            end = self._closing(moment, zone)
            if end is None:
                break
            until = moment = end
        return until

    def _closing(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        today = moment.astimezone(zone).date()
        latest: datetime | None = None
        for day in (today - timedelta(days=1), today):
            for window in self.windows:
                if day.weekday() not in window.days:
                    continue
                opens, closes = window.spans(day, zone)
                if opens <= moment < closes and (latest is None or closes > latest):
                    latest = closes
        return latest


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """How often an admin gets a digest, and at which local hour (daily digests)."""

    frequency: DigestFrequency = DigestFrequency.OFF
    hour: int = 8

    def period(self, now: datetime, zone_name: str) -> tuple[str, datetime] | None:
        """The current digest period of ``now``: a key unique per period, and its UTC start.

        Hourly periods start at each local hour (keyed by the UTC instant, so the repeated
        hour when clocks go back is two periods); daily ones at ``hour`` local time, keyed by
        the local date. None when digests are off.
        """
        if self.frequency is DigestFrequency.OFF:
            return None
        zone = _zone(zone_name)
        local = now.astimezone(zone)
        if self.frequency is DigestFrequency.HOURLY:
            start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            return "h" + start.strftime("%Y-%m-%dT%H:%MZ"), start
        day = local.date()
        start = datetime.combine(day, time(self.hour), tzinfo=zone).astimezone(UTC)
        if start > now:
            day -= timedelta(days=1)
            start = datetime.combine(day, time(self.hour), tzinfo=zone).astimezone(UTC)
        return "d" + day.isoformat(), start

    @property
    def length(self) -> timedelta:
        """How long one period lasts (roughly, across daylight-saving changes)."""
        return timedelta(hours=24 if self.frequency is DigestFrequency.DAILY else 1)


@dataclass(frozen=True, slots=True)
class Preferences:
    """One admin's preferences; the defaults are the behaviour before preferences existed."""

    rules: Mapping[tuple[Channel, str], Rule] = field(default_factory=dict)
    #: A channel mapped to False is off for everything but required events.
    channels: Mapping[Channel, bool] = field(default_factory=dict)
    quiet: QuietHours = QuietHours()
    digest: DigestSchedule = DigestSchedule()

    def rule(self, channel: Channel, category: str) -> Rule:
        """The admin's rule for ``category`` on ``channel`` (the default when unset)."""
        return self.rules.get((channel, category), DEFAULT_RULE)

    def channel_on(self, channel: Channel) -> bool:
        """Whether the channel's global switch is on."""
        return self.channels.get(channel, True)

    def wants(self, channel: Channel, event: Event) -> Mode:
        """The mode that applies to ``event`` on ``channel``, ignoring quiet hours."""
        if is_required(event):
            return Mode.IMMEDIATE
        if not self.channel_on(channel):
            return Mode.OFF
        rule = self.rule(channel, event.category)
        if not level_meets(event.kind, event.level, rule.min_level):
            return Mode.OFF
        return rule.mode


DEFAULT_PREFERENCES = Preferences()


def bell_filter(preferences: Preferences) -> dict[str, frozenset[str]] | None:
    """Which notifications light this admin's bell: type -> priorities, None for all.

    Read from ``decide`` itself (in-app, not skipped), so the bell and the decision cannot
    disagree; required notifications are always in.
    """
    allowed: dict[str, frozenset[str]] = {}
    everything = True
    epoch = datetime(2000, 1, 1, tzinfo=UTC)  # in-app is never held, so the moment is moot
    for type_ in NotificationType:
        levels = frozenset(
            str(priority)
            for priority in Priority
            if decide(Event("notification", str(type_), str(priority)), preferences, epoch)[
                Channel.IN_APP
            ].action
            is not Action.SKIP
        )
        everything = everything and len(levels) == len(Priority)
        allowed[str(type_)] = levels
    return None if everything else allowed


@dataclass(frozen=True, slots=True)
class Routing:
    """One admin's outcome for one event on one channel; ``until`` only when held."""

    channel: Channel
    action: Action
    until: datetime | None = None


def _route(
    event: Event,
    preferences: Preferences,
    now: datetime,
    channel: Channel,
    quiet: dict[QuietHours, datetime | None] | None = None,
) -> Routing:
    mode = preferences.wants(channel, event)
    if mode is Mode.OFF:
        return Routing(channel, Action.SKIP)
    if mode is Mode.DIGEST:
        return Routing(channel, Action.DIGEST)
    if channel is Channel.EMAIL and not is_required(event) and preferences.quiet.windows:
        # Admins often share quiet hours (same zone, same windows): work each out once.
        if quiet is None:
            until = preferences.quiet.held_until(now)
        elif preferences.quiet in quiet:
            until = quiet[preferences.quiet]
        else:
            until = quiet[preferences.quiet] = preferences.quiet.held_until(now)
        if until is not None:
            return Routing(channel, Action.HELD, until)
    return Routing(channel, Action.IMMEDIATE)


def decide(event: Event, preferences: Preferences, now: datetime) -> dict[Channel, Routing]:
    """What happens to ``event`` for one admin on each channel, at ``now``."""
    return {channel: _route(event, preferences, now, channel) for channel in Channel}


class Audience:
    """Admins grouped by what decides an event for them, per channel and category.

    Routing one event then costs one decision per distinct (switch, rule) among the admins,
    and one quiet-hours answer per distinct quiet hours among those it would email at once,
    not one per admin: a thousand admins hold a handful of distinct combinations for any
    one category. Groups are built on first use per channel and category; the audience is
    meant to be kept for a batch of events (a session).
    """

    def __init__(self, preferences: Mapping[int, Preferences], admin_ids: Iterable[int]) -> None:
        self.admin_ids = tuple(admin_ids)
        self._preferences = preferences
        self._groups: dict[tuple[Channel, str], list[tuple[Preferences, _ByQuiet]]] = {}

    def groups(self, channel: Channel, category: str) -> list[tuple[Preferences, _ByQuiet]]:
        """Per (switch, rule): a representative, and its admins by their quiet hours."""
        key = (channel, category)
        found = self._groups.get(key)
        if found is None:
            by: dict[tuple[bool, Rule], tuple[Preferences, _ByQuiet]] = {}
            for admin_id in self.admin_ids:
                mine = self._preferences.get(admin_id, DEFAULT_PREFERENCES)
                facts = (mine.channel_on(channel), mine.rule(channel, category))
                group = by.get(facts)
                if group is None:
                    representative = Preferences(
                        rules={key: facts[1]}, channels={channel: facts[0]}
                    )
                    group = by[facts] = (representative, {})
                quiet = mine.quiet if channel is Channel.EMAIL and mine.quiet.windows else None
                group[1].setdefault(quiet, []).append(admin_id)
            found = self._groups[key] = list(by.values())
        return found

    def route(self, event: Event, now: datetime, channel: Channel) -> dict[int, Routing]:
        """``decide`` on ``channel`` for every admin of the audience."""
        result: dict[int, Routing] = {}
        held: dict[QuietHours, datetime | None] = {}
        for representative, by_quiet in self.groups(channel, event.category):
            routing = _route(event, representative, now, channel)
            for quiet, admin_ids in by_quiet.items():
                mine = routing
                if quiet is not None and routing.action is Action.IMMEDIATE:
                    if quiet not in held:
                        held[quiet] = None if is_required(event) else quiet.held_until(now)
                    until = held[quiet]
                    if until is not None:
                        mine = Routing(channel, Action.HELD, until)
                result.update(dict.fromkeys(admin_ids, mine))
        return result


_ByQuiet = dict[QuietHours | None, list[int]]


def decide_for_all(
    event: Event,
    preferences: Mapping[int, Preferences],
    admin_ids: Iterable[int],
    now: datetime,
    channel: Channel,
) -> dict[int, Routing]:
    """``decide`` on one channel for each admin (those without preferences get defaults)."""
    return Audience(preferences, admin_ids).route(event, now, channel)
