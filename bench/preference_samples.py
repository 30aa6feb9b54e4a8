"""Random admin preferences, as many admins would set them: the benchmark routes events for
them, and tests/notifier/test_preferences.py checks the grouped audience against ``decide``
on the same mix."""

from __future__ import annotations

import random
from datetime import time as clock

from notifier.enums import Priority, Severity
from notifier.preferences.rules import (
    Channel,
    DigestFrequency,
    DigestSchedule,
    Mode,
    Preferences,
    QuietHours,
    Rule,
    Window,
    categories,
)

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
LEVELS = {"notification": [str(p) for p in Priority], "alert": [str(s) for s in Severity]}
EVERY_DAY = frozenset(range(7))
NIGHTLY = (Window(EVERY_DAY, clock(22), clock(7)),)
WEEKEND = (Window(frozenset({5, 6}), clock(0), clock(0)),)


def random_preferences(
    rng: random.Random, *, digest: bool = False, varied: bool = False
) -> Preferences:
    """Six rules on random categories and channels (off, immediate or digest, with a random
    minimum or none), quiet hours nightly or at the weekend in one of ``ZONES``, an hourly
    digest if ``digest``.

    ``varied`` (for correctness checks, not timing): quiet hours may also run between any
    two hours or be unset, and email is switched off for about one admin in ten. Without
    it the draws are the ones the benchmark's recorded results were measured on.
    """
    rules = {}
    for category in rng.sample(categories(), 6):
        kind = category.split(":", 1)[0]
        channel = rng.choice([Channel.IN_APP, Channel.EMAIL])
        modes = [Mode.OFF, Mode.IMMEDIATE] + ([Mode.DIGEST] if channel is Channel.EMAIL else [])
        rules[(channel, category)] = Rule(rng.choice(modes), rng.choice([None, *LEVELS[kind]]))
    channels: dict[Channel, bool] = {}
    if varied:
        any_hours = (Window(EVERY_DAY, clock(rng.randrange(24)), clock(rng.randrange(24))),)
        windows = rng.choice([NIGHTLY, WEEKEND, any_hours, ()])
        channels[Channel.EMAIL] = rng.random() > 0.1
    else:
        windows = NIGHTLY if rng.random() < 0.5 else WEEKEND
    return Preferences(
        rules=rules,
        channels=channels,
        quiet=QuietHours(rng.choice(ZONES), windows),
        digest=DigestSchedule(DigestFrequency.HOURLY if digest else DigestFrequency.OFF),
    )
