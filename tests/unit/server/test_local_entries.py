"""The API process's own copies of cached entries: a byte budget, least recently used out, and a TTL."""

from __future__ import annotations

import time

from app.server.cache import LocalEntries


def test_the_byte_budget_drops_the_least_recently_used():
    local = LocalEntries(max_bytes=100)
    local.put("a", b"x" * 10)
    local.put("b", b"y" * 10)
    assert local.get("a") == b"x" * 10  # a is now the most recently used
    for n in range(9):
        local.put(f"k{n}", b"z" * 10)
    assert local.size <= 100
    assert local.get("b") is None and local.get("a") == b"x" * 10


def test_replacing_an_entry_keeps_the_size_exact_and_huge_pages_are_not_kept():
    local = LocalEntries(max_bytes=800)
    local.put("a", b"1" * 50)
    local.put("a", b"2" * 70)
    assert local.size == 70 and local.get("a") == b"2" * 70
    local.put("big", b"3" * 101)  # over an eighth of the budget: one page must not flush the rest
    assert local.get("big") is None and local.size == 70
    local.drop("a")
    assert local.size == 0 and local.get("a") is None


def test_entries_expire_with_the_redis_ttl():
    local = LocalEntries(max_bytes=100, ttl=0.01)
    local.put("a", b"x")
    time.sleep(0.02)
    assert local.get("a") is None and local.size == 0
