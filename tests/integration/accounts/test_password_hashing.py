"""argon2 never runs on the event loop (issue 14 §3): logins are checked on a bounded thread pool, the API
keeps answering while they are, and past the pool's queue a login is refused at once with 503 + Retry-After.

The responsiveness test compares figures of the same run (no absolute threshold): while 40 logins are
checked, /health/live must keep answering, nine probes in ten in less than half of what one password check
costs on this machine right now. With hashing on the loop (``password_hash_workers=0``, the old behaviour)
probes wait behind whole verifications (measured: p90 2.3 s against 0.3 s per check) and the test fails; off
the loop, p90 was 25 ms."""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec

from app.lib.security import verify_password
from tests.conftest import unique_email
from tests.contract.support import serve_api

LOGINS = 40


async def _one_check_seconds() -> float:
    """What one password verification costs on this machine now (the best of three, off this loop)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        await asyncio.to_thread(verify_password, None, "x" * 12)
        times.append(time.perf_counter() - t0)
    return min(times)


async def test_the_loop_answers_while_logins_are_checked(settings):
    check = await _one_check_seconds()
    with serve_api(msgspec.structs.replace(settings, password_hash_workers=1, password_hash_queue=64)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)) as http:
            assert (await http.get("/health/live")).status_code == 200
            started = time.perf_counter()
            logins = asyncio.gather(
                *(
                    http.post("/api/v1/auth/login", json={"email": unique_email("burst"), "password": "x" * 12})
                    for _ in range(LOGINS)
                )
            )
            task = asyncio.ensure_future(logins)
            probes: list[float] = []
            while not task.done():
                t0 = time.perf_counter()
                assert (await http.get("/health/live")).status_code == 200
                if not task.done():
                    probes.append(time.perf_counter() - t0)
            burst = time.perf_counter() - started
            statuses = [r.status_code for r in await task]
    assert statuses == [401] * LOGINS
    assert len(probes) >= 5, (len(probes), burst)
    p90 = sorted(probes)[int(len(probes) * 0.9)]
    assert p90 < check / 2, f"health p90 {p90:.3f} s while one password check costs {check:.3f} s (burst {burst:.1f} s)"


async def test_a_full_pool_refuses_at_once_with_retry_after(settings):
    tight = msgspec.structs.replace(settings, password_hash_workers=1, password_hash_queue=1)
    with serve_api(tight) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=32)) as http:
            responses = await asyncio.gather(
                *(
                    http.post("/api/v1/auth/login", json={"email": unique_email("busy"), "password": "x" * 12})
                    for _ in range(20)
                )
            )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 503} and 401 in statuses and 503 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert busy.json()["code"] == "password_hashing_busy" and int(busy.headers["retry-after"]) >= 1
