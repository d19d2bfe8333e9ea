"""The response cache's entry key: parameter names in any order share an entry; repeated values keep theirs."""

from __future__ import annotations

import uuid

from app.server.cache import _request_entry_key

TENANT = uuid.UUID("00000000-0000-0000-0000-000000000001")


def key(query: bytes) -> str:
    return _request_entry_key(TENANT, "products", "/api/v1/products", query)


def test_parameter_order_does_not_matter() -> None:
    assert key(b"a=1&b=2") == key(b"b=2&a=1")


def test_repeated_parameters_keep_their_order() -> None:
    assert key(b"a=1&a=2") != key(b"a=2&a=1")
    assert key(b"a=1&b=0&a=2") == key(b"b=0&a=1&a=2")
    assert key(b"a=1&b=0&a=2") != key(b"a=2&b=0&a=1")
