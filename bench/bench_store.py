"""Store benchmark on PostgreSQL: the services against raw psycopg, side by side in one run.

    .venv/bin/python bench/bench_store.py [--rows 3000] [--calls 500] [--rounds 5]

(1) ``create_notification`` + commit per row, against raw psycopg + COMMIT of the same row,
    two ways. Target: at least 0.6 of raw.
    - "raw minimal" (the original baseline): ``INSERT`` with the enums and ``created_at``
      written as SQL literals, nothing returned, no validation, no delivery outbox.
    - "raw, same SQL": the statement the service sends, every value a parameter,
      ``RETURNING`` the whole row (the service hands it back) and whether any delivery
      endpoint is enabled (the outbox needs to know), fetched. Same SQL and round trips as
      the service, so this ratio is the client side alone: validation, the ``Session``,
      the ORM loading the row, the metrics and outbox hooks.
    - "bare ORM": SQLAlchemy's own floor, no notifier code: a plain engine and ``Session``,
      ``session.add(AdminNotification(...))`` and ``commit()`` (an ``INSERT ... RETURNING
      id``). The service's ratio to it is what the notifier adds over the ORM it is
      specified with; its ratio to raw is what the ORM costs.
(2) ``create_or_increment_alert`` from 8 processes on one fingerprint, against raw psycopg
    from 8 processes, two ways. Target: at least 0.6 of raw, count exact.
    - "raw minimal" (the original baseline): an upsert that only adds one to the count and
      sets ``last_occurred_at``, nothing returned.
    - "raw, same SQL": the service's own statement (``notifier.upserts.upsert_alert``,
      compiled for psycopg: severity rise, snooze and acknowledgment lifted, store and
      system lists merged) with the same parameters, ``RETURNING`` the row, fetched.
    - "bare Session": that same statement through a plain engine's ``Session.execute``,
      row fetched, committed: the ``Session``'s floor for it, no notifier code.

The create variants take turns every 50 rows and the upsert variants round by round, so
machine noise hits them alike; ratios are of totals.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier

import psycopg
from scratch import fresh_database
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from notifier import Database, admin_notification_service, platform_alert_service
from notifier.models import AdminNotification
from notifier.upserts import upsert_alert

PROCESSES = 8
_fork = multiprocessing.get_context("fork")

RAW_UPSERT = """
INSERT INTO notifier_platform_alerts (alert_type, severity, title, affected_stores,
    affected_systems, fingerprint, occurrence_count, first_occurred_at, last_occurred_at,
    is_resolved, alert_metadata, created_at)
VALUES ('integration', 'error', %(title)s, '[1]', '[]', %(fp)s, 1, now(), now(), false,
    '{}', now())
ON CONFLICT (fingerprint) WHERE NOT is_resolved DO UPDATE SET
    occurrence_count = notifier_platform_alerts.occurrence_count + 1,
    last_occurred_at = excluded.last_occurred_at
"""


# What create_notification sends (the echo log of one call), written by hand.
RAW_SAME_INSERT = """
INSERT INTO notifier_admin_notifications (type, priority, title, message, is_read, action_required,
    action_url, notification_metadata, store_id, dedup_key, alert_fingerprint, created_at)
VALUES (%(type)s, %(priority)s, %(title)s, %(message)s, false, false, NULL, %(metadata)s, 5,
    NULL, NULL, %(created_at)s)
RETURNING *, EXISTS (SELECT 1 FROM notifier_delivery_endpoints
    WHERE notifier_delivery_endpoints.is_enabled)
