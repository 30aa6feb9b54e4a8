"""The shop's own tables (its Alembic migrations create them; the notifier's are apart)."""

from __future__ import annotations

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash


class Base(DeclarativeBase):
    """The shop's models; the notifier's tables live in their own metadata."""


db = SQLAlchemy(model_class=Base)


class User(UserMixin, db.Model):
    """A shop back-office user; ``is_admin`` users also see the notifier."""

    __tablename__ = "shop_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class Order(db.Model):
    """An order placed in the shop."""

    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    placed_by: Mapped[int | None] = mapped_column(ForeignKey("shop_users.id"), nullable=True)
