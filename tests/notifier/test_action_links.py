"""Action links in alert messages: what each channel carries, and what a token proves."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from notifier import Database, admin_notification_service, platform_alert_service
from notifier.accounts.users import create_admin, deactivate_admin
from notifier.actions import (
    ACTION_LINK_LIFETIME,
    ActionLinkError,
    action_key,
    sign_action,
    use_action_link,
    verify_action_link,
)
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.endpoints import endpoint_service
from notifier.delivery.mail import SmtpSettings
from notifier.models import ActionUse, AdminUser, NotifierKey
from notifier.outbox import ensure_default_email_endpoint
from notifier.types import utcnow
from tests.notifier.conftest import MailSink, Receiver

BASE = "https://admin.shop.example"
LINK = re.compile(rf"{re.escape(BASE)}/admin/act/([A-Za-z0-9_.\-]+)")


def _settings(smtp_url: str) -> DispatchSettings:
    return DispatchSettings(
        allow_private=True,
        smtp=SmtpSettings.from_url(smtp_url, sender="notifier@shop.example"),
        base_url=BASE,
    )


def _alert(database: Database, **fields: Any) -> int:
    with database.session_scope() as db:
        alert, _ = platform_alert_service.create_or_increment_alert(
            db, **{"alert_type": "database", "severity": "critical", "title": "DB down"} | fields
        )
        return alert.id


def test_alert_messages_carry_signed_action_links_bound_to_their_recipient(
    database: Database, receiver: Receiver, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        admin_id = create_admin(db, email="ops@shop.example", password="x" * 12).id
        ensure_default_email_endpoint(db)
        slack = endpoint_service.create(
            db, name="s", channel="slack", url=receiver.url("/slack"), allow_private=True
        )[0].id
        teams = endpoint_service.create(
            db, name="t", channel="teams", url=receiver.url("/teams"), allow_private=True
        )[0].id
        endpoint_service.create(
            db, name="w", channel="webhook", url=receiver.url("/hook"), allow_private=True
        )
    alert_id = _alert(database)
    with database.session_scope() as db:  # a notification is no alert: no action links
        admin_notification_service.create_notification(
            db, type="critical_error", title="n", message="m", priority="critical"
        )
    assert dispatch_due(database, _settings(url), limit=100).counts["succeeded"] == 8

    email = next(m for m in sink.to("ops@shop.example") if "DB down" in str(m["Subject"]))
    text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    labels = re.findall(r"^(Acknowledge|Snooze 1 h|Resolve): ", text, re.M)
    assert labels == ["Acknowledge", "Snooze 1 h", "Resolve"]
    assert f"expires {ACTION_LINK_LIFETIME.days} days after this email" in text
    assert LINK.findall(html) == LINK.findall(text)
    other = next(m for m in sink.to("ops@shop.example") if "DB down" not in str(m["Subject"]))
    assert not LINK.search(str(other.get_body(("plain",)).get_content()))  # type: ignore[union-attr]

    by_path = {r.path: json.loads(r.body) for r in receiver.requests if "DB down" in str(r.body)}
    buttons = by_path["/slack"]["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Open", "Acknowledge", "Snooze 1 h", "Resolve"]
    card = by_path["/teams"]["attachments"][0]["content"]
    assert [a["title"] for a in card["actions"]] == ["Open", "Acknowledge", "Snooze 1 h", "Resolve"]
    assert not LINK.search(json.dumps(by_path["/hook"]))  # webhooks are for machines

    with database.session_scope() as db:
        checks = {
            "email": [verify_action_link(db, t) for t in LINK.findall(text)],
            "slack": [verify_action_link(db, LINK.fullmatch(b["url"])[1]) for b in buttons[1:]],  # type: ignore[index]
            "teams": [
                verify_action_link(db, LINK.fullmatch(a["url"])[1])  # type: ignore[index]
                for a in card["actions"][1:]
            ],
        }
        for source, bound in (("email", admin_id), ("slack", slack), ("teams", teams)):
            assert [c.link.action for c in checks[source]] == ["acknowledge", "snooze", "resolve"]
            assert {(c.link.source, c.link.bound_to, c.alert.id) for c in checks[source]} == {
                (source, bound, alert_id)
            }
        assert checks["email"][0].recipient is not None
        assert checks["slack"][0].recipient is None  # a channel's link: the confirmer signs in


def test_no_links_without_a_public_url(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        create_admin(db, email="ops@shop.example", password="x" * 12)
        ensure_default_email_endpoint(db)
    _alert(database)
    settings = DispatchSettings(smtp=SmtpSettings.from_url(url, sender="n@shop.example"))
    assert dispatch_due(database, settings).counts == {"succeeded": 1}
    [message] = sink.to("ops@shop.example")
    assert "/admin/act/" not in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_a_token_proves_nothing_once_tampered_expired_void_or_its_admin_inactive(
    database: Database,
) -> None:
    with database.session_scope() as db:
        admin_id = create_admin(db, email="ops@shop.example", password="x" * 12).id
        key = action_key(db)
    alert_id = _alert(database)
    now = utcnow()
    good = sign_action(key, alert_id, "acknowledge", "email", admin_id, now=now)

    def reason(token: str) -> str:
        with database.session_scope() as db, pytest.raises(ActionLinkError) as refused:
            verify_action_link(db, token)
        return refused.value.reason

    with database.session_scope() as db:
        assert verify_action_link(db, good).link.bound_to == admin_id
    payload, signature = good.rsplit(".", 1)
    assert reason(f"{payload}.{signature[::-1]}") == "invalid"
    assert reason(sign_action("another key", alert_id, "resolve", "email", admin_id, now=now)) == (
        "invalid"
    )
    old = now - ACTION_LINK_LIFETIME - timedelta(minutes=1)
    assert reason(sign_action(key, alert_id, "acknowledge", "email", admin_id, now=old)) == (
        "expired"
    )
    assert reason(sign_action(key, alert_id + 99, "acknowledge", "email", admin_id, now=now)) == (
        "invalid"
    )
    assert reason(sign_action(key, alert_id, "snooze", "slack", 12345, now=now)) == "invalid"
    with database.session_scope() as db:
        deactivate_admin(db, db.get(AdminUser, admin_id))  # type: ignore[arg-type]
    assert reason(good) == "inactive"
    with database.session_scope() as db:  # deleting the key voids every link sent
        db.delete(db.get(NotifierKey, "actions"))
    assert reason(good) == "invalid"


def test_two_confirmations_at_once_act_once(pg_database: Database) -> None:
    """Both checked the link before either used it: the second use finds the first's row."""
    database = pg_database
    with database.session_scope() as db:
        first_admin = create_admin(db, email="ops@shop.example", password="x" * 12)
        admin_id = first_admin.id
        token = sign_action(
            action_key(db), _alert(database), "acknowledge", "email", admin_id, now=utcnow()
        )
    late = database.session()
    try:
        checked_late = verify_action_link(late, token)  # not used yet, as far as it knows
        with database.session_scope() as db:
            checked = verify_action_link(db, token)
            assert checked.recipient is not None
            use_action_link(db, checked, actor=checked.recipient)
        assert checked_late.recipient is not None
        with pytest.raises(ActionLinkError) as refused:
            use_action_link(late, checked_late, actor=checked_late.recipient)
        assert refused.value.reason == "used"
    finally:
        late.rollback()
        late.close()
    with database.session_scope() as db:
        assert db.scalar(select(func.count()).select_from(ActionUse)) == 1
