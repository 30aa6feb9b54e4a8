"""Browser fixtures: Debian's chromium driven by Playwright against the app on a real
localhost socket (a thread in this process), on SQLite, from an empty database and a fresh
browser context per test. Screenshots go to test-results/screenshots/; `make screenshots`
copies them to docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notifier.web import create_app
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from notifier import Database
from tests.web.conftest import Admin

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-results" / "screenshots"
POLL_MS = 400


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The browser tests run on SQLite: the pages are the same on both databases."""
    return sqlite_url


class LiveServer:
    """The app on a real socket; ``stop()`` and ``start()`` simulate an outage."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.server: BaseWSGIServer | None = None
        self.port = 0
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve (again) on the same port."""
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop answering: the port is closed."""
        assert self.server is not None and self.thread is not None
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright itself, once per module."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing; install Debian's chromium (see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """Headless chromium, launched once per module."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    yield browser
    browser.close()


@pytest.fixture
def live_config(database: Database) -> dict[str, Any]:
    """The served app's configuration (a test module may override this fixture)."""
    return {
        "SECRET_KEY": "browser-test",
        "NOTIFIER_DATABASE_URL": database.url,
        "NOTIFIER_TIMEZONE": "UTC",
        "NOTIFIER_POLL_INTERVAL_MS": POLL_MS,
        # Streams end after 2 s (and the browser reconnects), so stopping the server cuts
        # them as a real outage would: werkzeug's shutdown leaves open requests running.
        "NOTIFIER_STREAM_MAX_SECONDS": 2,
        "NOTIFIER_STREAM_RETRY_MS": 500,
        "NOTIFIER_LIVE_POLL_SECONDS": 0.1,
        # The channels page delivers to a webhook receiver on loopback.
        "NOTIFIER_DELIVERY_ALLOW_PRIVATE": True,
    }


@pytest.fixture
def live(live_config: dict[str, Any]) -> Iterator[LiveServer]:
    """The app served on localhost for one test."""
    app = create_app(live_config)
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()
    server.app.extensions["notifier"].state(server.app).database.dispose()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) at laptop size."""
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any native dialog or uncaught script error."""
    pg = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    pg.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    assert dialogs == [], f"a native dialog opened: {dialogs}"
    assert errors == [], f"script errors: {errors}"


def sign_in(page: Page, live: LiveServer, admin: Admin, path: str = "/admin/notifications") -> None:
    """Log in through the form, starting from ``path``."""
    page.goto(live.url + path)
    page.wait_for_url(lambda url: "/admin/login" in url)
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/admin/login" not in url)


def shoot(page: Page, name: str) -> None:
    """Keep a screenshot of what the user sees."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
