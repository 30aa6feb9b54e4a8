"""The beat entries the package provides: daily retention and the admins' digests.

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
    """``notifier-prune`` daily (``NOTIFIER_RETENTION``, 90d) and ``notifier-digests``."""
    return {
        "notifier-prune": {
            "task": "notifier.prune",
            "schedule": 24 * 60 * 60,
            "kwargs": {"older_than": retention or os.environ.get("NOTIFIER_RETENTION") or "90d"},
        },
        "notifier-digests": {"task": "notifier.digests", "schedule": _digest_tick()},
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
