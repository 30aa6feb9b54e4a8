"""Celery settings of the bundled worker (``celery -A notifier.worker.app worker``).

Every value comes from ``notifier.Settings`` (the ``NOTIFIER_*`` environment variables), so
a bare checkout runs on the embedded defaults: kombu's SQLAlchemy transport on
``instance/broker.db`` as the broker, SQLite for the notifier store.
"""

from __future__ import annotations

import os

from notifier import Settings

from .schedule import beat_schedule as _beat_schedule

_settings = Settings.from_env()

# Broker: Redis (redis://), RabbitMQ (amqp://) or the embedded sqla+sqlite:// by URL.
broker_url = _settings.broker_url
broker_connection_retry_on_startup = True
result_backend = os.environ.get("NOTIFIER_RESULT_BACKEND") or None

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# A job's message is acknowledged only after it ran, so a worker that dies mid-job does not
# lose it; a killed pool child still ends as FAILED (WorkerLostError), not in a requeue loop.
task_acks_late = True
task_reject_on_worker_lost = False
# Imports are long: one message per process at a time keeps the rest on the queue for others.
worker_prefetch_multiplier = 1

# Imported by every worker at start: the bundled jobs, and the plugin (install on this app).
imports = ("notifier.worker.jobs", "notifier.worker.autoinstall")

# The notifier plugin (see README "For Celery task authors").
notifier_database_url = _settings.database_url
# On SQLite: the Redis on which recorded failures announce themselves to live streams.
notifier_live_redis_url = _settings.live_redis_url
notifier_spool_dir = str(_settings.instance_path / "spool")
notifier_error_threshold = 5
notifier_notification_cooldown = 15 * 60  # seconds
notifier_catalogue_url = f"sqlite:///{_settings.instance_path / 'catalogue.db'}"
notifier_letzshop_base_url = os.environ.get("NOTIFIER_LETZSHOP_URL") or None
notifier_letzshop_timeout = 10.0
notifier_letzshop_retry_delay = float(os.environ.get("NOTIFIER_LETZSHOP_RETRY_DELAY") or 30)
# Job health: queues to watch beyond the default, task_queues, routes and beat (commas).
notifier_health_queues = [q for q in os.environ.get("NOTIFIER_HEALTH_QUEUES", "").split(",") if q]
# An open critical alert nobody acknowledged is emailed again this often (seconds).
notifier_alert_repeat_interval = _settings.alert_repeat_interval.total_seconds()

# Spooled events need no schedule (each worker's drainer, a process next to a prefork
# worker, replays them). Retention, the delivery sweep, digests and reminders do (`celery -A
# notifier.worker.app beat`): read notifications and resolved alerts older than
# NOTIFIER_RETENTION (default 90d) go once a day, in bounded batches; deliveries no one
# kicked go out within NOTIFIER_DISPATCH_SWEEP seconds (30); every minute beat looks for
# digest periods that began (each admin and period is claimed once, so a second beat is
# harmless); every 5 minutes it looks for critical alerts owed a reminder (one per alert and
# NOTIFIER_ALERT_REPEAT_INTERVAL, however often it ticks). A host merges these into its own
# schedule with `notifier.worker.beat_schedule()`.
beat_schedule: dict[str, dict[str, object]] = _beat_schedule()

# `notifier demo` shows a scheduled job that never runs: its entry is routed to a queue no
# demo worker consumes, so the Job health page, an alert and the bell report it missed.
if os.environ.get("NOTIFIER_DEMO_MISSED_ENTRY") == "1":
    beat_schedule["notifier-demo-missed-report"] = {
        "task": "notifier.demo.missed_report",
        "schedule": 10.0,
        "options": {"queue": "notifier-demo-nobody", "expires": 10, "notifier_grace": 5},
    }
