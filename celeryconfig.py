"""The bundled worker's Celery settings, for ``celery --config celeryconfig`` in a checkout.

They live in the package as ``notifier.worker.celeryconfig`` (what ``notifier.worker.app``
and ``notifier demo`` read), so installing notifier never adds a top-level ``celeryconfig``
module that would shadow a host project's own; a host copies what it needs into its own.
"""

from notifier.worker.celeryconfig import *  # noqa: F403
