"""The one guard every line of notifier code in a worker runs inside."""

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
