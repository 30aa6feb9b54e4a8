"""The web app, workers and dispatchers on one database at once, as real processes.

A user sees these races as a 503 from the API, a deadlock in a log, or a webhook sent
twice; each test runs the processes side by side and asserts none of that happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier import Database
from notifier.delivery.attempts import _lock_endpoints
from notifier.delivery.endpoints import endpoint_service
from notifier.models import Delivery, DeliveryAttempt, DeliveryEndpoint
from tests.receivers import Receiver
from tests.web.conftest import API, make_admin, make_token
from tests.web.test_cli import _free_port, notifier_serve

POSTS = 300


@contextmanager
def dispatcher(tmp_path: Path, database_url: str, name: str) -> Iterator[Path]:
    """A real ``notifier dispatch`` process; yields the path of its log."""
    log_path = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_DELIVERY_ALLOW_PRIVATE": "true",  # the receiver is on loopback
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "notifier.cli", "dispatch", "--sweep-every", "0.2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield log_path
        finally:
            process.terminate()
            process.wait(timeout=30)


def post_notifications(base: str, token: str, count: int, threads: int) -> Counter[int]:
    """POST ``count`` notifications from ``threads`` clients at once; statuses by code."""
    headers = {"Authorization": f"Bearer {token}"}

    def post(i: int) -> int:
        body = {"type": "import_failure", "title": f"Import {i} failed", "message": "bad row"}
        with requests.post(f"{base}{API}", json=body, headers=headers, timeout=60) as response:
            return response.status_code

    with ThreadPoolExecutor(threads) as pool:
        return Counter(pool.map(post, range(count)))


def _wait_until_recorded(database: Database, timeout: float) -> None:
    """Wait until every delivery has an attempt recorded (a lost record leaves it claimed)."""
    deadline = time.monotonic() + timeout
    while True:
        with database.session_scope() as db:
            waiting = db.scalar(select(func.count()).where(Delivery.attempt_count == 0))
        if not waiting:
            return
        assert time.monotonic() < deadline, f"{waiting} deliveries never recorded (lost records?)"
        time.sleep(0.2)


def _attempts_by_webhook_id(database: Database, url_prefix: str) -> Counter[str]:
    """How many attempts are recorded for each delivery to URLs under ``url_prefix``."""
    with database.session_scope() as db:
        rows = db.execute(
            select(Delivery.message_id, func.count(DeliveryAttempt.id))
            .join(DeliveryEndpoint, DeliveryEndpoint.id == Delivery.endpoint_id)
            .join(DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id)
            .where(DeliveryEndpoint.url.startswith(url_prefix))
            .group_by(Delivery.message_id)
        ).all()
    return Counter({message_id: count for message_id, count in rows})


def _closed_port_url() -> str:
    """A loopback URL where nothing listens: every send to it fails at once (and is retried)."""
    return f"http://127.0.0.1:{_free_port()}/down"


@pytest.mark.slow
def test_api_writes_and_two_dispatchers_never_deadlock_on_postgresql(
    tmp_path: Path, pg_database: Database, receiver: Receiver
) -> None:
    url = pg_database.url
    token = make_token(pg_database, make_admin(pg_database))
    # Several endpoints, so each API write (queueing a delivery for each) and each
    # dispatcher's record (stamping the healthy ones, marking the others failing) touch
    # several endpoint rows; the receiver fails a send now and then (retried 5 s later).
    urls = [receiver.url(f"/h{n}") for n in range(4)] + [_closed_port_url() for _ in range(4)]
    with pg_database.session_scope() as db:
        for n, endpoint_url in enumerate(urls):
            endpoint_service.create(
                db, name=f"hook {n}", channel="webhook", url=endpoint_url, allow_private=True
            )
    for _ in range(POSTS):
        receiver.then(204)
        receiver.then(503)
    port = str(_free_port())
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        stack.enter_context(
            notifier_serve(tmp_path, url, "--port", port, "--workers", "1", "--threads", "8")
        )
        logs = [stack.enter_context(dispatcher(tmp_path, url, f"dispatch-{n}")) for n in (1, 2)]
        statuses = post_notifications(base, token, POSTS, threads=8)
        _wait_until_recorded(pg_database, timeout=90)
        stack.close()  # the dispatchers finish their sends and record them, then exit
    assert statuses == {201: POSTS}
    log_text = "".join(path.read_text() for path in [*logs, tmp_path / f"serve-{port}.log"])
    assert "deadlock" not in log_text.lower(), log_text[-3000:]
    # The receiver saw each webhook-id once per recorded attempt: no record was lost and
    # its sends repeated.
    received = Counter(receiver.ids())
    recorded = _attempts_by_webhook_id(pg_database, receiver.url(""))
    assert len(recorded) == POSTS * 4
    assert received == recorded, received - recorded


# Loaded into ``notifier serve`` (PYTHONPATH) to stretch a race SQLAlchemy leaves open: a
# shared statement's column collection fills its lookup index lazily, on first use, and
# another thread takes the index as complete as soon as it holds one column. The first
# thread to fill one pauses there for a second, which only widens the microseconds the
# interpreter may already switch threads in; it changes no result.
_STRETCH_LAZY_INDEX = """
import threading
import time

