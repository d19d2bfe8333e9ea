"""Pure pieces of the reports area: format negotiation, signed download links, carrying values forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.reports.services import ReportLink, ReportLinkInvalid, UnsupportedReportFormat, negotiate, sign, verify
from app.domain.reports.services._by_day import _carry

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.mark.parametrize(
    ("fmt", "accept", "expected"),
    [
        (None, None, "json"),
        (None, "*/*", "json"),
        (None, "text/csv", "csv"),
        (None, f"{XLSX}", "xlsx"),
        (None, "application/vnd.ms-excel", "xlsx"),
        (None, "text/html, application/xhtml+xml, */*;q=0.8", "json"),
        (None, "text/csv;q=0.4, application/json;q=0.9", "json"),
        (None, f"application/json;q=0, {XLSX}", "xlsx"),
        (None, "text/*", "csv"),
        ("csv", XLSX, "csv"),  # ?format= wins over Accept
    ],
)
def test_negotiation(fmt, accept, expected) -> None:
    assert negotiate(fmt, accept) == expected


def test_an_accept_we_cannot_serve_is_406() -> None:
    with pytest.raises(UnsupportedReportFormat) as caught:
        negotiate(None, "image/png, application/json;q=0")
    assert caught.value.status_code == 406


def test_a_link_verifies_until_it_expires_and_not_after_any_change() -> None:
    key, now = b"k" * 32, datetime(2026, 12, 5, 8, tzinfo=UTC)
    link = ReportLink(
        tenant=uuid.uuid4(), format="csv", lang="en", window=14, expires=int((now + timedelta(days=7)).timestamp())
    )
    token = sign(key, link)
    assert verify(key, token, now) == link
    with pytest.raises(ReportLinkInvalid, match="expired"):
        verify(key, token, now + timedelta(days=8))
    with pytest.raises(ReportLinkInvalid):
        verify(b"other key" * 4, token, now)
    body, _, signature = token.partition(".")
    other = sign(key, ReportLink(tenant=uuid.uuid4(), expires=link.expires))
    with pytest.raises(ReportLinkInvalid):  # another link's body under this signature
        verify(key, other.partition(".")[0] + "." + signature, now)
    with pytest.raises(ReportLinkInvalid):
        verify(key, body, now)
    with pytest.raises(ReportLinkInvalid):
        verify(key, "not-base64!." + signature, now)
    # Non-ASCII in either half is a refusal, not an error (hmac.compare_digest refuses such str).
    for forged in (f"{body}.é{signature}", f"ü{body}.{signature}", "\udcff.\udcff", f"{body}.\x00"):
        with pytest.raises(ReportLinkInvalid):
            verify(key, forged, now)


def test_values_carry_forward_to_each_day_end() -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)
    ends = [day + timedelta(days=i + 1) for i in range(4)]
    points = [(day + timedelta(hours=3), 5), (day + timedelta(hours=9), 4), (day + timedelta(days=2, hours=1), 0)]
    assert _carry(None, points, ends) == [4, 4, 0, 0]
    assert _carry(7, [], ends) == [7, 7, 7, 7]
    assert _carry(None, [], ends) == [None, None, None, None]
    assert _carry(2, [(ends[0], 9)], ends) == [2, 9, 9, 9]  # a point at midnight belongs to the next day
