"""examples/shop, a host app with the notifier mounted, run as its README says.

Real PostgreSQL (one database for the shop and the notifier), the shop's own Alembic
history, its own Celery worker (``worker.py`` in its folder, a subprocess) on Redis, and
chromium driving its pages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, select, text

from notifier import Database, platform_alert_service
from notifier.models import AdminNotification, AdminUser
from tests.conftest import REDIS_URL, require_service, scratch_postgres
from tests.web.browser.conftest import LiveServer, chromium, playwright  # noqa: F401
from tests.worker.conftest import wait_for

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
BIN = Path(sys.executable).parent
PASSWORD = "shop-password-1"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _run(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=SHOP, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shop_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The shop's environment on a new PostgreSQL database: the URL is written once, here."""
    require_service("Redis", REDIS_URL)
    with scratch_postgres("shop") as url:
        env = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "SHOP_DATABASE_URL": url,
            "SHOP_BROKER_URL": REDIS_URL,
            "SHOP_SPOOL_DIR": str(tmp_path_factory.mktemp("shop-spool")),
            "HOME": str(tmp_path_factory.mktemp("home")),
            # Nothing of the notifier's own defaults lands in the example's folder.
            "NOTIFIER_INSTANCE_PATH": str(tmp_path_factory.mktemp("notifier-instance")),
        }
        yield env


@pytest.fixture(scope="module")
def migrated(shop_env: dict[str, str]) -> dict[str, str]:
    """The shop's migrations, then ``notifier init-db -A worker:app`` on the same database."""
    host = _run("alembic", "upgrade", "head", env=shop_env)
    assert host.returncode == 0, host.stderr
    ours = _run("notifier", "init-db", "-A", "worker:app", env=shop_env)
    assert ours.returncode == 0, ours.stderr
    assert "Database ready" in ours.stdout
    return shop_env


