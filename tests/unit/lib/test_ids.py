"""Identifiers: ``uuid7`` (stored keys) and ``request_id`` (the id of a request without a client-sent one)."""

from __future__ import annotations

import time
import uuid

from app.lib.ids import request_id, uuid7


def test_request_ids_are_version_7_uuids_in_hex_ordered_by_time_and_distinct() -> None:
    first = request_id()
    time.sleep(0.002)
    many = [request_id() for _ in range(20_000)]
    for rid in (first, many[0], many[-1]):
        parsed = uuid.UUID(hex=rid)
        assert len(rid) == 32 and rid == parsed.hex
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert len(set(many)) == len(many)
    # The first 48 bits are the millisecond: an id drawn later never sorts before one drawn a millisecond earlier.
    assert all(rid[:12] > first[:12] for rid in many)
    assert abs(int(many[-1][:12], 16) - time.time_ns() // 1_000_000) < 5_000


def test_uuid7_stays_monotonic_within_a_process() -> None:
    ids = [uuid7() for _ in range(5_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
