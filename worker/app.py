"""The bundled Celery app (``celery -A notifier.worker.app worker``), set up by its celeryconfig."""

from __future__ import annotations

from celery import Celery

from .signals import install

app = Celery("notifier")
app.config_from_object("notifier.worker.celeryconfig")
app.autodiscover_tasks(["notifier.worker"], related_name="jobs")
install(app)

__all__ = ["app"]
