"""The bundled jobs: a product CSV import, a Letzshop order import, retention, deliveries,
digests, reminders."""

from __future__ import annotations

from .delivery import dispatch_deliveries as dispatch_deliveries
from .digests import send_digests as send_digests
from .letzshop import import_letzshop_orders as import_letzshop_orders
from .products import import_products as import_products
from .reminders import send_alert_reminders as send_alert_reminders
from .retention import prune_old as prune_old

__all__ = [
    "dispatch_deliveries",
    "import_letzshop_orders",
    "import_products",
    "prune_old",
    "send_alert_reminders",
    "send_digests",
]
