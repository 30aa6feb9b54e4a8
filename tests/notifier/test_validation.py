"""The input rules, written once in notifier/validation.py, as the services apply them."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from sqlalchemy.orm import Session

from notifier import ValidationError, admin_notification_service, platform_alert_service
from notifier.validation import (
    _INVISIBLE,
    METADATA_MAX_DEPTH,
    TEXT_PATTERN,
    TOO_DEEP,
    is_app_path,
    is_blank,
    is_safe_url,
)

INVISIBLE_ONLY = ["\u200b", "\ufeff", " \u200b\ufeff\t", "\u202e", "\u00ad", "\u2060"]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_the_invisible_class_is_what_unicode_says() -> None:
    expected = {
        chr(code)
        for code in range(0x10000)
        if chr(code).isspace() or unicodedata.category(chr(code)) in ("Cc", "Cf", "Zs", "Zl", "Zp")
    }
    found = {chr(code) for code in range(0x10000) if re.fullmatch(f"[{_INVISIBLE}]", chr(code))}
    assert found == expected


@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_text_drawing_nothing_is_blank(text: str) -> None:
    assert is_blank(text)
    assert re.fullmatch(TEXT_PATTERN, text) is None  # the API document says the same


@pytest.mark.parametrize("text", ["a", "\u200ba", "é", "مرحبا", "\u05d0"])
def test_text_with_something_visible_is_not_blank(text: str) -> None:
    assert not is_blank(text)
    assert re.fullmatch(TEXT_PATTERN, text)


@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_services_refuse_invisible_text(db_session: Session, text: str) -> None:
    for field in ("title", "message"):
        values = {"type": "system_info", "title": "t", "message": "m", field: text}
        with pytest.raises(ValidationError) as caught:
            admin_notification_service.create_notification(db_session, **values)  # type: ignore[arg-type]
        assert "blank" in caught.value.errors[field]
    with pytest.raises(ValidationError) as caught:
        platform_alert_service.create_or_increment_alert(
            db_session, alert_type="system", severity="info", title=text
        )
    assert "title" in caught.value.errors
    alert = platform_alert_service.create_alert(
        db_session, alert_type="system", severity="info", title="ok"
    )
    with pytest.raises(ValidationError) as caught:
        platform_alert_service.resolve_alert(
            db_session, alert.id, user_id=None, resolution_notes=text
        )
    assert "resolution_notes" in caught.value.errors


def test_an_invisible_dedup_key_is_no_key(db_session: Session) -> None:
    # Optional text that draws nothing counts as absent, so two such notifications are two.
    first = admin_notification_service.create_notification(
        db_session, type="system_info", title="t", message="m", dedup_key="\u200b"
    )
    second = admin_notification_service.create_notification(
        db_session, type="system_info", title="t", message="m", dedup_key="\ufeff"
    )
    assert first.dedup_key is None and second.dedup_key is None and first.id != second.id


def test_bidi_overrides_are_removed_from_titles(db_session: Session) -> None:
    note = admin_notification_service.create_notification(
        db_session, type="system_info", title="invoice\u202egnp.exe", message="m\u2066x\u2069"
    )
    assert note.title == "invoicegnp.exe" and note.message == "mx"
    alert = platform_alert_service.create_or_increment_alert(
        db_session, alert_type="system", severity="info", title="\u202dspoof\u202c"
    )[0]
    assert alert.title == "spoof"


def test_nul_is_refused_before_the_database_sees_it(db_session: Session) -> None:
    with pytest.raises(ValidationError) as caught:
        admin_notification_service.create_notification(
            db_session, type="system_info", title="a\x00b", message="m", metadata={"k": "v\x00"}
        )
    assert "NUL" in caught.value.errors["title"] and "NUL" in caught.value.errors["metadata"]


@pytest.mark.parametrize(
    "url",
    [
        "https://host:99999/",
        "https://host:0/",
        "https://host:65536/",
        "https://host/\x85",
        "https://host/\u009b",
        "/admin/\x9f",
        "https://host/\u202e",
        "https://user@host/",
        "javascript:alert(1)",
        "//evil.example",
        "/\\evil.example",
        "ftp://host/",
    ],
)
def test_unsafe_urls_are_refused(db_session: Session, url: str) -> None:
    assert not is_safe_url(url)
    with pytest.raises(ValidationError) as caught:
        admin_notification_service.create_notification(
            db_session, type="system_info", title="t", message="m", action_url=url
        )
    assert "action_url" in caught.value.errors


@pytest.mark.parametrize(
    "url", ["/", "/admin/x?y=1", "https://host:65535/a", "HTTP://Example.com", "http://[::1]:8080/"]
)
def test_safe_urls_pass(url: str) -> None:
    assert is_safe_url(url)


def test_app_paths_are_the_login_s_only_way_back() -> None:
    assert is_app_path("/admin/notifications?tab=alerts")
    for url in ("//evil", "/\\evil", "https://evil/", "/admin/\x85", "admin", ""):
        assert not is_app_path(url)


def test_metadata_is_measured_as_stored_utf8(db_session: Session) -> None:
    # 5,000 "é" are 10,000 bytes of UTF-8 (30,000 as \u00e9 escapes): within the 16 KiB.
    note = admin_notification_service.create_notification(
        db_session, type="system_info", title="t", message="m", metadata={"text": "é" * 5000}
    )
    assert note.notification_metadata == {"text": "é" * 5000}
    with pytest.raises(ValidationError, match="16384 bytes"):
        admin_notification_service.create_notification(
            db_session, type="system_info", title="t", message="m", metadata={"t": "é" * 9000}
        )


def test_deep_metadata_says_how_deep_it_may_be(db_session: Session) -> None:
    admin_notification_service.create_notification(
        db_session,
        type="system_info",
        title="t",
        message="m",
        metadata=_nested(METADATA_MAX_DEPTH),
    )
    for depth in (METADATA_MAX_DEPTH + 1, 250, 5000):
        with pytest.raises(ValidationError) as caught:
            platform_alert_service.create_alert(
                db_session,
                alert_type="system",
                severity="info",
                title="t",
                metadata=_nested(depth),
            )
        assert caught.value.errors == {"metadata": TOO_DEEP}


def test_metadata_keys_json_turns_into_text_still_pass(db_session: Session) -> None:
    note = admin_notification_service.create_notification(
        db_session, type="system_info", title="t", message="m", metadata={1: "a", "t": (1, 2)}
    )
    assert note.notification_metadata == {"1": "a", "t": [1, 2]}
