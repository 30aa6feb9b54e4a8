"""The notifications page's Retry buttons: shown for opted-in failures only, with why not."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from notifier import Database, FailureReport, JobKind, record_failures
from notifier.retry import generate_key, seal


def _fail(database: Database, task: str, retry: dict[str, str] | None) -> None:
    report = FailureReport(
        key=f"celery:{task}:failure",
        job=JobKind.IMPORT,
        task_name=task,
        task_id=task,
        store_id=1,
        exception_class="ValueError",
        fingerprint=f"celery:{task}:ValueError",
        retry=retry,
    )
    with database.session_scope() as db:
        record_failures(db, [report], cooldown=timedelta(0))


def test_only_opted_in_failures_offer_a_retry_and_the_others_say_why(
    browser: tuple[FlaskClient, str], database: Database
) -> None:
    client, _ = browser
    _fail(database, "shop.opted", {"routing_key": "q", "payload": seal([1], {}, generate_key())})
    _fail(
        database, "shop.keyless", {"routing_key": "q", "problem": "NOTIFIER_RETRY_KEY is not set"}
    )
    _fail(database, "shop.plain", None)
    for tab in ("notifications", "alerts"):
        html = client.get(f"/admin/notifications?tab={tab}").get_data(as_text=True)
        assert html.count('data-action="retry"') == 1, tab
        assert "Cannot retry: NOTIFIER_RETRY_KEY is not set" in html
    assert 'data-path="alerts/' in html
