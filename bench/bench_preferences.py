"""Preferences benchmark: routing one event for 1,000 admins, and a digest run at scale.

    .venv/bin/python bench/bench_preferences.py [--admins 1000] [--events 300]
                                                [--notifications 100000]

(1) decision: routing one event on both channels for ``admins`` admins who all hold
    preferences (rules, minimums, quiet hours in several zones); p50/p95 over ``events``
    random events. Variants side by side: the audience kept across events (what the outbox
    does within a session), a cold one built per event (``decide_for_all``), and the same
    admins on default preferences. Target: p95 < 5 ms. Also timed: reading those admins'
    preferences from PostgreSQL (once per session, before the first event).
(2) digests: ``run_digests`` for ``admins`` admins with hourly digests, over 10,000 and
    then ``notifications`` notifications in the window (PostgreSQL, a loopback aiosmtpd
    sink in its own process receiving every digest). Wall time, and peak Python memory
    (tracemalloc, a separate run) and RSS growth, for both sizes side by side. Target:
    < 30 s, memory flat.

Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psutil
from preference_samples import LEVELS, random_preferences
from scratch import fresh_database
from sqlalchemy import insert, text

from notifier import Database
from notifier.delivery.digests import run_digests
from notifier.delivery.dispatch import DispatchSettings
from notifier.delivery.mail import SmtpSettings
from notifier.enums import AlertType, NotificationType, Priority, Severity
from notifier.models import AdminNotification, AdminPreferences, AdminUser, PlatformAlert
from notifier.preferences.rules import (
    Audience,
    Channel,
    DigestFrequency,
    Event,
    categories,
    decide_for_all,
)
from notifier.preferences.store import document_of, load_preferences
from notifier.types import utcnow


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_decision(admins: int, events: int, rng: random.Random) -> dict[str, Any]:
    held = {n: random_preferences(rng) for n in range(admins)}
    ids = list(range(admins))
    kinds = [("notification", str(t)) for t in NotificationType] + [
        ("alert", str(t)) for t in AlertType
    ]
    sample = []
    for _ in range(events):
        kind, type_ = rng.choice(kinds)
        sample.append(Event(kind, type_, rng.choice(LEVELS[kind])))
    variants = ["preferences, kept audience", "preferences, cold", "defaults, kept audience"]
    results: dict[str, list[float]] = {variant: [] for variant in variants}
    kept = Audience(held, ids)
    plain = Audience({}, ids)
    # The kept audiences have met every category once (grouping is lazy, per category):
    # the cold variant shows what a first event of a category costs.
    for audience in (kept, plain):
        for channel in Channel:
            for category in categories():
                audience.groups(channel, category)
    for round_ in range(2):  # alternate the order of the variants
        for variant in variants if round_ == 0 else variants[::-1]:
            for event in sample:
                now = utcnow()
                started = time.perf_counter()
                for channel in Channel:
                    if variant == "preferences, cold":
                        decide_for_all(event, held, ids, now, channel)
                    else:
                        (kept if variant.startswith("preferences") else plain).route(
                            event, now, channel
                        )
                results[variant].append((time.perf_counter() - started) * 1000)
    return {
        variant: (statistics.median(values), _pct(values, 0.95))
        for variant, values in results.items()
    }


def _seed_admins(database: Database, admins: int, rng: random.Random) -> None:
    now = utcnow()
    with database.engine.begin() as conn:
        conn.execute(
            insert(AdminUser),
            [
                {
                    "email": f"admin{n}@shop.example",
                    "display_name": f"Admin {n}",
                    "password_hash": "x",
                    "is_active": True,
                    "created_at": now,
                }
                for n in range(admins)
            ],
        )
        query = text("SELECT id FROM notifier_admin_users ORDER BY id")
        ids = [row[0] for row in conn.execute(query)]
        rows = []
        for admin_id in ids:
            document = document_of(random_preferences(rng, digest=True))
            rules = {
                channel: {
                    k: v for k, v in cells.items() if v != {"mode": "immediate", "min_level": None}
                }
                for channel, cells in document["rules"].items()
            }
            rows.append(
                {
                    "user_id": admin_id,
                    "rules": rules,
                    "channels": {},
                    "time_zone": "UTC",  # no quiet hours now: every digest is due
                    "quiet_windows": [],
                    "digest_frequency": DigestFrequency.HOURLY,
                    "digest_hour": 8,
                    "updated_at": now,
                }
            )
        conn.execute(insert(AdminPreferences), rows)


def _seed_notifications(database: Database, count: int, rng: random.Random) -> None:
    start = utcnow() - timedelta(minutes=50)
    types = list(NotificationType)
    priorities = list(Priority)
    with database.engine.begin() as conn:
        for offset in range(0, count, 10_000):
            conn.execute(
                insert(AdminNotification),
                [
                    {
                        "type": rng.choice(types),
                        "priority": rng.choice(priorities),
                        "title": f"n{offset + i}",
                        "message": "m",
                        "is_read": False,
                        "action_required": False,
                        "notification_metadata": {},
                        "created_at": start + timedelta(seconds=rng.random() * 2900),
                    }
                    for i in range(min(10_000, count - offset))
                ],
            )


def _seed_alerts(database: Database, rng: random.Random) -> None:
    now = utcnow()
    with database.engine.begin() as conn:
        conn.execute(
            insert(PlatformAlert),
            [
                {
                    "alert_type": rng.choice(list(AlertType)),
                    "severity": rng.choice(list(Severity)),
                    "title": f"alert {n}",
                    "fingerprint": f"fp-{n}",
                    "occurrence_count": rng.randint(1, 5000),
                    "first_occurred_at": now - timedelta(minutes=30),
                    "last_occurred_at": now,
                    "is_resolved": False,
                    "affected_stores": [],
                    "affected_systems": [],
                    "alert_metadata": {},
                    "created_at": now,
                }
                for n in range(50)
            ],
        )


def _digest_run(database: Database, settings: DispatchSettings, traced: bool) -> dict[str, float]:
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM notifier_digests"))
    rss_before = psutil.Process().memory_info().rss
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    report = run_digests(database, settings)
    elapsed = time.perf_counter() - started
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "seconds": elapsed,
        "sent": report.counts.get("sent", 0),
        "peak_mib": peak / 2**20,
        "rss_growth_mib": (psutil.Process().memory_info().rss - rss_before) / 2**20,
    }


@contextmanager
def smtp_sink() -> Iterator[int]:
    """An aiosmtpd server that discards mail, in its own process (it must not share our GIL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    sink = subprocess.Popen([*command, "-c", "aiosmtpd.handlers.Sink"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        sink.terminate()
        sink.wait(10)


def bench_digests(admins: int, notifications: int, rng: random.Random) -> dict[str, Any]:
    with smtp_sink() as port, fresh_database("notifier_bench_prefs") as url:
        settings = DispatchSettings(
            smtp=SmtpSettings.from_url(f"smtp://127.0.0.1:{port}", sender="notifier@shop.example"),
            base_url="https://admin.shop.example",
        )
        database = Database(url)
        _seed_admins(database, admins, rng)
        _seed_alerts(database, rng)
        load = []
        for _ in range(20):
            started = time.perf_counter()
            with database.session_scope() as db:
                load_preferences(db)
            load.append((time.perf_counter() - started) * 1000)
        results: dict[Any, Any] = {"load_ms": (statistics.median(load), _pct(load, 0.95))}
        small = min(10_000, notifications)
        _seed_notifications(database, small, rng)
        results[small] = (
            _digest_run(database, settings, False),
            _digest_run(database, settings, True),
        )
        if notifications > small:
            _seed_notifications(database, notifications - small, rng)
            results[notifications] = (
                _digest_run(database, settings, False),
                _digest_run(database, settings, True),
            )
        database.dispose()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admins", type=int, default=1000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--notifications", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(11)

    decision = bench_decision(args.admins, args.events, rng)
    print(f"(1) routing one event, {args.admins} admins, both channels, {args.events} events x 2")
    for variant, (p50, p95) in decision.items():
        print(f"    {variant:28s} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
    kept_p95 = decision["preferences, kept audience"][1]
    ratio = kept_p95 / decision["defaults, kept audience"][1]
    verdict = "met" if kept_p95 < 5 else "MISSED"
    print(f"    ratio p95 preferences/defaults: {ratio:.1f}x   target p95 < 5 ms: {verdict}")

    digests = bench_digests(args.admins, args.notifications, rng)
    p50, p95 = digests.pop("load_ms")
    print(
        f"    reading {args.admins} admins' preferences (PostgreSQL): "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    print(f"(2) run_digests, {args.admins} admins with hourly digests (PostgreSQL, SMTP sink)")
    for size, (plain, traced) in digests.items():
        print(
            f"    {size:>7,} notifications: {plain['seconds']:6.1f} s, sent {plain['sent']:.0f};"
            f" traced: peak {traced['peak_mib']:.1f} MiB, RSS +{plain['rss_growth_mib']:.1f} MiB"
        )
    sizes = sorted(digests)
    if len(sizes) == 2:
        small, large = (digests[s] for s in sizes)
        time_ratio = large[0]["seconds"] / small[0]["seconds"]
        memory_ratio = large[1]["peak_mib"] / small[1]["peak_mib"]
        print(
            f"    ratio {sizes[1]:,} / {sizes[0]:,}: time {time_ratio:.2f}x,"
            f" peak memory {memory_ratio:.2f}x"
        )
    slowest = max(plain["seconds"] for plain, _ in digests.values())
    print(f"    target < 30 s: {'met' if slowest < 30 else 'MISSED'}")
    print(f"    load average while running: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
