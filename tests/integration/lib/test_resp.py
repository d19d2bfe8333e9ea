"""The pipelining Redis client of the request gate (app/lib/resp.py), against a real Redis, a TLS front for
it and a silent server: replies matched in order under concurrency, several commands in one write, arguments
encoded as redis-py encodes them, server errors as redis-py's exceptions, rediss:// with its TLS options
(the same URL meaning the same for redis-py and arq), reconnection, and a deadline when Redis stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid

import pytest
from arq.connections import create_pool
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.lib.ratelimit import Policy, RateLimiter, Window
from app.lib.redis import arq_settings
from app.lib.resp import PipelinedRedis
from tests.integration.lib.conftest import TlsRedis


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


async def test_it_selects_the_database_in_the_url(redis_url):
    # Only the connection's own state is read: nothing is written to a database other than the test one.
    if redis_url.startswith("unix://"):
        url = redis_url.split("?", 1)[0] + "?db=15"
    else:
        url = redis_url.rsplit("/", 1)[0] + "/15"
    client = PipelinedRedis(url)
    try:
        assert b" db=15 " in await client.execute_command("CLIENT", "INFO")
    finally:
        await client.aclose()


async def test_execute_many_sends_together_and_answers_in_order(redis_url, redis):
    client = PipelinedRedis(redis_url)
    key = f"resp:{uuid.uuid4().hex}"
    try:
        await redis.set(f"{key}:text", "a")
        # Not connected yet: it connects first, then every command leaves in one write.
        replies = await client.execute_many(
            ("GET", f"{key}:text"),
            ("INCR", f"{key}:text"),  # refused by the server: its error takes its place, the rest still runs
            ("EVALSHA", "0" * 40, 0),
            ("SET", f"{key}:text", "b"),
            ("GET", f"{key}:text"),
        )
        assert replies[0] == b"a" and replies[3] == b"OK" and replies[4] == b"b"
        assert type(replies[1]) is ResponseError and isinstance(replies[2], NoScriptError)
        # Interleaved with concurrent single commands, every caller still gets its own replies.
        many, *singles = await asyncio.gather(
            client.execute_many(*(("ECHO", f"m{i}") for i in range(50))),
            *(client.execute_command("ECHO", f"s{i}") for i in range(50)),
        )
        assert many == [f"m{i}".encode() for i in range(50)]
        assert singles == [f"s{i}".encode() for i in range(50)]
    finally:
        await redis.delete(f"{key}:text")
        await client.aclose()


async def test_arguments_are_encoded_as_redis_py_encodes_them(redis_url, redis):
    client = PipelinedRedis(redis_url)
    key = f"resp:{uuid.uuid4().hex}"
    try:
        values = [0.1, 1 / 3, -2.5e-12, 1e300, 7, -3, "ünïcode", b"\x00\xffraw", memoryview(b"view")]
        for i, value in enumerate(values):
            assert await client.execute_command("SET", f"{key}:{i}", value) == b"OK"
        ours = [await client.execute_command("GET", f"{key}:{i}") for i in range(len(values))]
        for i, value in enumerate(values):
            await redis.set(f"{key}:{i}", value)
        assert ours == [await redis.get(f"{key}:{i}") for i in range(len(values))]
        assert float(ours[1]) == 1 / 3  # floats round-trip exactly
        assert await client.execute_command("INCRBYFLOAT", f"{key}:0", 0.2) == b"0.3"
        # What redis-py refuses is refused before anything is written; the connection stays in step.
        for bad in (True, None, 1.5j, [1]):
            with pytest.raises(DataError):
                await client.execute_command("SET", f"{key}:bad", bad)
            with pytest.raises(DataError):
                await client.execute_many(("SET", f"{key}:bad", "x"), ("SET", f"{key}:bad", bad))
        assert await redis.exists(f"{key}:bad") == 0
        assert await client.execute_command("PING") == b"PONG"
    finally:
        await redis.delete(*[f"{key}:{i}" for i in range(9)])
        await client.aclose()


# ---- rediss:// --------------------------------------------------------------------------------------------


def _client(kind: str, url: str) -> PipelinedRedis | Redis:
    return PipelinedRedis(url, timeout=2) if kind == "resp" else Redis.from_url(url, socket_connect_timeout=2)


async def _ping(client: PipelinedRedis | Redis) -> bytes:
    try:
        return await client.execute_command("PING")
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["resp", "redis-py"])
async def test_rediss_verifies_the_server_with_the_urls_ca(tls_redis: TlsRedis, kind):
    assert await _ping(_client(kind, tls_redis.url(ssl_ca_certs=str(tls_redis.ca)))) in (b"PONG", True)
    # The default is to verify, against the system's CAs, which do not know this one.
    with pytest.raises(RedisConnectionError):
        await _ping(_client(kind, tls_redis.url()))
    # ssl_cert_reqs=none is honoured as redis-py honours it.
    assert await _ping(_client(kind, tls_redis.url(ssl_cert_reqs="none"))) in (b"PONG", True)


@pytest.mark.parametrize("kind", ["resp", "redis-py"])
async def test_rediss_checks_the_host_name_when_asked(tls_redis: TlsRedis, kind):
    ca = str(tls_redis.ca)
    assert await _ping(_client(kind, tls_redis.url("localhost", ssl_ca_certs=ca, ssl_check_hostname="true"))) in (
        b"PONG",
        True,
    )
    # The certificate names only "localhost": the same server reached as 127.0.0.1 is refused.
    with pytest.raises(RedisConnectionError):
        await _ping(_client(kind, tls_redis.url("127.0.0.1", ssl_ca_certs=ca, ssl_check_hostname="true")))


@pytest.mark.parametrize("kind", ["resp", "redis-py"])
async def test_rediss_presents_the_urls_client_certificate(tls_redis: TlsRedis, kind):
    ca = str(tls_redis.ca)
    url = tls_redis.url(
        port=tls_redis.mtls_port,
        ssl_ca_certs=ca,
        ssl_certfile=str(tls_redis.client_cert),
        ssl_keyfile=str(tls_redis.client_key),
    )
    assert await _ping(_client(kind, url)) in (b"PONG", True)
    with pytest.raises(RedisConnectionError):  # the server requires one
        await _ping(_client(kind, tls_redis.url(port=tls_redis.mtls_port, ssl_ca_certs=ca)))


async def test_the_gate_client_works_over_tls_end_to_end(tls_redis: TlsRedis, redis):
    client = PipelinedRedis(tls_redis.url(ssl_ca_certs=str(tls_redis.ca)))
    limiter = RateLimiter(client, prefix=f"resp-tls:{uuid.uuid4().hex}")
    try:
        decisions = [await limiter.hit("k", Policy("t", (Window("burst", 2, 10),))) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        key = f"resp:{uuid.uuid4().hex}"
        assert await client.execute_many(("SET", key, 0.5), ("GET", key), ("DEL", key)) == [b"OK", b"0.5", 1]
    finally:
        await client.aclose()


async def test_an_unknown_tls_option_is_a_configuration_error(tls_redis: TlsRedis):
    with pytest.raises(ValueError, match="ssl_min_versoin"):
        PipelinedRedis(tls_redis.url(ssl_min_versoin="TLSv1_3"))


async def test_the_worker_settings_carry_the_tls_options(tls_redis: TlsRedis):
    url = tls_redis.url(
        port=tls_redis.mtls_port,
        ssl_ca_certs=str(tls_redis.ca),
        ssl_certfile=str(tls_redis.client_cert),
        ssl_keyfile=str(tls_redis.client_key),
        ssl_check_hostname="true",
    )
    pool = await create_pool(arq_settings(url))  # arq pings on creation
    try:
        assert await pool.ping() is True
    finally:
        await pool.aclose()
    with pytest.raises(RedisConnectionError):  # without the client certificate the server refuses arq too
        await create_pool(arq_settings(tls_redis.url(port=tls_redis.mtls_port, ssl_ca_certs=str(tls_redis.ca))))
