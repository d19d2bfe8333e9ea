"""The scrubber every error-tracker event passes: secrets by key and by shape, structure kept."""

from __future__ import annotations

from app.domain.apikeys import keys
from app.observability.scrub import FILTERED, scrub, scrub_text


def test_values_under_sensitive_keys_are_filtered_everywhere():
    event = {
        "request": {"headers": {"Authorization": "Bearer abc.def.ghi", "Accept": "application/json"}},
        "extra": [{"password": "p4ss", "api_key": "stk_x", "note": "fine"}, {"nested": {"client_secret": "s"}}],
        "tags": {"tenant_id": "t-1", "request_id": "r-1"},
    }
    out = scrub(event)
    assert out["request"]["headers"] == {"Authorization": FILTERED, "Accept": "application/json"}
    assert out["extra"][0] == {"password": FILTERED, "api_key": FILTERED, "note": "fine"}
    assert out["extra"][1]["nested"]["client_secret"] == FILTERED
    assert out["tags"] == {"tenant_id": "t-1", "request_id": "r-1"}  # ids an operator searches by stay
    assert event["extra"][0]["password"] == "p4ss"  # a copy: the original is untouched


def test_secrets_recognised_by_shape_inside_text():
    key = keys.generate()
    text = (
        f"key {key}; jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x; dsn postgresql://u:pw@db/x; "
        "Authorization: Bearer abcdefgh12345678; whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw; "
        "gAAAAABkZXJyb3JfZXJyb3JfZXJyb3JfZXJyb3Jf; sk_live_abcdefgh1234; 123456789:AAH-abcdefghijklmnopqrstuvwxyz0123; "
        'password=letmein&next=1 {"secret": "x"}'
    )
    out = scrub_text(text)
    for leaked in (
        key,
        "eyJzdWIiOiIxIn0",
        ":pw@",
        "abcdefgh12345678",
        "whsec_MfK",
        "gAAAAABkZXJy",
        "sk_live_",
        "AAH-abc",
        "letmein",
        '"x"',
    ):
        assert leaked not in out, (leaked, out)
    assert "postgresql://[Filtered]@db/x" in out and "next=1" in out
