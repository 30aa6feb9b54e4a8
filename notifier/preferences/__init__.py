"""Preferences: who gets what, when and on which channel, and how each admin's are stored."""

from __future__ import annotations

from .store import admin_bell_filter as admin_bell_filter
from .store import category_table as category_table
from .store import preferences_document as preferences_document
from .store import save_preferences as save_preferences

__all__ = [
    "admin_bell_filter",
    "category_table",
    "preferences_document",
    "save_preferences",
]
