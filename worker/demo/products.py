"""``import_products``: load a store's product CSV (sku, title, price, stock)."""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from typing import Any

from celery import shared_task

from ..decorators import import_job
from .catalogue import catalogue, catalogue_url, upsert_products

REQUIRED_COLUMNS = ("sku", "title", "price", "stock")


class ProductFileError(ValueError):
    """The file cannot be imported at all (unreadable, wrongly encoded, wrong columns)."""


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """One CSV row as catalogue values; raises ValueError saying what is wrong."""
    sku = (row.get("sku") or "").strip()
    title = (row.get("title") or "").strip()
    if not sku:
        raise ValueError("sku is empty")
    if len(sku) > 64:
        raise ValueError("sku is longer than 64 characters")
    if not title:
        raise ValueError("title is empty")
    try:
        price = Decimal((row.get("price") or "").strip())
    except InvalidOperation:
        raise ValueError(f"price {row.get('price')!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"price {row.get('price')!r} is not a non-negative amount")
    stock_text = (row.get("stock") or "").strip()
    if not stock_text.isdigit():
        raise ValueError(f"stock {stock_text!r} is not a whole number >= 0")
    return {
        "sku": sku,
        "title": title[:200],
        "price": price.quantize(Decimal("0.01")),
        "stock": int(stock_text),
    }


def read_products(csv_path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Valid rows and per-line errors of a product CSV; raises ProductFileError for the file."""
    valid: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    try:
        with open(csv_path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ProductFileError(f"{csv_path}: missing column(s) {', '.join(missing)}")
            by_sku: dict[str, dict[str, Any]] = {}
            for row in reader:
                try:
                    parsed = parse_row(row)
                except ValueError as exc:
                    errors.append({"line": reader.line_num, "reason": str(exc)})
                    continue
                by_sku[parsed["sku"]] = parsed  # the last line for a SKU wins
            valid = list(by_sku.values())
    except UnicodeDecodeError as exc:
        raise ProductFileError(
            f"{csv_path} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from exc
    except OSError as exc:
        raise ProductFileError(f"cannot read {csv_path}: {exc.strerror or exc}") from exc
    except csv.Error as exc:
        raise ProductFileError(f"{csv_path} is not valid CSV: {exc}") from exc
    return valid, errors


@shared_task(name="notifier.import_products", bind=True)  # type: ignore[untyped-decorator]
@import_job
def import_products(self: Any, store_id: int, csv_path: str) -> dict[str, Any]:
    """Upsert a store's products from a CSV; returns ``{"imported": n, "errors": [...]}``.

    Bad rows are skipped and reported with their line number and reason (5 or more of
    them notify); a file that cannot be read or decoded fails the job.
    """
    valid, errors = read_products(csv_path)
    with catalogue(catalogue_url(self.app.conf)) as db:
        imported = upsert_products(db, int(store_id), valid)
    return {"imported": imported, "errors": errors}
