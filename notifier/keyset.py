"""Paging at scale: keyset cursors and a total that stops counting at a cap.

An OFFSET page reads and throws away every row before it, and an exact total counts every
match; at ten million rows both cost seconds. Here a page starts after the last row of
the previous one (a *cursor* made of that row's sort key), which an index finds directly,
and the total is counted only up to :data:`TOTAL_CAP` (then it is a lower bound, shown as
"10,000+"), so no request counts millions of rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from .errors import ValidationError
from .types import integer_bounds
from .validation import PAGE_MAX

#: Totals are exact up to here; beyond, ``total_exact`` is False and the total says "at least".
TOTAL_CAP = 10_000
#: Where the unread count (the bell, ``recent``, the unread card) stops: "1,000+". Every open
#: page asks for it, so it counts a tenth of what a list's total does; nobody triages by
#: whether 1,000 or 9,000 are unread, and the badge itself says "99+".
UNREAD_CAP = 1_000

T = TypeVar("T")


def page_bounds(skip: int, limit: int) -> tuple[int, int]:
    """Clamp paging to ``skip >= 0`` and ``1 <= limit <= PAGE_MAX``."""
    return max(0, int(skip)), max(1, min(int(limit), PAGE_MAX))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its rows, the total (exact or a lower bound), the next cursor."""

    items: list[T]
    total: int
    total_exact: bool
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    """A list's order: columns, each descending or not, the last one unique (the id)."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: tuple[bool, ...]

    def order_by(self) -> list[Any]:
        """The ORDER BY clauses."""
        pairs = zip(self.columns, self.descending, strict=True)
        return [column.desc() if descending else column.asc() for column, descending in pairs]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in this order.

        Runs of columns sorted the same way compare as one row value, ``(a, b) < (x, y)``,
        which PostgreSQL answers by starting an index scan at that key (an ``OR`` of
        column-by-column terms would not); SQLite has row values too.
        """
        # bound as the column's type: SQLAlchemy refuses ``column > False`` written plainly
        bound = [literal(v, type_=c.type) for c, v in zip(self.columns, values, strict=True)]
        runs: list[tuple[list[Any], list[Any], bool]] = []
        for column, value, descending in zip(self.columns, bound, self.descending, strict=True):
            if runs and runs[-1][2] == descending:
                runs[-1][0].append(column)
                runs[-1][1].append(value)
            else:
                runs.append(([column], [value], descending))
        clauses = []
        for i, (columns, bounds, descending) in enumerate(runs):
            left, right = _row(columns), _row(bounds)
            beyond = left < right if descending else left > right
            equal = [_row(runs[j][0]) == _row(runs[j][1]) for j in range(i)]
            clauses.append(and_(*equal, beyond))
        return or_(*clauses)

    def encode(self, row: Any) -> str:
        """The cursor of ``row``: its sort key, as opaque URL-safe text."""
        values = [_plain(getattr(row, c.key)) for c in self.columns]
        raw = json.dumps(values, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        """The sort key in ``cursor``; ValidationError when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json.loads(raw)
            if not isinstance(values, list) or len(values) != len(self.columns):
                raise ValueError("wrong length")
            return [
                _typed(column, value) for column, value in zip(self.columns, values, strict=True)
            ]
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
            raise ValidationError(
                {"cursor": "is not a cursor from this list; use next_cursor as given"}
            ) from None


def _row(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else tuple_(*items)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # an enum
        return value.value
    return value


def _typed(column: InstrumentedAttribute[Any], value: Any) -> Any:
    # a TypeDecorator (UTCDateTime) names its Python type through the type it decorates
    column_type = getattr(column.type, "impl", column.type)
    python_type = column_type.python_type
    if python_type is datetime:
        if not isinstance(value, str):
            raise ValueError("not a timestamp")
        moment = datetime.fromisoformat(value)
        # Ours always carry their zone; a naive one could only be compared by guessing it.
        if moment.utcoffset() is None:
            raise ValueError("a timestamp without its time zone")
        return moment.astimezone(UTC)  # OverflowError past year 1 or 9999 (caught above)
    if python_type is bool:
        if not isinstance(value, bool):
            raise ValueError("not a boolean")
        return value
    if python_type is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("not an integer")
        low, high = integer_bounds(column_type)
        if not low <= value <= high:  # PostgreSQL would refuse it in the query itself
            raise ValueError("out of the column's range")
        return value
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


class CappedCount(int):
    """A count exact up to its cap, else the cap with ``exact`` False.

    A count exact up to its cap (:data:`TOTAL_CAP` unless told); beyond, the cap with
    ``exact`` False.

    It is the ``int`` it shows, so code written against a plain count keeps working
    (``count == 0``, ``count - 1``, ``json.dumps(count)``, ``f"{count}"``); ``exact`` says
    whether it is the whole count. Two counts are equal when they show the same number
    with the same exactness (1,000 is not 1,000+); against an ``int`` only the number counts.
    """

    exact: bool

    def __new__(cls, value: int, exact: bool = True) -> CappedCount:
        """The count ``value``; ``exact`` False when counting stopped at the cap."""
        count = super().__new__(cls, value)
        count.exact = exact
        return count

    @property
    def value(self) -> int:
        """The number shown, as a plain ``int``."""
        return int(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CappedCount):
            return int(self) == int(other) and self.exact == other.exact
        return int(self) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = int.__hash__

    def __repr__(self) -> str:
        return f"CappedCount({int(self)}, exact={self.exact})"

    def __str__(self) -> str:  # int's, not the repr above (print, f-strings, templates)
        return str(int(self))

    @classmethod
    def of(cls, counted: int | None, cap: int = TOTAL_CAP) -> CappedCount:
        """What a :func:`capped_count_query` with ``cap`` answered, as a capped count."""
        counted = int(counted or 0)
        return cls(cap, False) if counted > cap else cls(counted, True)


def capped_count_query(
    entity: Any, conditions: Sequence[Any], cap: int = TOTAL_CAP
) -> Select[tuple[int]]:
    """``count(*)`` over at most ``cap + 1`` matching rows (read with CappedCount.of)."""
    limited = select(literal(1)).select_from(entity).where(*conditions).limit(cap + 1)
    return select(func.count()).select_from(limited.subquery())


def capped_count(
    db: Session, entity: Any, conditions: Sequence[Any], cap: int = TOTAL_CAP
) -> CappedCount:
    """How many rows match, counted up to ``cap`` (a :class:`CappedCount`)."""
    return CappedCount.of(db.scalar(capped_count_query(entity, conditions, cap)), cap)


def keyset_page(
    db: Session,
    entity: type[T],
    conditions: Sequence[Any],
    key: SortKey,
    *,
    cursor: str | None,
    skip: int,
    limit: int,
    total: Callable[[], CappedCount] | None = None,
) -> Page[T]:
    """A page after ``cursor`` (or ``skip`` rows in, without one) and the capped total.

    ``total`` counts instead of :func:`capped_count` over ``conditions``, for a list that
    can count the same answer more cheaply (see ``PlatformAlertService.page_alerts``).
    """
    where = list(conditions)
    if cursor:
        where.append(key.after(key.decode(cursor)))
        skip = 0
    rows = list(
        db.scalars(
            select(entity).where(*where).order_by(*key.order_by()).offset(skip).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    counted = total() if total is not None else capped_count(db, entity, conditions)
    return Page(rows, counted.value, counted.exact, key.encode(rows[-1]) if more and rows else None)


__all__ = [
    "TOTAL_CAP",
    "UNREAD_CAP",
    "CappedCount",
    "Page",
    "SortKey",
    "capped_count",
    "capped_count_query",
    "keyset_page",
    "page_bounds",
]
