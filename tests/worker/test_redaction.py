"""Secrets never reach notification metadata; sizes stay within the core's limit."""

from __future__ import annotations

import json

from notifier.worker.redaction import safe_arguments

from notifier import TRACEBACK_CHARS, clip


def test_secret_names_are_redacted_in_any_case_at_any_depth() -> None:
    value = safe_arguments(
        {
            "user": "ann",
            "PASSWORD": "p",
            "config": {"Api_Key": "k", "items": [{"x-Authorization": "Bearer t"}]},
            "refresh_token": "r",
            "client_secret": "s",
        }
    )
    text = json.dumps(value)
    assert "ann" in text
    for secret in ('"p"', '"k"', "Bearer t", '"r"', '"s"'):
        assert secret not in text


def test_large_arguments_and_tracebacks_are_capped() -> None:
    capped = safe_arguments({"blob": "x" * 100_000})
    assert len(json.dumps(capped)) < 5000
    traceback = "Traceback...\n" + "frame\n" * 10_000 + "ValueError: the cause"
    clipped = clip(traceback, TRACEBACK_CHARS, keep_end=True)
    assert len(clipped) <= 6000 and clipped.endswith("ValueError: the cause")
