"""The shop's Celery worker: ``celery -A worker worker`` from this folder."""

from __future__ import annotations

import csv
from typing import Any

from celery import Celery
from notifier.worker import beat_schedule, import_job, install

app = Celery("shop")
app.config_from_object("celeryconfig")
install(app)
# The notifier's beat entries beside the shop's own (`celery -A worker beat`), and the
# jobs they run.
app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule()}
app.conf.imports = [*app.conf.imports, "notifier.worker.jobs"]


@app.task(
    name="shop.import_products",
    bind=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=5,  # 5 s, 10 s, 20 s... instead of Celery's fixed 180 s
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=3,
)
@import_job(store_id="store_id", store_name=lambda args: f"Shop store {args['store_id']}")
def import_products(self: Any, store_id: int, csv_path: str) -> dict[str, Any]:
    """Import a store's product CSV; a missing file fails the job (and tells the admins)."""
    errors: list[str] = []
    imported = 0
    with open(csv_path, encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if not row.get("sku"):
                errors.append(f"line {line}: sku is missing")
            else:
                imported += 1
    return {"imported": imported, "errors": errors}
