"""The JSON body check: depth counting ignores brackets inside strings; what passes is exactly valid JSON."""

from __future__ import annotations

import pytest

from app.server.bodies import (
    MAX_DEPTH,
    DuplicateKeyError,
    InvalidUtf8Error,
    JsonTooDeepError,
    MalformedJsonError,
    NumberOutOfRangeError,
    check_json_body,
    nesting_depth,
)


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),
        (b'{"a": "\\"[[[[\\"", "b": [[]]}', 3),
        (b'"just a string with ] and {"', 0),
        (b"[]" * 1000, 1),
    ],
)
def test_nesting_depth(body: bytes, depth: int) -> None:
    assert nesting_depth(body) == depth


def test_the_limit_is_inclusive() -> None:
    check_json_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    with pytest.raises(JsonTooDeepError):
        check_json_body(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"a": "\xff"}', InvalidUtf8Error),
        (b'{"a": "\xed\xa0\x80"}', InvalidUtf8Error),  # an encoded surrogate is not UTF-8
        (b'{"a": 1, "a": 1}', DuplicateKeyError),
        (b'[{"a": 1}, {"a": 1, "b": {"c": 1, "c": 2}}]', DuplicateKeyError),
        (b"-9223372036854775809", NumberOutOfRangeError),
        (b"[1e400]", NumberOutOfRangeError),
        (b"[-1e400]", NumberOutOfRangeError),
        (b"[Infinity]", MalformedJsonError),
        (b"{'a': 1}", MalformedJsonError),
        (b'{"a": 1} x', MalformedJsonError),
    ],
)
def test_refused(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_json_body(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[]",
        b"null",
        b'{"a": -9223372036854775808, "b": 9223372036854775807, "c": 1.5e300}',
        b'{"a": {"a": {"a": 1}}}',
        '{"имя": "значение ✓"}'.encode(),
    ],
)
def test_accepted(body: bytes) -> None:
    check_json_body(body)
