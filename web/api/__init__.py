"""The admin JSON API under NOTIFIER_API_PREFIX (default /api/v1/admin/notifications).

The blueprint and its registry live in ``blueprint``; the route modules import that, never
this package, so importing them here registers the routes without an import circle.
"""

from __future__ import annotations

from . import alerts as alerts
from . import channels as channels
from . import deliveries as deliveries
from . import escalation as escalation
from . import health as health
from . import health_runs as health_runs
from . import notifications as notifications
from . import openapi as openapi
from . import preferences as preferences
from . import retry as retry
from . import stream as stream
from .blueprint import api as api
from .blueprint import api_blueprint as api_blueprint
from .errors import ApiError as ApiError

__all__ = ["ApiError", "api", "api_blueprint"]
