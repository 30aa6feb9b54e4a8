"""Act from an email, end to end: failure -> email -> link -> acknowledged, on PostgreSQL.

    .venv/bin/python bench/bench_actions.py [--rounds 50]

Each round records one job failure (``record_failures``, what the drainer calls; a new
fingerprint each round, so each opens an alert), runs the dispatcher once (``dispatch_due``:
the alert's email, with its action links signed, goes to an aiosmtpd sink on loopback),
reads the "Acknowledge" link from the received email, opens it (GET, the confirmation
page) and confirms (POST) against the admin app served on a real socket, with no session,
as an admin clicking the link would. The round ends when the POST answered and the alert
reads acknowledged via email. Printed: p50 / p95 / max of each leg and of the round.

Not included: the dispatcher's wake-up after the commit (a ``DispatcherThread`` is woken
by the commit; ``bench_delivery.py`` (2) measures that path) and a person's reading time.
Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import requests
from notifier.web import create_app
from scratch import fresh_database
from werkzeug.serving import make_server

from notifier import Database, FailureReport, JobKind
from notifier.accounts.users import create_admin
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.failures import record_failures
from notifier.models import PlatformAlert
from notifier.outbox import ensure_default_email_endpoint

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.receivers import serve_smtp  # noqa: E402  (the tests' aiosmtpd sink)

ADMIN = "ops@shop.example"
LINK = re.compile(r"^Acknowledge: (\S+)", re.M)


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:7.1f} {p95 * 1000:7.1f} {ordered[-1] * 1000:7.1f}"


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    smtp = serve_smtp()
    smtp_url, sink = next(smtp)
    with fresh_database("notifier_bench_actions") as url:
        database = Database(url)
        with database.session_scope() as db:
            admin_id = create_admin(db, email=ADMIN, password="bench password 1").id
            rule = ensure_default_email_endpoint(db)
            rule.event_types, rule.min_severity = ["alert.opened"], None  # every new alert
        app = create_app({"SECRET_KEY": "bench", "NOTIFIER_DATABASE_URL": url})
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        settings = DispatchSettings(
            smtp=SmtpSettings.from_url(smtp_url, sender="notifier@shop.example"),
            base_url=base,
            emails_per_hour=1_000_000,  # every round's email goes out, none to the digest
        )
        legs: dict[str, list[float]] = {k: [] for k in ("record", "email", "get", "post", "round")}
        try:
            for n in range(args.rounds):
                sink.messages.clear()
                report = FailureReport(
                    key=f"bench:{uuid.uuid4()}",
                    job=JobKind.GENERIC,
                    task_name="shop.sync",
                    task_id=str(n),
                    exception_class="TimeoutError",
                    message="upstream timed out",
                    fingerprint=f"bench-actions-{n}",
                )
                started = time.perf_counter()
                with database.session_scope() as db:
                    record_failures(db, [report], cooldown=timedelta(0))
                recorded = time.perf_counter()
                assert dispatch_due(database, settings).counts == {"succeeded": 1}
                [email] = sink.to(ADMIN)
                text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                link = LINK.search(text)
                assert link, text
                emailed = time.perf_counter()
                browser = requests.Session()  # no session cookie: the link is the credential
                page = browser.get(link.group(1), timeout=10)
                assert page.status_code == 200, page.text
                shown = time.perf_counter()
                token = link.group(1).rsplit("/", 1)[1]
                done = browser.post(link.group(1), data={"token": token}, timeout=10)
                assert done.status_code == 200, done.text
                confirmed = time.perf_counter()
                with database.session_scope() as db:
                    alert = (
                        db.query(PlatformAlert).filter_by(fingerprint=f"bench-actions-{n}").one()
                    )
                    assert alert.acknowledged_via == "email"
                    assert alert.acknowledged_by_user_id == admin_id
                legs["record"].append(recorded - started)
                legs["email"].append(emailed - recorded)
                legs["get"].append(shown - emailed)
                legs["post"].append(confirmed - shown)
                legs["round"].append(confirmed - started)
        finally:
            server.shutdown()
            server.server_close()
            database.dispose()
            app.extensions["notifier"].state(app).database.dispose()
            smtp.close()
    print(f"{args.rounds} rounds, PostgreSQL, SMTP and HTTP on loopback; ms: p50 p95 max")
    print(f"  failure recorded (committed)         {_percentiles(legs['record'])}")
    print(f"  dispatch -> email received, link read {_percentiles(legs['email'])}")
    print(f"  link opened (GET, confirmation page) {_percentiles(legs['get'])}")
    print(f"  confirmed (POST) -> acknowledged     {_percentiles(legs['post'])}")
    print(f"  round trip                           {_percentiles(legs['round'])}")


if __name__ == "__main__":
    main()
