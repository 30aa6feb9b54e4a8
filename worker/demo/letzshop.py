"""``import_letzshop_orders``: fetch a store's historical orders from the marketplace API."""

from __future__ import annotations

from typing import Any

import urllib3
from celery import shared_task

from ..decorators import sync_job
from .catalogue import catalogue, catalogue_url, known_skus

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRY_DELAY_SECONDS = 30.0
MAX_RETRIES = 3


class MarketplaceConfigError(RuntimeError):
    """The marketplace API is not configured."""


class MarketplaceError(RuntimeError):
    """The marketplace answered with an HTTP error."""


def fetch_orders(base_url: str, store_id: int, since: str, timeout: float) -> list[dict[str, Any]]:
    """``GET {base_url}/stores/{store_id}/orders?since=...`` -> its ``orders`` list."""
    response = urllib3.request(
        "GET",
        f"{base_url.rstrip('/')}/stores/{int(store_id)}/orders",
        fields={"since": since},
        timeout=timeout,
        retries=False,  # the task retries, with its own delay
    )
    if response.status >= 400:
        raise MarketplaceError(f"the marketplace answered HTTP {response.status}")
    payload = response.json()
    orders = payload.get("orders") if isinstance(payload, dict) else None
    if not isinstance(orders, list):
        raise ValueError("the marketplace answered without an 'orders' list")
    return [order for order in orders if isinstance(order, dict)]


@shared_task(name="notifier.import_letzshop_orders", bind=True, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
@sync_job
def import_letzshop_orders(self: Any, store_id: int, since: str) -> dict[str, Any]:
    """Import a store's orders since ``since`` (ISO date) from the marketplace.

    An HTTP error or timeout retries (``notifier_letzshop_retry_delay`` seconds apart,
    3 times) and then fails the job. Orders that reference SKUs missing from the store's
    catalogue are returned as ``order_exceptions``, one notification each.
    """
    conf = self.app.conf
    base_url = conf.get("notifier_letzshop_base_url")
    if not base_url:
        raise MarketplaceConfigError(
            "notifier_letzshop_base_url is not set; set NOTIFIER_LETZSHOP_URL for the worker"
        )
    timeout = float(conf.get("notifier_letzshop_timeout") or DEFAULT_TIMEOUT_SECONDS)
    try:
        orders = fetch_orders(str(base_url), store_id, since, timeout)
    except (urllib3.exceptions.HTTPError, MarketplaceError) as exc:
        delay = conf.get("notifier_letzshop_retry_delay")
        countdown = DEFAULT_RETRY_DELAY_SECONDS if delay is None else float(delay)
        raise self.retry(exc=exc, countdown=countdown) from exc
    wanted = {
        str(item.get("sku"))
        for order in orders
        for item in order.get("items") or []
        if isinstance(item, dict)
    }
    with catalogue(catalogue_url(conf)) as db:
        known = known_skus(db, int(store_id), wanted)
    exceptions = []
    for order in orders:
        skus = [str(i.get("sku")) for i in order.get("items") or [] if isinstance(i, dict)]
        missing = sorted({sku for sku in skus if sku not in known})
        if missing:
            exceptions.append(
                {"order_number": str(order.get("number", "?")), "unmatched_products": missing}
            )
    return {"orders": len(orders), "order_exceptions": exceptions}
