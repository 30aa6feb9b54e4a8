"""The demo: ``notifier demo`` and everything it runs.

Its tasks that fail on purpose, its stand-in receivers and
the sample import jobs (a product CSV, a marketplace's orders).

Nothing in ``notifier.worker`` or ``notifier.worker.jobs`` imports this package, so a host
never registers a demo task by accident; the demo worker loads it with
``--include notifier.worker.demo.tasks``.
"""

from __future__ import annotations

__all__: list[str] = []
