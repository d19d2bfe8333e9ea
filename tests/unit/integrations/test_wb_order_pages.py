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


@pytest.mark.parametrize("part", [1, 13, 4096, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_line_comes_back_whatever_the_parts_it_arrived_in(part, indent):
    lines = _lines()
    text = json.dumps(lines, ensure_ascii=indent is None, indent=indent).encode()
    body = _PageBody()
    body.write(b'[{"from an earlier attempt": 1}')
    body.reset()  # a retried request: what the failed attempt wrote is forgotten
    for start in range(0, len(text), part):
        body.write(text[start : start + part])
    assert [json.loads(line) for line in body.lines()] == lines


def test_an_empty_page_has_no_lines():
    body = _PageBody()
    body.write(b" [ \n ] ")
    assert list(body.lines()) == []


@pytest.mark.parametrize(
    "text", [b'{"srid": "1"}', b'[{"srid": "1"}', b'[{"srid": {"nested": 1}}]', b"", b'[{"srid": "1"} 5]']
)
def test_anything_but_an_array_of_flat_objects_fails_the_read(text):
    body = _PageBody()
    body.write(text)
    with pytest.raises(_NotAnArrayOfLines):
        list(body.lines())


def test_the_page_is_held_compressed():
    text = json.dumps(_lines() * 5).encode()
    body = _PageBody()
    for start in range(0, len(text), 65536):
        body.write(text[start : start + 65536])
    assert sum(len(p) for p in body._parts) * 4 < len(text)
