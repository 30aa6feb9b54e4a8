"""One way to page a list: clamped bounds, a stable order, and the total matching the filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from .validation import PAGE_MAX

MAX_PAGE = PAGE_MAX  # the old name; the limit lives with the others in validation.py

T = TypeVar("T")


def page_bounds(skip: int, limit: int) -> tuple[int, int]:
    """Clamp paging to ``skip >= 0`` and ``1 <= limit <= 200``."""
    return max(0, int(skip)), max(1, min(int(limit), MAX_PAGE))


def fetch_page(
    db: Session,
    entity: type[T],
    conditions: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    *,
    skip: int,
    limit: int,
) -> tuple[list[T], int]:
    """A page of ``entity`` rows matching ``conditions`` in ``order_by``, and their total."""
    skip, limit = page_bounds(skip, limit)
    total = db.scalar(select(func.count()).select_from(entity).where(*conditions))
    items = db.scalars(
        select(entity).where(*conditions).order_by(*order_by).offset(skip).limit(limit)
    ).all()
    return list(items), int(total or 0)
