"""The beat entries the package provides: daily retention, the delivery sweep, digests, reminders.

A host with its own Celery app merges them into its schedule::

    from notifier.worker import beat_schedule
    app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule()}

Run one beat (``celery -A yourapp beat``). Two beats at once send no digest twice (each
admin's period is claimed in the database), but run retention twice; for a highly available
beat use celery-redbeat (see the README).
"""

from __future__ import annotations

import os

__all__ = ["DIGEST_TICK", "beat_schedule"]

#: Seconds between digest runs (``NOTIFIER_DIGEST_EVERY``): a digest goes out within this
#: of its period's start.
DIGEST_TICK = 60.0


def beat_schedule(retention: str | None = None) -> dict[str, dict[str, object]]:
    """The notifier's beat entries: prune, the delivery sweep, digests and reminders.

    ``notifier-prune`` daily (``NOTIFIER_RETENTION``, 90d), ``notifier-dispatch`` (the
    delivery sweep, every ``NOTIFIER_DISPATCH_SWEEP`` seconds, 30), ``notifier-digests`` and
    ``notifier-alert-reminders`` (every 5 minutes).
    """
    sweep = float(os.environ.get("NOTIFIER_DISPATCH_SWEEP") or 30)
    return {
        "notifier-prune": {
            "task": "notifier.prune",
            "schedule": 24 * 60 * 60,
            "kwargs": {"older_than": retention or os.environ.get("NOTIFIER_RETENTION") or "90d"},
        },
        # Deliveries nobody kicked (queued where no Celery app was at hand) and retries
        # coming due; a worker's drainer also sweeps every 5 s, so this matters most without one.
        "notifier-dispatch": {
            "task": "notifier.dispatch_deliveries",
            "schedule": sweep,
            "options": {"expires": sweep},
        },
        "notifier-digests": {"task": "notifier.digests", "schedule": _digest_tick()},
        # Critical alerts owed a reminder: one per alert and NOTIFIER_ALERT_REPEAT_INTERVAL
        # (claimed in the database), however often this ticks.
        "notifier-alert-reminders": {"task": "notifier.alert_reminders", "schedule": 5 * 60},
    }


def _digest_tick() -> float:
    raw = (os.environ.get("NOTIFIER_DIGEST_EVERY") or "").strip()
    try:
        tick = float(raw) if raw else DIGEST_TICK
    except ValueError:
        tick = -1.0
    if not 1 <= tick <= 3600:
        raise ValueError(
            f"NOTIFIER_DIGEST_EVERY={raw!r} must be a number of seconds from 1 to 3600 "
            "(how often beat looks for due digests)"
        )
    return tick
