"""The shop's Celery settings (Celery's default config module name, on purpose: the
notifier installs no top-level ``celeryconfig`` that could shadow it)."""

import os

from celery.schedules import crontab

broker_url = os.environ.get("SHOP_BROKER_URL", "redis://127.0.0.1:6379/0")
task_acks_late = True
worker_prefetch_multiplier = 1

# The shop's own schedule; worker.py adds the notifier's entries to it.
beat_schedule = {
    "shop-nightly-import": {
        "task": "shop.import_products",
        "schedule": crontab(hour=2, minute=0),
        # Where the shop's supplier drops its nightly feed. A night without the file fails
        # the job, and the notifier tells the admins: what this example is about.
        "args": (1, "imports/store-1.csv"),
    },
}

# The notifier reads its settings from here: the database URL is written once, as the
# shop's own; `notifier init-db -A worker:app` reads the same value.
notifier_database_url = os.environ["SHOP_DATABASE_URL"]
notifier_spool_dir = os.environ.get("SHOP_SPOOL_DIR", "instance/notifier-spool")
