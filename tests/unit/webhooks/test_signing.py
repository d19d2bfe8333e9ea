"""Standard Webhooks signatures, checked against the independent `standardwebhooks` implementation."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.db.models.notifications import Event
from app.domain.webhooks import signing
from app.domain.webhooks.dispatch import attempt_job_id, delay_before, payload


def test_secret_format():
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 24
    assert signing.new_secret() != secret


def test_our_signature_verifies_with_the_reference_library():
    secret = signing.new_secret()
    body = b'{"id":"e1","type":"stock.low","data":{"quantity":3}}'
    ts = int(time.time())
    headers = signing.headers([secret], "e1", ts, body)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) is not None


def test_known_vector():
    # The example from the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sig = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_rotation_signs_with_both_secrets_and_either_verifies():
    old, new = signing.new_secret(), signing.new_secret()
    body = b"{}"
    ts = int(time.time())
    headers = signing.headers([new, old], "e2", ts, body)
    assert len(headers["webhook-signature"].split()) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_tampering_and_stale_timestamps_fail():
    secret = signing.new_secret()
    ts = int(time.time())
    headers = signing.headers([secret], "e3", ts, b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    old = signing.headers([secret], "e3", ts - 3600, b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', old)
    signing.verify(secret, "e3", str(ts), headers["webhook-signature"], b'{"a":1}', now=ts)
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, "e3", str(ts - 3600), old["webhook-signature"], b'{"a":1}', now=ts)


def test_payload_shape_is_the_documented_one():
    import json

    event = Event(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        type="stock.low",
        data={"quantity": 2},
        created_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    )
    body = json.loads(payload(event))
    assert list(body) == ["id", "type", "created_at", "tenant_id", "data"]
    assert body["created_at"] == "2026-11-26T12:00:00Z" and body["data"] == {"quantity": 2}


def test_retry_schedule_spans_more_than_a_day_and_job_ids_name_attempts():
    delays = [delay_before(n) for n in range(1, 9)]
    assert delays == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    assert sum(d or 0 for d in delays) > 24 * 3600
    assert delay_before(9) is None
    d = uuid.uuid4()
    due = datetime(2026, 1, 1, tzinfo=UTC)
    assert attempt_job_id(d, 3, due) == attempt_job_id(d, 3, due) != attempt_job_id(d, 4, due)
