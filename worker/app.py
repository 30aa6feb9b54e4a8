"""The bundled Celery app: ``celery -A worker.app worker``. Configured from celeryconfig.py."""

from __future__ import annotations

from celery import Celery

from .signals import install

app = Celery("notifier")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["worker"], related_name="jobs")
install(app)

__all__ = ["app"]
