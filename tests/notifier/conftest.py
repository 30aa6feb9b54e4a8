"""The delivery tests' receivers, importable here as before (they live in tests/receivers.py)."""

from __future__ import annotations

from tests.receivers import MailSink as MailSink
from tests.receivers import Receiver as Receiver
