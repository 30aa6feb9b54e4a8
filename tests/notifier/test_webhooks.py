"""Standard Webhooks signatures, checked by the reference receiver library unchanged."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifier.delivery.webhooks import envelope, generate_secret, sign, signed_headers

WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_a_receiver_using_standardwebhooks_verifies_our_signature() -> None:
    secret = generate_secret()
    body = envelope("evt_1", "alert.opened", WHEN, {"id": 7, "title": "Ünïcode <b>"})
    headers = signed_headers([secret], "msg_1", body)
    payload = Webhook(secret).verify(body, headers)
    assert payload == {
        "id": "evt_1",
        "type": "alert.opened",
        "occurred_at": "2026-11-25T12:00:00Z",
        "data": {"id": 7, "title": "Ünïcode <b>"},
    }


def test_during_rotation_both_old_and_new_secret_verify() -> None:
    old, new = generate_secret(), generate_secret()
    body = json.dumps({"x": 1}).encode()
    headers = signed_headers([new, old], "msg_2", body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == {"x": 1}
    assert Webhook(new).verify(body, headers) == {"x": 1}


def test_a_changed_body_or_another_secret_fails_verification() -> None:
    secret = generate_secret()
    body = b'{"x":1}'
    headers = signed_headers([secret], "msg_3", body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"x":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


def test_signature_matches_the_spec_example() -> None:
    # The example in the Standard Webhooks specification (spec/standard-webhooks.md).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
