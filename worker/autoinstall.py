"""Installs the plugin on any app configured from celeryconfig.

Imported by a worker through ``imports`` in celeryconfig.py: installs the plugin on the
app that worker runs, so any app configured from celeryconfig gets it.
"""

from __future__ import annotations

from celery import current_app

from .signals import install

install(current_app._get_current_object())