"""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


#: The create variants take turns every this many rows, so a burst of load from elsewhere
#: (a shared disk's fsync, another process) hits all three alike.
CHUNK = 50


def bench_create(url: str, rows: int) -> tuple[float, float, float, float]:
    """Seconds for ``rows`` service inserts, raw minimal, raw same-SQL, bare ORM inserts."""
    database = Database(url)
    plain = create_engine(url)
    metadata = {"job_id": 1, "store_name": "Acme"}
    title = "Import failed for store {}"
    message = "CSV parsing failed: invalid column format"

    def ours(i: int) -> None:
        with database.session_scope() as db:
            admin_notification_service.create_notification(
                db,
                type="import_failure",
                priority="high",
                title=title.format(i),
                message=message,
                metadata=metadata,
                store_id=5,
            )

    def raw(i: int) -> None:
        conn.execute(
            "INSERT INTO notifier_admin_notifications (type, priority, title, message, is_read,"
            " action_required, notification_metadata, store_id, created_at)"
            " VALUES ('import_failure', 'high', %s, %s, false, false, %s, 5, now())",
            (title.format(i), message, json.dumps(metadata)),
        )
        conn.commit()

    def same(i: int) -> None:
        conn.execute(
            RAW_SAME_INSERT,
            {
                "type": "import_failure",
                "priority": "high",
                "title": title.format(i),
                "message": message,
                "metadata": json.dumps(metadata),
                "created_at": datetime.now(UTC),
            },
        ).fetchone()
        conn.commit()

    def orm(i: int) -> None:
        with Session(plain) as session:
            session.add(
                AdminNotification(
                    type="import_failure",
                    priority="high",
                    title=title.format(i),
                    message=message,
                    notification_metadata=metadata,
                    store_id=5,
                )
            )
            session.commit()

    totals = [0.0, 0.0, 0.0, 0.0]
    with psycopg.connect(_libpq(url)) as conn:
        for first in range(0, rows, CHUNK):
            for n, variant in enumerate((ours, raw, same, orm)):
                start = time.perf_counter()
                for i in range(first, min(first + CHUNK, rows)):
                    variant(i)
                totals[n] += time.perf_counter() - start
    database.dispose()
    plain.dispose()
    return totals[0], totals[1], totals[2], totals[3]


def _service_upserts(url: str, barrier: Barrier, calls: int, fp: str) -> None:
    database = Database(url)
    barrier.wait()
    for _ in range(calls):
        with database.session_scope() as db:
            platform_alert_service.create_or_increment_alert(
                db,
                alert_type="integration",
                severity="error",
                title="Marketplace unreachable",
                fingerprint=fp,
                affected_stores=[1],
            )
    database.dispose()


def _raw_upserts(url: str, barrier: Barrier, calls: int, fp: str) -> None:
    with psycopg.connect(_libpq(url)) as conn:
        barrier.wait()
        for _ in range(calls):
            conn.execute(RAW_UPSERT, {"title": "Marketplace unreachable", "fp": fp})
            conn.commit()


def _alert_values(fp: str, *, as_json: bool) -> dict[str, object]:
    """The upsert's parameters: JSON columns as text for raw psycopg, as values for a Session."""
    now = datetime.now(UTC)
    return {
        "alert_type": "integration",
        "severity": "error",
        "title": "Marketplace unreachable",
        "description": None,
        "affected_stores": "[1]" if as_json else [1],
        "affected_systems": "[]" if as_json else [],
        "fingerprint": fp,
        "occurrence_count": 1,
        "first_occurred_at": now,
        "last_occurred_at": now,
        "is_resolved": False,
        "alert_metadata": "{}" if as_json else {},
        "created_at": now,
    }


def _same_upserts(url: str, barrier: Barrier, calls: int, fp: str) -> None:
    from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

    from notifier.upserts import upsert_alert

    sql = str(upsert_alert("postgresql").compile(dialect=psycopg_dialect.dialect()))
    with psycopg.connect(_libpq(url)) as conn:
        barrier.wait()
        for _ in range(calls):
            conn.execute(sql, _alert_values(fp, as_json=True)).fetchone()
            conn.commit()


def _session_upserts(url: str, barrier: Barrier, calls: int, fp: str) -> None:
    plain = create_engine(url)
    statement = upsert_alert("postgresql")
    barrier.wait()
    for _ in range(calls):
        with Session(plain) as session:
            session.execute(statement, _alert_values(fp, as_json=False)).fetchone()
            session.commit()
    plain.dispose()


