"""Shared fixtures of the core tests; the delivery tests' receivers, importable here as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import scratch_postgres
from tests.receivers import MailSink as MailSink
from tests.receivers import Receiver as Receiver


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema yet (a SQLite file, a new PostgreSQL database), dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with scratch_postgres("notifier_mig") as url:
        yield url