def test_init_db_leaves_the_shops_alembic_history_alone(migrated: dict[str, str]) -> None:
    current = _run("alembic", "current", env=migrated)
    assert current.returncode == 0 and "0001 (head)" in current.stdout, current.stderr
    again = _run("notifier", "init-db", "-A", "worker:app", env=migrated)
    assert again.returncode == 0, again.stderr
    check = _run("alembic", "check", env=migrated)  # the shop's autogenerate
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout
    engine = create_engine(migrated["SHOP_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("0001",)
            ]
    finally:
        engine.dispose()


_SCHEDULE = """
import json
from worker import app
app.loader.import_default_modules()
print(json.dumps({name: [entry["task"], entry["task"] in app.tasks]
                  for name, entry in app.conf.beat_schedule.items()}))
"""


def test_the_shops_beat_runs_its_own_entries_and_the_notifiers(
    shop_env: dict[str, str],
) -> None:
    # What `celery -A worker beat` would schedule, and whether the shop's worker has each task.
    loaded = _run("python", "-c", _SCHEDULE, env=shop_env)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == {
        "shop-nightly-import": ["shop.import_products", True],
        "notifier-prune": ["notifier.prune", True],
        "notifier-dispatch": ["notifier.dispatch_deliveries", True],
        "notifier-digests": ["notifier.digests", True],
        "notifier-alert-reminders": ["notifier.alert_reminders", True],
    }


@pytest.fixture(scope="module")
def shop_module(migrated: dict[str, str]) -> Iterator[Any]:
    """The shop's app module, imported from its folder as ``flask --app`` would."""
    old = dict(os.environ)
    os.environ.update({k: v for k, v in migrated.items() if k.startswith("SHOP_")})
    sys.path.insert(0, str(SHOP))
    import shop_admin

    yield shop_admin
    sys.path.remove(str(SHOP))
    for name in ("shop_admin", "shop_models"):
        sys.modules.pop(name, None)
    os.environ.clear()
    os.environ.update(old)


def _app(shop_module: Any, **config: Any) -> Flask:
    app: Flask = shop_module.create_app({"SHOP_TEST_NAME": uuid.uuid4().hex, **config})
    return app


@pytest.fixture(scope="module")
def users(shop_module: Any) -> dict[str, str]:
    """Hana (a shop admin) and Carl (a clerk, not an admin), in the shop's own table."""
    from shop_models import User, db

    app = _app(shop_module)
    with app.app_context():
        for email, name, is_admin in (
            ("hana@shop.example", "Hana Host", True),
            ("carl@shop.example", "Carl Clerk", False),
        ):
            user = User(email=email, name=name, is_admin=is_admin)
            user.set_password(PASSWORD)
            db.session.add(user)
        db.session.commit()
    return {"admin": "hana@shop.example", "clerk": "carl@shop.example"}


def _signed_in(app: Flask, email: str) -> Any:
    client = app.test_client()
    answer = client.post("/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


@pytest.mark.parametrize("notifier_first", [False, True])
def test_host_routes_headers_and_404s_in_either_order(
    shop_module: Any, users: dict[str, str], notifier_first: bool
) -> None:
    app = _app(shop_module, SHOP_NOTIFIER_FIRST=notifier_first)
    anonymous = app.test_client()
    assert anonymous.get("/admin/").headers["Location"].startswith("/login?next=")  # host's
    client = _signed_in(app, users["admin"])
    home = client.get("/admin/")
    assert "Orders" in home.get_data(as_text=True)
    assert home.headers["X-Shop"] == "back-office"
    assert "unsafe-inline" in home.headers["Content-Security-Policy"]  # the shop's policy
    assert "X-Frame-Options" not in home.headers
    assert client.get("/api/orders").json == {"orders": []}
    missing_api = client.get("/api/nope")
    assert missing_api.status_code == 404 and missing_api.json == {
        "error": "not found",
        "shop": True,
    }
    missing_page = client.get("/admin/nope/deeper")
    assert missing_page.status_code == 404
    assert "Shop: page not found" in missing_page.get_data(as_text=True)
    ours = client.get("/admin/notifications")
    assert (
        ours.status_code == 200
        and "frame-ancestors 'none'" in ours.headers["Content-Security-Policy"]
    )


def test_a_notification_in_a_host_request_rolls_back_with_it(
    shop_module: Any, users: dict[str, str], migrated: dict[str, str]
) -> None:
    app = _app(shop_module)
    client = _signed_in(app, users["admin"])
    assert client.post("/api/orders", json={"number": "A-1"}).status_code == 201
    failed = client.post("/api/orders", json={"number": "B-2", "payment_fails": True})
    assert failed.status_code == 500
    database = Database(migrated["SHOP_DATABASE_URL"])
    try:
        with database.session_scope() as db:
            numbers = db.execute(text("SELECT number FROM shop_orders")).scalars().all()
            titles = db.scalars(select(AdminNotification.title)).all()
            db.execute(text("DELETE FROM shop_orders"))
            db.execute(text("DELETE FROM notifier_admin_notifications"))
    finally:
        database.dispose()
    assert numbers == ["A-1"]
    assert titles == ["Order A-1 placed"]


@pytest.fixture(scope="module")
def shop_worker(migrated: dict[str, str]) -> Iterator[str]:
    """``celery -A worker worker`` in the shop's folder (its own worker.py), on a private queue."""
    queue = f"shop-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [str(BIN / "celery"), "-A", "worker", "worker", "-P", "solo", "-Q", queue,
         "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=SHOP, env=migrated, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield queue
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
        assert "ImportError" not in output and "RuntimeWarning" not in output, output


def test_the_shops_worker_failure_reaches_the_admin_through_the_shops_pages(
    shop_module: Any,
    users: dict[str, str],
    migrated: dict[str, str],
    shop_worker: str,
    chromium: Browser,  # noqa: F811
) -> None:
    database = Database(migrated["SHOP_DATABASE_URL"])
    sender = Celery(broker=migrated["SHOP_BROKER_URL"])
    sender.send_task("shop.import_products", args=[7, "/no/such/products.csv"], queue=shop_worker)

    def imported() -> list[str]:
        with database.session_scope() as db:
            rows = db.scalars(select(AdminNotification).where(AdminNotification.store_id == 7))
            return [n.title for n in rows]

    wait_for(imported, timeout=90, interval=0.5)
    with database.session_scope() as db:
        platform_alert_service.create_or_increment_alert(
            db, alert_type="integration", severity="critical", title="Payment provider down",
            description="Refusing every order", fingerprint="shop:payments",
        )  # fmt: skip

    app = _app(shop_module, NOTIFIER_POLL_INTERVAL_MS=400)
    with _browsing(app, chromium) as (page, live, errors):
        _shop_login(page, live, users["admin"], "/admin/")
        header = page.locator(".shop-header")
        expect(header.locator(".shop-user")).to_have_text("Hana Host")
        expect(header.locator("[data-badge]")).to_have_text("1")
        # The shop's inline styles still apply (no CSP of ours on its pages).
        color = page.locator("h1").evaluate("el => getComputedStyle(el).color")
        assert color == "rgb(59, 47, 47)"
        header.get_by_role("button", name="Notifications, 1 unread").click()
        expect(header.locator("[data-list]")).to_contain_text("Shop store 7")
        header.get_by_role("link", name="View all").click()
        page.wait_for_url(lambda url: url.endswith("/admin/notifications"))
        expect(page.locator(".nt-row").first).to_contain_text("Shop store 7")

        page.get_by_role("link", name="Platform Alerts").click()
        row = page.locator(".nt-row", has_text="Payment provider down")
        row.get_by_role("button", name="Resolve").click()
        dialog = page.locator("#nt-resolve")
        dialog.get_by_label("Resolution notes").fill("Switched to the backup provider")
        dialog.get_by_role("button", name="Resolve").click()
        resolution = page.locator(".nt-row", has_text="Payment provider down").locator(
            "[data-resolution]"
        )
        expect(resolution).to_contain_text("Switched to the backup provider")
        # The host user, by name (by email until the pages show display names everywhere).
        expect(resolution).to_contain_text(re.compile(r"Hana Host|hana@shop\.example"))

        page.goto(live.url + "/admin/")  # the shop's session survived all of it
        expect(page.locator(".shop-user")).to_have_text("Hana Host")
        assert page.url == live.url + "/admin/"
        assert errors == [], errors
    database.dispose()
    with Database(migrated["SHOP_DATABASE_URL"]).session_scope() as db:
        hana = db.scalars(select(AdminUser).where(AdminUser.email == "hana@shop.example")).one()
        assert hana.display_name == "Hana Host" and hana.external_id is not None


def test_a_clerk_sees_no_bell_and_no_sign_in_they_already_passed(
    shop_module: Any,
    users: dict[str, str],
    chromium: Browser,  # noqa: F811
) -> None:
    app = _app(shop_module, NOTIFIER_POLL_INTERVAL_MS=400)
    live = LiveServer(app)
    live.start()
    context = chromium.new_context()
    try:
        page = context.new_page()
        _shop_login(page, live, users["clerk"], "/admin/")
        expect(page.locator(".shop-user")).to_have_text("Carl Clerk")
        expect(page.locator("[data-notifier-bell]")).to_have_count(0)
        expect(page.get_by_text("Sign in for notifications")).to_have_count(0)
        page.wait_for_timeout(1000)  # several poll intervals: it never navigates away
        assert page.url == live.url + "/admin/"
    finally:
        context.close()
        live.stop()


def test_a_clerk_gets_the_styled_403_in_the_shops_layout_and_no_bell(
    shop_module: Any, users: dict[str, str]
) -> None:
    client = _signed_in(_app(shop_module), users["clerk"])
    refused = client.get("/admin/notifications")
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert '<nav class="shop-nav" aria-label="Shop">' in html  # the shop's layout
    assert "<h1>No access to the notifier</h1>" in html
    assert "this account is not a notifier admin" in html
    assert "Sign in" not in html and "data-notifier-bell" not in html
    home = client.get("/admin/").get_data(as_text=True)
    assert "Carl Clerk" in home and "data-notifier-bell" not in home
    assert "Sign in for notifications" not in home


def test_the_notifications_page_sits_in_the_shops_layout_and_leads_back_to_its_dashboard(
    shop_module: Any,
    users: dict[str, str],
    chromium: Browser,  # noqa: F811
) -> None:
    with _browsing(_app(shop_module), chromium) as (page, live, errors):
        _shop_login(page, live, users["admin"], "/admin/notifications")
        expect(page.locator("h1")).to_have_text("Notifications")  # the notifier's page
        shop_nav = page.get_by_role("navigation", name="Shop")
        expect(shop_nav).to_be_visible()  # inside the shop's header and its look
        expect(page.locator(".shop-header .shop-user")).to_have_text("Hana Host")
        background = page.locator(".shop-header").evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        assert background == "rgb(59, 47, 47)"
        expect(page.get_by_role("navigation", name="Admin")).to_be_visible()
        assert page.title() == "Notifications"
        shop_nav.get_by_role("link", name="Dashboard").click()
        page.wait_for_url(live.url + "/admin/")
        expect(page.locator("h1")).to_have_text("Orders")
        assert errors == [], errors


@contextmanager
def _browsing(app: Flask, chromium: Browser) -> Iterator[tuple[Page, LiveServer, list[str]]]:  # noqa: F811
    """The app on a live server, a chromium page on it, and the page's script errors."""
    live = LiveServer(app)
    live.start()
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, live, errors
    finally:
        context.close()
        live.stop()


def _shop_login(page: Page, live: LiveServer, email: str, path: str) -> None:
    page.goto(live.url + path)
    page.wait_for_url(lambda url: "/login?next=" in url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in to the shop").click()
    page.wait_for_url(lambda url: url.endswith(path))
