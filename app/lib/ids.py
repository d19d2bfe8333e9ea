"""UUIDv7 identifiers: time-ordered, so B-tree inserts stay append-mostly."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7() -> uuid.UUID:
    """Return a RFC 9562 version-7 UUID, monotonic within this process."""
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same or earlier millisecond: bump a 12-bit counter so ids stay ordered.
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
        seq = _seq
    return uuid.UUID(int=_v7(ms, seq, int.from_bytes(os.urandom(8), "big")))


def _v7(ms: int, seq: int, rand: int) -> int:
    """RFC 9562's version-7 layout: 48 bits of Unix milliseconds, the version (7), 12 bits ``seq``, the variant
    (0b10), 62 bits of ``rand`` (higher bits of either are dropped)."""
    return (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (seq & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))


_request_rng = random.Random(os.urandom(16))  # seeded per process (uvicorn spawns its workers: a new seed each)


def request_id() -> str:
    """A request id: a version-7 UUID in hex (its time-ordered layout, so ids sort by arrival), drawn for every
    request without a client-sent id. Its random bits come from a non-cryptographic generator — an id that
    correlates log lines is not a secret — so it costs no ``getrandom`` call, no lock and no ``UUID`` object:
    ~0.4 µs against ~2 µs for ``uuid7().hex`` (``bench/api.py``'s profile had it at ~1.9 % of a worker)."""
    bits = _request_rng.getrandbits(74)
    return f"{_v7(time.time_ns() // 1_000_000, bits >> 62, bits):032x}"
