"""A pipelining Redis client for the per-request hot path (the request gate's one round trip).

redis-py's asyncio client takes a pooled connection per command or pipeline (a lock, a liveness probe, a
timeout context, then the reply), and concurrent requests each use their own connection. This client keeps
one connection per process and writes each command the moment it is issued; Redis answers commands on a
connection strictly in order, so replies are matched to a FIFO of futures in ``data_received`` (parsed by
hiredis, which redis-py uses too). Concurrent requests share the socket and their commands and replies
travel together in the same segments: no lock, no pool, no per-call timer. ``bench/redis_client.py``
measures it against redis-py on the gate's exact call; docs/decisions.md records why it is kept.

It speaks what the gate needs (``execute_command`` and ``execute_many``), encodes arguments and reads the
URL (``redis://``, ``rediss://`` with its ``ssl_*`` options, ``unix://``) as redis-py does, and maps server
errors to redis-py's exception classes, so callers handle both clients alike. A deadline watchdog (not a
timer per call) drops the connection when the oldest reply is overdue; every pending call then fails with
redis-py's ``TimeoutError`` and the next call reconnects. Everything else keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
from redis.asyncio.connection import RedisSSLContext, parse_url
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    DataError,
    MasterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_ERRORS: dict[str, type[Exception]] = {
    "NOSCRIPT": NoScriptError,
    "OOM": OutOfMemoryError,
    "READONLY": ReadOnlyError,
    "MASTERDOWN": MasterDownError,
    "TRYAGAIN": TryAgainError,
    "LOADING": BusyLoadingError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
}


def _server_error(message: str) -> Exception:
    code = message.split(" ", 1)[0]
    return _ERRORS.get(code, ResponseError)(message)


def _arg(value: Any) -> bytes:
    """One argument as redis-py's ``Encoder`` writes it (floats by ``repr``, so they round-trip exactly)."""
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    if isinstance(value, bool):  # an int subclass: refused rather than sent as 'True' or 1
        raise DataError("Invalid input of type: 'bool'. Convert to a bytes, string, int or float first.")
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return repr(value).encode()
    raise DataError(f"Invalid input of type: '{type(value).__name__}'. Convert to a bytes, string, int or float first.")


def _encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)
        data = arg if kind is bytes else arg.encode() if kind is str else _arg(arg)  # the common cases first
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def encode_command(args: tuple[Any, ...]) -> bytes:
    """One command as the bytes ``execute_raw`` writes (a caller that repeats a command encodes it once)."""
    return _encode(args)


# The ``ssl_*`` options of a rediss:// URL, applied as redis-py's SSLConnection applies them (so one URL means
# the same TLS set-up for this client, the pooled client and arq).
_TLS_OPTIONS = {
    "ssl_keyfile": "keyfile",
    "ssl_certfile": "certfile",
    "ssl_cert_reqs": "cert_reqs",
    "ssl_ca_certs": "ca_certs",
    "ssl_ca_data": "ca_data",
    "ssl_check_hostname": "check_hostname",
    "ssl_ciphers": "ciphers",
}


