"""A WB orders page kept compressed as it streams in, read back one line at a time (``_PageBody``)."""

from __future__ import annotations

import json
import random

import pytest

from app.integrations.wildberries.client import _NotAnArrayOfLines, _PageBody

TRICKY = ["a{b}c", 'q"uo\\"te}', "back\\\\", "юникод", "", " , [ ] ", "\\u007b", "line\nbreak", "}{", '\\"}']


def _lines() -> list[dict[str, object]]:
    rnd = random.Random(7)
    return [
        {"srid": f"{n}.rabc{n:012x}.0.0", "s": rnd.choice(TRICKY), "n": n, "f": 1.5, "b": n % 2 == 0, "z": None}
        for n in range(2000)
    ]


@pytest.mark.parametrize("plain_limit", [0, 50_000, _PageBody.PLAIN_LIMIT])  # compressed, from part-way, plain
@pytest.mark.parametrize("part", [1, 13, 4096, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_line_comes_back_whatever_the_parts_it_arrived_in(part, indent, plain_limit):
    lines = _lines()
    text = json.dumps(lines, ensure_ascii=indent is None, indent=indent).encode()
    body = _PageBody(plain_limit)
    body.write(b'[{"from an earlier attempt": 1}')
    body.reset()  # a retried request: what the failed attempt wrote is forgotten
    for start in range(0, len(text), part):
        body.write(text[start : start + part])
    assert [json.loads(line) for line in body.lines()] == lines


@pytest.mark.parametrize("plain_limit", [0, _PageBody.PLAIN_LIMIT])
def test_an_empty_page_has_no_lines(plain_limit):
    body = _PageBody(plain_limit)
    body.write(b" [ \n ] ")
    assert list(body.lines()) == []


@pytest.mark.parametrize("text", [b'{"srid": "1"}', b'[{"srid": "1"}', b"", b'[{"srid": "1"} 5]', b"[1, 2"])
@pytest.mark.parametrize("plain_limit", [0, _PageBody.PLAIN_LIMIT])
def test_anything_but_a_json_array_fails_the_read(text, plain_limit):
    body = _PageBody(plain_limit)
    body.write(text)
    with pytest.raises(_NotAnArrayOfLines):
        list(body.lines())


def test_a_page_past_the_limit_is_held_compressed():
    text = json.dumps(_lines() * 5).encode()
    body = _PageBody(100_000)
    for start in range(0, len(text), 65536):
        body.write(text[start : start + 65536])
    assert sum(len(p) for p in body._parts) * 4 < len(text)


@pytest.mark.parametrize("part", [7, 1 << 20])
def test_a_nested_object_falls_back_to_decoding_the_page_whole_every_line_once_in_order(part):  # compressed
    """The splitter knows flat lines only; a page where WB nests an object (after some flat lines) still
    reads: the lines already given are not given again, the rest come from msgspec's whole-page decode."""
    lines = _lines()[:50]
    lines[20] = {**lines[20], "extra": {"nested": [1, {"deeper": "}"}]}}
    text = json.dumps(lines).encode()
    body = _PageBody(0)
    for start in range(0, len(text), part):
        body.write(text[start : start + part])
    assert [json.loads(line) for line in body.lines()] == lines
