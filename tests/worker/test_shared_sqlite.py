"""The embedded default: the web app, a worker and a dispatcher on one SQLite file at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from notifier import Database
from notifier.delivery.endpoints import endpoint_service
from notifier.migrate import upgrade
from tests.receivers import Receiver
from tests.web.conftest import make_admin, make_token
from tests.web.test_cli import _free_port, notifier_serve
from tests.web.test_concurrency import dispatcher, post_notifications

from .conftest import Prefork, finished

POSTS = 200


@pytest.fixture
def worker_database(tmp_path: Path) -> Iterator[Database]:
    """One SQLite file for the worker, the web app and the dispatcher (overrides PostgreSQL)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.mark.slow
def test_the_api_answers_while_a_worker_and_a_dispatcher_write_the_same_file(
    tmp_path: Path, prefork: Prefork, receiver: Receiver
) -> None:
    database = prefork.database
    token = make_token(database, make_admin(database))
    with database.session_scope() as db:
        for n in range(3):
            endpoint_service.create(
                db,
                name=f"hook {n}",
                channel="webhook",
                url=receiver.url(f"/h{n}"),
                allow_private=True,
            )
    # The worker records its failures (and its dispatcher thread sends their deliveries);
    # `notifier dispatch` sends too; the web app takes API writes: all on one file.
    prefork.start({**prefork.env, "NOTIFIER_DELIVERY_ALLOW_PRIVATE": "true"})
    port = str(_free_port())
    with ExitStack() as stack:
        stack.enter_context(
            notifier_serve(
                tmp_path, database.url, "--port", port, "--workers", "2", "--threads", "4"
            )
        )
        log = stack.enter_context(dispatcher(tmp_path, database.url, "dispatch"))
        failing = [prefork.client.tasks["t.boom"].delay(n) for n in range(60)]
        statuses = post_notifications(f"http://127.0.0.1:{port}", token, POSTS, threads=8)
        finished(failing)
        prefork.settle()
    assert statuses == {201: POSTS}
    logs = [log, tmp_path / f"serve-{port}.log", *tmp_path.glob("worker*.log")]
    text = "".join(path.read_text() for path in logs)
    assert "database is locked" not in text, text[-3000:]