def _tls(options: dict[str, Any]) -> RedisSSLContext:
    unknown = sorted(k for k in options if k.startswith("ssl_") and k not in _TLS_OPTIONS)
    if unknown:
        raise ValueError(f"unsupported TLS option(s) in the Redis URL: {', '.join(unknown)}")
    chosen = {_TLS_OPTIONS[k]: v for k, v in options.items() if k in _TLS_OPTIONS}
    chosen.setdefault("cert_reqs", "required")  # redis-py's default for rediss://
    return RedisSSLContext(**chosen)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=Exception)
        self.waiters: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> None:
        """Queue a command; everything queued in one turn of the event loop leaves in one write (requests
        that reach Redis together share a syscall and a segment)."""
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append(data)

    def _flush(self) -> None:
        data, self.pending = b"".join(self.pending), []
        if self.transport is not None and self.lost is None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            future, _ = self.waiters.popleft()
            if future.done():  # the caller gave up (cancelled); the reply is still consumed in order
                continue
            if isinstance(reply, Exception):
                future.set_exception(_server_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(self.lost or RedisConnectionError(f"Connection to Redis lost: {exc or 'closed'}"))

    def fail(self, exc: BaseException) -> None:
        self.lost = self.lost or exc
        while self.waiters:
            future, _ = self.waiters.popleft()
            if not future.done():
                future.set_exception(exc)

    def abort(self, exc: BaseException) -> None:
        self.lost = self.lost or exc
        if self.transport is not None:
            self.transport.abort()
        self.fail(exc)


class _PushProtocol(_Protocol):
    """A subscribed connection: a pushed ``message`` goes to ``on_message`` right in ``data_received`` (no task,
    so before any request that the same turn of the event loop reads); replies to commands go to waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.on_message: Callable[[bytes], None] | None = None
        self.on_lost: Callable[[], None] | None = None

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                if self.on_message is not None:
                    self.on_message(reply[2])
                continue
            if not self.waiters:
                continue
            future, _ = self.waiters.popleft()
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(_server_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()


class PipelinedRedis:
    """``await client.execute_command("EVALSHA", sha, 1, key, ...)`` over one shared connection."""

    _protocol_class: type[_Protocol] = _Protocol

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        options: dict[str, Any] = dict(parse_url(url))
        self.options = options
        # Checked now (a bad option is a configuration error); certificates are loaded at the first connect.
        self._tls = _tls(options) if url.startswith("rediss://") else None
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def execute_command(self, *args: Any) -> Any:
        # Encoded before a reply is awaited: a bad argument must not leave a waiter with no command behind
        # it, or every later reply on the connection would go to the wrong caller.
        data = _encode(args)
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.waiters.append((future, time.monotonic()))
        protocol.send(data)
        return await future

    async def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one write and return their replies in order; a command the server refused
        is its exception in the list (as redis-py's ``pipeline().execute(raise_on_error=False)``). A lost or
        silent connection raises."""
        if not commands:
            return []
        # Encoded first: a bad argument fails before anything is sent.
        return await self.execute_raw(b"".join(_encode(command) for command in commands), len(commands))

    async def execute_raw(self, data: bytes, count: int) -> list[Any]:
        """``execute_many`` for commands already encoded (``encode_command``): ``data`` holds exactly
        ``count`` whole commands."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        loop, now = asyncio.get_running_loop(), time.monotonic()
        if count == 1:  # the gate's usual call: one future, no list of them to build and walk
            future: asyncio.Future[Any] = loop.create_future()
            protocol.waiters.append((future, now))
            protocol.send(data)
            try:
                return [await future]  # cancelled: its reply is still read off the connection and dropped
            except ResponseError as exc:
                return [exc]
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(count)]
        protocol.waiters.extend((future, now) for future in futures)
        protocol.send(data)
        replies: list[Any] = []
        try:
            # Replies come in order, so once the last one is in, all are: one wake-up, not one per command.
            with contextlib.suppress(ResponseError):
                await futures[-1]
            for future in futures:
                failure = future.exception()
                if failure is not None and not isinstance(failure, ResponseError):
                    raise failure
                replies.append(failure if failure is not None else future.result())
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()  # its reply is still read off the connection, in order, and dropped
                elif not future.cancelled():
                    future.exception()  # retrieved: the first failure is the one raised
        return replies

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            loop = asyncio.get_running_loop()
            self._protocol = None
            protocol = None
            try:
                async with asyncio.timeout(self.timeout):
                    if "path" in self.options:
                        _, protocol = await loop.create_unix_connection(self._protocol_class, self.options["path"])
                    else:
                        _, protocol = await loop.create_connection(
                            self._protocol_class,
                            self.options.get("host", "localhost"),
                            self.options.get("port", 6379),
                            ssl=self._tls.get() if self._tls is not None else None,
                        )
                    await self._handshake(protocol)
            except BaseException as exc:
                if protocol is not None:  # half set up (e.g. AUTH refused): never reuse it
                    protocol.abort(RedisConnectionError("Redis connection set-up failed"))
                if isinstance(exc, OSError | TimeoutError):
                    raise RedisConnectionError(f"Cannot connect to Redis: {type(exc).__name__}") from exc
                raise
            self._protocol = protocol
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = loop.create_task(self._watch())
            return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        commands: list[tuple[Any, ...]] = []
        if self.options.get("password"):
            user = self.options.get("username")
            commands.append(("AUTH", user, self.options["password"]) if user else ("AUTH", self.options["password"]))
        if int(self.options.get("db", 0) or 0):
            commands.append(("SELECT", int(self.options["db"])))
        for command in commands:
            data = _encode(command)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            protocol.waiters.append((future, time.monotonic()))
            protocol.send(data)
            await future

    async def _watch(self) -> None:
        """Drop the connection when the oldest outstanding reply is overdue (Redis stalled or unreachable)."""
        while True:
            await asyncio.sleep(min(0.25, self.timeout / 4))
            protocol = self._protocol
            if protocol is None or protocol.lost is not None or not protocol.waiters:
                continue
            if time.monotonic() - protocol.waiters[0][1] > self.timeout:
                protocol.abort(RedisTimeoutError("Redis did not answer in time"))

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


class _PushClient(PipelinedRedis):
    _protocol_class = _PushProtocol


class Subscription:
    """One channel's messages, each handed to ``on_message`` synchronously as it is read, over a connection that
    is re-made when lost (every ``retry_s``). ``on_live(True)`` once subscribed, ``on_live(False)`` when the
    connection is lost: while it is down, messages published meanwhile are lost, which is what the caller
    must allow for (``app/server/lease.py`` grants no leases then)."""

    def __init__(
        self,
        url: str,
        channel: str,
        on_message: Callable[[bytes], None],
        on_live: Callable[[bool], None],
        *,
        retry_s: float = 1.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.on_message = on_message
        self.on_live = on_live
        self.retry_s = retry_s
        self.live = False
        self._task: asyncio.Task[None] | None = None
        self._client: _PushClient | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            client = self._client = _PushClient(self.url)
            lost = asyncio.Event()
            try:
                protocol = await client._connect()
                assert isinstance(protocol, _PushProtocol)
                protocol.on_message = self.on_message
                protocol.on_lost = lost.set
                await client.execute_command("SUBSCRIBE", self.channel)
                if protocol.lost is None:
                    self.live = True
                    self.on_live(True)
                    await lost.wait()
            except (RedisConnectionError, RedisTimeoutError, OSError, ResponseError):
                pass
            finally:
                if self.live:
                    self.live = False
                    self.on_live(False)
                await client.aclose()
            await asyncio.sleep(self.retry_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
