"""The pipelining Redis client of the request gate (app/lib/resp.py), against a real Redis and a silent
server: replies matched in order under concurrency, server errors as redis-py's exceptions, reconnection,
and a deadline when Redis stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.lib.ratelimit import Policy, RateLimiter, Window
from app.lib.resp import PipelinedRedis


async def test_concurrent_commands_get_their_own_replies(redis_url, redis):
    client = PipelinedRedis(redis_url)
    prefix = f"resp:{uuid.uuid4().hex}"
    try:
        # 2 000 commands in flight at once over one connection; each must get its own answer.
        replies = await asyncio.gather(
            *(client.execute_command("INCRBY", f"{prefix}:{i % 7}", i) for i in range(2000)),
            *(client.execute_command("ECHO", f"m{i}") for i in range(500)),
        )
        echoes = replies[2000:]
        assert echoes == [f"m{i}".encode() for i in range(500)]
        for k in range(7):
            assert int(await redis.get(f"{prefix}:{k}")) == sum(i for i in range(2000) if i % 7 == k)
        # Integers, bulk strings, nil and arrays decode as redis-py's hiredis parser would.
        assert await client.execute_command("GET", f"{prefix}:missing") is None
        assert await client.execute_command("MGET", f"{prefix}:0", f"{prefix}:missing") == [
            str(sum(i for i in range(2000) if i % 7 == 0)).encode(),
            None,
        ]
    finally:
        await redis.delete(*[f"{prefix}:{k}" for k in range(7)])
        await client.aclose()


async def test_server_errors_are_redis_py_exceptions_and_the_connection_stays_usable(redis_url, redis):
    client = PipelinedRedis(redis_url)
    key = f"resp:{uuid.uuid4().hex}"
    try:
        with pytest.raises(NoScriptError):
            await client.execute_command("EVALSHA", "0" * 40, 0)
        await redis.set(key, "text")
        with pytest.raises(ResponseError):
            await client.execute_command("INCR", key)
        assert await client.execute_command("PING") == b"PONG"
    finally:
        await redis.delete(key)
        await client.aclose()


async def test_the_limiter_works_through_it_and_loads_its_script(redis_url, redis):
    await redis.script_flush()  # EVALSHA answers NOSCRIPT; the limiter falls back to EVAL once
    limiter = RateLimiter(PipelinedRedis(redis_url), prefix=f"resp-rl:{uuid.uuid4().hex}")
    policy = Policy("t", (Window("burst", 3, 10),))
    decisions = [await limiter.hit("k", policy) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[-1].retry_after > 0


async def test_it_reconnects_after_the_server_drops_it(redis_url, redis):
    client = PipelinedRedis(redis_url)
    try:
        client_id = await client.execute_command("CLIENT", "ID")
        assert await redis.execute_command("CLIENT", "KILL", "ID", client_id) == 1
        await asyncio.sleep(0.05)
        # The call that finds the connection gone fails cleanly or succeeds on a new one; the next one works.
        with contextlib.suppress(RedisConnectionError):
            await client.execute_command("PING")
        assert await client.execute_command("PING") == b"PONG"
    finally:
        await client.aclose()


async def test_a_silent_server_times_out_every_pending_call():
    # A TCP server that accepts and never answers: the watchdog gives up after the deadline.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(client.execute_command("PING") for _ in range(3)), return_exceptions=True)
        waited = time.monotonic() - started
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert 0.4 < waited < 2.0
    finally:
        await client.aclose()
        listener.close()


async def test_nothing_listening_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    with pytest.raises(RedisConnectionError):
        await client.execute_command("PING")
    await client.aclose()


async def test_it_selects_the_database_in_the_url(redis_url, redis):
    if redis_url.startswith("unix://"):
        url = redis_url.split("?", 1)[0] + "?db=5"
    else:
        url = redis_url.rsplit("/", 1)[0] + "/5"
    client = PipelinedRedis(url)
    key = f"resp:{uuid.uuid4().hex}"
    try:
        await client.execute_command("SET", key, "in-db-5")
        assert await redis.get(key) is None  # the fixture's client is on another database
        assert await client.execute_command("GET", key) == b"in-db-5"
    finally:
        await client.execute_command("DEL", key)
        await client.aclose()


async def test_enqueue_sends_without_waiting_and_keeps_the_order(redis_url, redis):
    client = PipelinedRedis(redis_url)
    key = f"resp:{uuid.uuid4().hex}"
    try:
        assert client.enqueue("PING") is None  # not connected yet: the caller uses execute_command
        await client.execute_command("SET", key, "a")
        first = client.enqueue("GET", key)
        assert first is not None
        # Written in the same turn of the loop as the SET below, read before it (Redis keeps the order).
        assert await client.execute_command("SET", key, "b") == b"OK"
        assert await first == b"a"
        assert await client.execute_command("GET", key) == b"b"
    finally:
        await redis.delete(key)
        await client.aclose()
