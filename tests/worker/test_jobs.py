"""The bundled jobs against a real catalogue file and a local marketplace HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import notifier.worker.demo.tasks  # noqa: F401  (registers the demo's import jobs)
import pytest
from celery import Celery
from notifier.worker.demo.catalogue import Product, catalogue

from notifier import Database

from .conftest import alerts, notifications, settle, wait_for


class Marketplace:
    """A local stand-in for the marketplace API: orders per store, or a failure mode."""

    def __init__(self) -> None:
        self.orders: dict[int, list[dict[str, Any]]] = {}
        self.mode = "ok"
        self.requests = 0
        marketplace = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                marketplace.requests += 1
                if marketplace.mode == "slow":
                    time.sleep(1)
                if marketplace.mode == "error":
                    self.send_response(503)
                    self.end_headers()
                    return
                store = int(self.path.split("?")[0].split("/")[3])  # /api/stores/<id>/orders
                body = json.dumps({"orders": marketplace.orders.get(store, [])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def marketplace() -> Iterator[Marketplace]:
    server = Marketplace()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def catalogue_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalogue.db'}"


@pytest.fixture
def celery_config(catalogue_url: str, marketplace: Marketplace) -> dict[str, Any]:
    return {
        "notifier_catalogue_url": catalogue_url,
        "notifier_letzshop_base_url": marketplace.url,
        "notifier_letzshop_timeout": 0.3,
        "notifier_letzshop_retry_delay": 0.05,
        "notifier_notification_cooldown": 0,
    }


def write_csv(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(["sku,title,price,stock", *lines]) + "\n", encoding="utf-8")
    return str(path)


def test_import_products_upserts_rows_and_reports_bad_lines(
    celery_app: Celery,
    celery_worker: Any,
    worker_database: Database,
    spool_dir: Path,
    catalogue_url: str,
    tmp_path: Path,
) -> None:
    good = write_csv(tmp_path / "a.csv", ["A1,Apple,1.50,3", "B2,Bread,2,0", "bad,,1,1"])
    result = celery_app.tasks["notifier.import_products"].delay(5, good)
    assert result.get(timeout=30) == {
        "imported": 2,
        "errors": [{"line": 4, "reason": "title is empty"}],
    }
    bad_lines = ["A1,Apple,1.75,9"] + [f"X{n},Thing,abc,1" for n in range(5)] + ["Y,Y,1,-2"]
    result = celery_app.tasks["notifier.import_products"].delay(
        5, write_csv(tmp_path / "b.csv", bad_lines)
    )
    returned = result.get(timeout=30)
    assert returned["imported"] == 1
    assert [e["line"] for e in returned["errors"]] == [3, 4, 5, 6, 7, 8]
    with catalogue(catalogue_url) as db:
        apple = db.get(Product, (5, "A1"))
        assert apple is not None and str(apple.price) == "1.75" and apple.stock == 9
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)  # only the run with 6 bad rows
    assert note.title == "Import for store 5 finished with 6 errors"
    assert note.notification_metadata["task_id"] == result.id


def test_import_products_fails_on_a_wrongly_encoded_file(
    celery_app: Celery,
    celery_worker: Any,
    worker_database: Database,
    spool_dir: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("sku,title,price,stock\nC1,Café,1,1\n".encode("latin-1"))
    result = celery_app.tasks["notifier.import_products"].delay(6, str(path))
    result.get(timeout=30, propagate=False)
    missing = celery_app.tasks["notifier.import_products"].delay(6, str(tmp_path / "nope.csv"))
    missing.get(timeout=30, propagate=False)
    assert result.state == missing.state == "FAILURE"
    assert "not UTF-8" in str(result.result)
    settle(worker_database, spool_dir)
    notes = notifications(worker_database)
    assert len(notes) == 2 and {n.type for n in notes} == {"import_failure"}


def test_letzshop_orders_with_unknown_skus_become_order_exceptions(
    celery_app: Celery,
    celery_worker: Any,
    worker_database: Database,
    spool_dir: Path,
    catalogue_url: str,
    tmp_path: Path,
    marketplace: Marketplace,
) -> None:
    celery_app.tasks["notifier.import_products"].delay(
        8, write_csv(tmp_path / "c.csv", ["S1,One,1,1", "S2,Two,2,2"])
    ).get(timeout=30)
    marketplace.orders[8] = [
        {"number": "LS-1", "items": [{"sku": "S1", "quantity": 1}]},
        {"number": "LS-2", "items": [{"sku": "S2"}, {"sku": "GONE"}]},
    ]
    result = celery_app.tasks["notifier.import_letzshop_orders"].delay(8, "2026-01-01")
    assert result.get(timeout=30) == {
        "orders": 2,
        "order_exceptions": [{"order_number": "LS-2", "unmatched_products": ["GONE"]}],
    }
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)
    assert note.type == "order_exception" and note.store_id == 8
    assert "GONE" in note.message


@pytest.mark.parametrize("mode", ["error", "slow"])
def test_letzshop_http_errors_and_timeouts_fail_after_retries(
    celery_app: Celery,
    celery_worker: Any,
    worker_database: Database,
    spool_dir: Path,
    marketplace: Marketplace,
    mode: str,
) -> None:
    marketplace.mode = mode
    result = celery_app.tasks["notifier.import_letzshop_orders"].delay(9, "2026-01-01")
    result.get(timeout=60, propagate=False)
    assert result.state == "FAILURE"
    # The first attempt and 3 retries. A client that timed out may return before the
    # server's thread has counted its last request (a busy machine): wait for it, briefly.
    wait_for(lambda: marketplace.requests >= 4, timeout=10)
    assert marketplace.requests == 4
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)
    assert note.type == "order_sync_failure" and note.notification_metadata["attempts"] == 4
    [alert] = alerts(worker_database)
    assert alert.alert_type == "integration" and alert.fingerprint.endswith(":store=9")