from sqlalchemy.sql import base

_index_fill = base.ColumnCollection._init_proxy_index.__code__
_paused = []


def _pause_once_filled(frame, event, arg):
    if event == "line" and frame.f_locals.get("pi") and not _paused:
        _paused.append(frame)
        time.sleep(1.0)
    return _pause_once_filled


def _trace(frame, event, arg):
    return _pause_once_filled if frame.f_code is _index_fill else None


threading.settrace(_trace)
"""


def test_concurrent_first_notifications_on_a_fresh_server_all_succeed(
    tmp_path: Path, pg_database: Database
) -> None:
    token = make_token(pg_database, make_admin(pg_database))
    (tmp_path / "sitecustomize.py").write_text(_STRETCH_LAZY_INDEX)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    port = str(_free_port())
    args = ("--port", port, "--workers", "1", "--threads", "4")
    clients = 4
    barrier = threading.Barrier(clients)

    def post(i: int) -> tuple[int, str]:
        body = {"type": "import_failure", "title": f"Import {i} failed", "message": "bad row"}
        headers = {"Authorization": f"Bearer {token}"}
        barrier.wait()  # the server's very first notifications, all at once
        with requests.post(
            f"http://127.0.0.1:{port}{API}", json=body, headers=headers, timeout=30
        ) as response:
            return response.status_code, response.text

    with (
        notifier_serve(tmp_path, pg_database.url, *args, env=env),
        ThreadPoolExecutor(clients) as pool,
    ):
        answers = list(pool.map(post, range(clients)))
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert [status for status, _ in answers] == [201] * clients, (answers, log[-3000:])
    assert "NoSuchColumnError" not in log
    assert "Error in sitecustomize" not in log  # the stretch above found what it widens


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_api_write_never_waits_for_a_dispatcher_recording(
    api: FlaskClient, database: Database, receiver: Receiver
) -> None:
    with database.session_scope() as db:
        ids = {
            endpoint_service.create(
                db, name=f"hook {n}", channel="webhook", url=receiver.url(), allow_private=True
            )[0].id
            for n in range(2)
        }
    # A dispatcher in the middle of recording holds the endpoint rows it changes; the
    # API queueing deliveries for those endpoints goes on without waiting for it.
    with database.session_scope() as recording:
        _lock_endpoints(recording, ids)
        started = time.monotonic()
        body = {"type": "import_failure", "title": "Import failed", "message": "bad row"}
        response = api.post(API, json=body)
        waited = time.monotonic() - started
    assert response.status_code == 201, response.json
    assert waited < 5
