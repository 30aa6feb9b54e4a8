"""The bundled jobs: a product CSV import and a Letzshop order import."""

from __future__ import annotations

from .letzshop import import_letzshop_orders as import_letzshop_orders
from .products import import_products as import_products

__all__ = ["import_letzshop_orders", "import_products"]
