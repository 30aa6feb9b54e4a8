"""The two race-safe statements, written once per dialect as cached, typed SQL.

SQLAlchemy 2.0 cannot cache the compiled form of ``on_conflict_do_*`` constructs, so
building them per call costs more than the round trip to the database. These are plain
``text()`` statements with typed parameters and typed result columns, compiled once and
loaded as ORM objects through ``select(Entity).from_statement(...)``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Boolean, bindparam, select, text
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from .enums import Severity
from .models import AdminNotification, PlatformAlert

_NOTIFICATION_COLUMNS = (
    "type",
    "priority",
    "title",
    "message",
    "is_read",
    "action_required",
    "action_url",
    "notification_metadata",
    "store_id",
    "dedup_key",
    "alert_fingerprint",
    "created_at",
)
_ALERT_COLUMNS = (
    "alert_type",
    "severity",
    "title",
    "description",
    "affected_stores",
    "affected_systems",
    "fingerprint",
    "occurrence_count",
    "first_occurred_at",
    "last_occurred_at",
    "is_resolved",
    "alert_metadata",
    "created_at",
    "owner",
    "runbook",
    "explains",
    "recovery_task",
)
# The partial unique index's predicate, spelled as each dialect stored it.
_OPEN = {"postgresql": "NOT is_resolved", "sqlite": "is_resolved = 0"}
_ALERTS = PlatformAlert.__tablename__
# The sorted union of two JSON arrays, computed inside the statement.
_MERGE = {
    "postgresql": (
        "COALESCE((SELECT jsonb_agg(DISTINCT e ORDER BY e) FROM jsonb_array_elements("
        "notifier_platform_alerts.{col} || excluded.{col}) AS e), '[]'::jsonb)"
    ),
    "sqlite": (
        "(SELECT json_group_array(value) FROM (SELECT value FROM json_each("
        "notifier_platform_alerts.{col}) UNION SELECT value FROM json_each(excluded.{col})"
        " ORDER BY value))"
    ),
}


def _rank(column: str) -> str:
    whens = " ".join(f"WHEN '{s.value}' THEN {s.rank}" for s in Severity)
    return f"(CASE {column} {whens} ELSE 0 END)"


def _typed(sql: str, entity: Any, names: tuple[str, ...]) -> ExecutableReturnsRows:
    table = entity.__table__
    params = [
        bindparam(name, type_=Boolean() if name.startswith("is_") else table.c[name].type)
        for name in names
    ]
    statement = text(sql).bindparams(*params).columns(*table.c)
    return select(entity).from_statement(statement)


def _insert_sql(table: str, names: tuple[str, ...]) -> str:
    # Only our own table and column names are spliced in; every value is a bound parameter.
    columns, values = ", ".join(names), ", ".join(":" + name for name in names)
    return f"INSERT INTO {table} ({columns}) VALUES ({values})"  # noqa: S608


@cache
def insert_notification_once() -> ExecutableReturnsRows:
    """INSERT a notification unless its dedup_key exists; RETURNING the new row, if any."""
    columns = ", ".join(c.name for c in AdminNotification.__table__.c)
    sql = (
        _insert_sql(AdminNotification.__tablename__, _NOTIFICATION_COLUMNS)
        + f" ON CONFLICT (dedup_key) DO NOTHING RETURNING {columns}"
    )
    return _typed(sql, AdminNotification, _NOTIFICATION_COLUMNS)


@cache
def upsert_alert(dialect: str) -> ExecutableReturnsRows:
    """INSERT an open alert, or count one more occurrence of the open one; RETURNING it."""
    columns = ", ".join(c.name for c in PlatformAlert.__table__.c)
    merge = _MERGE[dialect]
    rise = f"{_rank('excluded.severity')} > {_rank(f'{_ALERTS}.severity')}"
    sql = (
        _insert_sql(_ALERTS, _ALERT_COLUMNS)
        + f" ON CONFLICT (fingerprint) WHERE {_OPEN[dialect]} DO UPDATE SET"
        f" occurrence_count = {_ALERTS}.occurrence_count + excluded.occurrence_count,"
        # A rise in severity is news: it stamps escalated_at and lifts a snooze and an
        # acknowledgment (every right-hand side reads the row as it was).
        f" escalated_at = CASE WHEN {rise} THEN excluded.last_occurred_at"
        f" ELSE {_ALERTS}.escalated_at END,"
        f" snoozed_until = CASE WHEN {rise} THEN NULL ELSE {_ALERTS}.snoozed_until END,"
        f" acknowledged_at = CASE WHEN {rise} THEN NULL ELSE {_ALERTS}.acknowledged_at END,"
        f" acknowledged_by_user_id = CASE WHEN {rise} THEN NULL"
        f" ELSE {_ALERTS}.acknowledged_by_user_id END,"
        f" acknowledged_via = CASE WHEN {rise} THEN NULL ELSE {_ALERTS}.acknowledged_via END,"
        # Escalation starts over from the new severity's first step.
        f" escalation_step = CASE WHEN {rise} THEN NULL ELSE {_ALERTS}.escalation_step END,"
        f" escalation_step_at = CASE WHEN {rise} THEN NULL"
        f" ELSE {_ALERTS}.escalation_step_at END,"
        # A later occurrence names the owner and runbook as configured now.
        f" owner = COALESCE(excluded.owner, {_ALERTS}.owner),"
        f" runbook = COALESCE(excluded.runbook, {_ALERTS}.runbook),"
        " last_occurred_at = excluded.last_occurred_at,"
        f" severity = CASE WHEN {rise} THEN excluded.severity ELSE {_ALERTS}.severity END,"
        f" description = COALESCE(excluded.description, {_ALERTS}.description),"
        f" affected_stores = {merge.format(col='affected_stores')},"
        f" affected_systems = {merge.format(col='affected_systems')}"
        f" RETURNING {columns}"
    )
    return _typed(sql, PlatformAlert, _ALERT_COLUMNS)
