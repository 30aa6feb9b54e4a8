"""The one guard every line of notifier code in a worker runs inside.

Whatever goes wrong in the notifier is logged once and swallowed, so the host task's state,
result, exception and traceback stay exactly what Celery made them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["guard"]

logger = logging.getLogger("notifier.worker")


@contextmanager
def guard(what: str, **context: Any) -> Iterator[None]:
    """Log and swallow any error of notifier code, so the host task is never affected."""
    try:
        yield
    except Exception:
        logger.exception("notifier: %s failed (%r); the task itself is unaffected", what, context)
