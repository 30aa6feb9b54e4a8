"""The demo product catalogue the bundled jobs read and write.

It lives in its own database (``notifier_catalogue_url``, default
``instance/catalogue.db``), outside the notifier's schema and migrations: in a real
platform this is the shop's own product table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from notifier import Database, Settings


class _Base(DeclarativeBase):
    pass


class Product(_Base):
    """One product of one store, keyed by SKU."""

    __tablename__ = "catalogue_products"

    store_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int] = mapped_column(Integer)


def catalogue_url(conf: Any) -> str:
    """The catalogue database URL from the Celery config, or the instance default."""
    url = conf.get("notifier_catalogue_url")
    if url:
        return str(url)
    return f"sqlite:///{Settings.from_env().instance_path / 'catalogue.db'}"


@contextmanager
def catalogue(url: str) -> Iterator[Session]:
    """A committed-on-exit session on the catalogue, creating its table if needed."""
    database = Database(url)
    try:
        _Base.metadata.create_all(database.engine)
        with database.session_scope() as db:
            yield db
    finally:
        database.dispose()


def upsert_products(db: Session, store_id: int, rows: Iterable[dict[str, Any]]) -> int:
    """Insert or update products by (store, sku); returns how many rows were written."""
    values = [{"store_id": store_id, **row} for row in rows]
    if not values:
        return 0
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(Product).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["store_id", "sku"],
        set_={
            "title": stmt.excluded.title,
            "price": stmt.excluded.price,
            "stock": stmt.excluded.stock,
        },
    )
    db.execute(stmt)
    return len(values)


def known_skus(db: Session, store_id: int, skus: Iterable[str]) -> set[str]:
    """The subset of ``skus`` the store has in its catalogue."""
    wanted = sorted(set(skus))
    if not wanted:
        return set()
    found = db.scalars(
        select(Product.sku).where(Product.store_id == store_id, Product.sku.in_(wanted))
    )
    return set(found)