def bench_upsert(url: str, target: object, calls: int) -> tuple[float, int]:
    """Seconds for 8 processes x ``calls`` upserts on one fresh fingerprint; final count."""
    fp = f"bench-{uuid.uuid4().hex}"
    barrier = _fork.Barrier(PROCESSES + 1)
    procs = [
        _fork.Process(target=target, args=(url, barrier, calls, fp))  # type: ignore[arg-type]
        for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    assert all(proc.exitcode == 0 for proc in procs)
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute(
            "SELECT count(*), sum(occurrence_count) FROM notifier_platform_alerts"
            " WHERE fingerprint = %s",
            (fp,),
        ).fetchone()
    assert row is not None
    alerts, total = row
    if alerts != 1 or total != PROCESSES * calls:
        raise SystemExit(f"count wrong: {alerts} alerts, occurrence_count {total}")
    return elapsed, int(total)


def main() -> None:
    """Run both benchmarks and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000, help="inserts per variant per round")
    parser.add_argument("--calls", type=int, default=500, help="upserts per process per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with fresh_database() as url:
        ours_total = raw_total = same_total = orm_total = 0.0
        svc_total = rawu_total = sameu_total = sessu_total = 0.0
        for r in range(args.rounds):
            ours, raw, same, orm = bench_create(url, args.rows)
            ours_total, raw_total = ours_total + ours, raw_total + raw
            same_total, orm_total = same_total + same, orm_total + orm
            svc, count_svc = bench_upsert(url, _service_upserts, args.calls)
            rawu, count_raw = bench_upsert(url, _raw_upserts, args.calls)
            sameu, _ = bench_upsert(url, _same_upserts, args.calls)
            sessu, _ = bench_upsert(url, _session_upserts, args.calls)
            svc_total, rawu_total = svc_total + svc, rawu_total + rawu
            sameu_total, sessu_total = sameu_total + sameu, sessu_total + sessu
            print(
                f"round {r + 1}: create {args.rows / ours:6.0f}/s vs raw {args.rows / raw:6.0f}/s"
                f" (same SQL {args.rows / same:6.0f}/s, bare ORM {args.rows / orm:6.0f}/s)"
                f" | upsert x{PROCESSES} {count_svc / svc:6.0f}/s vs raw {count_raw / rawu:6.0f}/s"
                f" (same SQL {count_raw / sameu:6.0f}/s,"
                f" bare Session {count_raw / sessu:6.0f}/s)"
                f" (count {count_svc} exact)"
            )
        n = args.rows * args.rounds
        m = PROCESSES * args.calls * args.rounds
        print()
        print(f"create_notification+commit: {n / ours_total:8.0f} rows/s")
        print(f"raw minimal INSERT+COMMIT:  {n / raw_total:8.0f} rows/s")
        print(f"ratio (target >= 0.60):     {raw_total / ours_total:8.2f}")
        print(f"raw same SQL+COMMIT:        {n / same_total:8.0f} rows/s")
        print(f"ratio to same SQL:          {same_total / ours_total:8.2f}")
        print(f"bare ORM add+commit:        {n / orm_total:8.0f} rows/s")
        print(f"ratio to bare ORM:          {orm_total / ours_total:8.2f}")
        print(f"bare ORM / raw minimal:     {raw_total / orm_total:8.2f}")
        print(f"create_or_increment x{PROCESSES}:     {m / svc_total:8.0f} upserts/s")
        print(f"raw minimal upsert x{PROCESSES}:      {m / rawu_total:8.0f} upserts/s")
        print(f"ratio (target >= 0.60):     {rawu_total / svc_total:8.2f}")
        print(f"raw same SQL upsert x{PROCESSES}:     {m / sameu_total:8.0f} upserts/s")
        print(f"ratio to same SQL:          {sameu_total / svc_total:8.2f}")
        print(f"bare Session, same SQL x{PROCESSES}:  {m / sessu_total:8.0f} upserts/s")
        print(f"ratio to bare Session:      {sessu_total / svc_total:8.2f}")
        print(f"bare Session / raw minimal: {rawu_total / sessu_total:8.2f}")


if __name__ == "__main__":
    main()
