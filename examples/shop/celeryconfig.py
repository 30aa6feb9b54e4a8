"""The shop's Celery settings (Celery's default config module name, on purpose: the
notifier installs no top-level ``celeryconfig`` that could shadow it)."""

import os

broker_url = os.environ.get("SHOP_BROKER_URL", "redis://127.0.0.1:6379/0")
task_acks_late = True
worker_prefetch_multiplier = 1

# The notifier reads its settings from here: the database URL is written once, as the
# shop's own; `notifier init-db -A worker:app` reads the same value.
notifier_database_url = os.environ["SHOP_DATABASE_URL"]
notifier_spool_dir = os.environ.get("SHOP_SPOOL_DIR", "instance/notifier-spool")
