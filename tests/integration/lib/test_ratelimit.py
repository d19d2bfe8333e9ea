"""The Redis limiter: windows, weighting, atomicity across coroutines and processes, fail-open."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from redis.asyncio import Redis

from app.lib.ratelimit import Policy, RateLimiter, RateLimiterUnavailable, Window


@pytest.fixture
def limiter(redis: Redis) -> RateLimiter:
    return RateLimiter(redis, prefix=f"rl-test-{uuid.uuid4().hex[:8]}")


def _key() -> str:
    return uuid.uuid4().hex


async def _at_window_start(redis: Redis, seconds: float, *, offset: float = 0.0) -> None:
    """Sleep until ``offset`` seconds into the next fixed window of ``seconds`` (by Redis TIME)."""
    sec, usec = await redis.time()
    now = sec + usec / 1e6
    await asyncio.sleep(seconds - (now % seconds) + offset)


async def test_admits_up_to_the_limit_then_says_when_to_retry(limiter: RateLimiter) -> None:
    policy = Policy("basic", (Window("minute", 5, 60),))
    key = _key()
    decisions = [await limiter.hit(key, policy) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.windows[0].remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    # the rest of this minute, then until 5 × (1 − g) + 1 ≤ 5 in the next one (g ≥ 0.2, i.e. 12 s)
    assert 12 < refused.retry_after <= 72
    assert refused.windows[0].remaining == 0
    assert decisions[0].retry_after == 0


async def test_every_window_must_admit_and_refusals_count_nowhere(limiter: RateLimiter) -> None:
    policy = Policy("two", (Window("second", 2, 1.0), Window("hour", 3, 3600)))
    key = _key()
    assert [(await limiter.hit(key, policy)).allowed for _ in range(4)] == [True, True, False, False]
    # the refused hits were not counted in the hour window either
    state = await limiter.peek(key, policy)
    assert [w.remaining for w in state.windows] == [0, 1]
    await asyncio.sleep(2.05)  # the second window drains; the hour window still has exactly one left
    assert (await limiter.hit(key, policy)).allowed
    refused = await limiter.hit(key, policy)
    assert not refused.allowed
    assert refused.retry_after > 1000  # only the hour window refuses now


async def test_previous_window_is_weighted_by_the_overlap(limiter: RateLimiter, redis: Redis) -> None:
    policy = Policy("weighted", (Window("w", 10, 1.0),))
    key = _key()
    await _at_window_start(redis, 1.0, offset=0.02)
    assert sum([(await limiter.hit(key, policy)).allowed for _ in range(12)]) == 10
    refused = await limiter.hit(key, policy)
    # next window: 10 × (1 − g) + 1 ≤ 10 needs g ≥ 0.1, so about 1.0 − 0.02 + 0.1 s from now
    assert 1.0 <= refused.retry_after <= 1.1
    await _at_window_start(redis, 1.0, offset=0.5)
    # halfway through the next window the previous 10 weigh 5: exactly five more fit
    assert sum([(await limiter.hit(key, policy)).allowed for _ in range(10)]) == 5


async def test_peek_does_not_count(limiter: RateLimiter) -> None:
    policy = Policy("peek", (Window("w", 2, 60),))
    key = _key()
    for _ in range(5):
        assert (await limiter.peek(key, policy)).allowed
    assert [(await limiter.hit(key, policy)).allowed for _ in range(3)] == [True, True, False]
    assert not (await limiter.peek(key, policy)).allowed


async def test_acquire_sleeps_through_short_waits_and_returns_long_refusals(limiter: RateLimiter) -> None:
    short = Policy("short", (Window("w", 2, 0.3),))
    key = _key()
    started = time.monotonic()
    for _ in range(4):
        assert (await limiter.acquire(key, short, max_wait=1.0)).allowed
    assert time.monotonic() - started >= 0.2  # it had to wait for the window to roll

    long = Policy("long", (Window("w", 1, 60),))
    assert (await limiter.acquire(key, long, max_wait=1.0)).allowed
    started = time.monotonic()
    refused = await limiter.acquire(key, long, max_wait=1.0)
    assert not refused.allowed and refused.retry_after > 1.0
    assert time.monotonic() - started < 0.5  # it did not sleep for a wait it could not afford


async def test_keys_expire_after_twice_their_window(limiter: RateLimiter, redis: Redis) -> None:
    policy = Policy("ttl", (Window("short", 5, 1.5), Window("long", 5, 30)))
    key = _key()
    await limiter.hit(key, policy)
    keys = [k async for k in redis.scan_iter(match=f"{limiter.prefix}:*")]  # the prefix is this test's
    assert len(keys) == 2
    ttls = sorted([await redis.pttl(k) for k in keys])
    assert 0 < ttls[0] <= 3000 and 3000 < ttls[1] <= 60_000


async def test_survives_a_script_flush(limiter: RateLimiter, redis: Redis) -> None:
    policy = Policy("flush", (Window("w", 3, 60),))
    key = _key()
    assert (await limiter.hit(key, policy)).allowed
    await redis.script_flush()  # EVALSHA now answers NOSCRIPT: the limiter must fall back to EVAL
    assert (await limiter.hit(key, policy)).allowed
    assert (await limiter.peek(key, policy)).windows[0].remaining == 1


async def test_concurrent_hits_never_exceed_the_tightest_window(limiter: RateLimiter) -> None:
    policy = Policy("burst", (Window("second", 40, 30), Window("minute", 37, 60)))
    key = _key()
    decisions = await asyncio.gather(*(limiter.hit(key, policy) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 37


_WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from redis.asyncio import Redis
    from app.lib.ratelimit import Policy, RateLimiter, Window

    async def main(url, prefix, key, start_at):
        redis = Redis.from_url(url)
        limiter = RateLimiter(redis, prefix=prefix)
        policy = Policy("procs", (Window("burst", 10_000, 1.0), Window("hour", 37, 3600)))
        await limiter.peek(key, policy)  # connect and load the script before the race
        await asyncio.sleep(max(0.0, start_at - time.time()))
        decisions = await asyncio.gather(*(limiter.hit(key, policy) for _ in range(100)))
        print(sum(d.allowed for d in decisions))
        await redis.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
    """
)


async def test_two_processes_never_admit_more_than_the_limit(limiter: RateLimiter, redis_url: str) -> None:
    key = _key()
    start_at = time.time() + 1.5  # both processes fire their 100 hits at the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, limiter.prefix, key, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.to_thread(p.communicate, timeout=30) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    admitted = [int(out.strip()) for out, _ in outputs]
    assert sum(admitted) == 37, admitted


async def test_fails_open_when_redis_is_unreachable() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    policy = Policy("open", (Window("w", 1, 60),))
    try:
        limiter = RateLimiter(unreachable)
        decisions = [await limiter.hit("k", policy) for _ in range(3)]
        assert all(d.allowed for d in decisions)
        assert decisions[0].windows[0].remaining == 1
        assert (await limiter.acquire("k", policy, max_wait=0.1)).allowed

        closed = RateLimiter(unreachable, fail_open=False)
        with pytest.raises(RateLimiterUnavailable):
            await closed.hit("k", policy)
    finally:
        await unreachable.aclose()
