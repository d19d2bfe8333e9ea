"""The API's HTTP protocol (app/server/http_protocol.py): a graceful shutdown (SIGTERM) answers a request the
client already sent on an idle keep-alive connection, and a response leaves in one write (end of this file).

Real uvicorn: a ``uvicorn.Server`` on a loopback port with the protocol class the API runs
(``app.cli.commands.cmd_api`` passes it), a raw client socket, and uvicorn's own ``Server.shutdown()`` — what
SIGTERM leads to. The race is made deterministic without timing: the client's next request is written and
seen in the server's socket (``select``) while this coroutine holds the event loop, and ``Server.shutdown()``
is awaited inline, so it asks every connection to shut down before the loop has read that request — as when
the loop was busy serving others when the signal came (issue 14 §6, the chaos test's 1 failure in 836).
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.server.http_protocol import ApiHttpProtocol, ApiServer, CoalescingTransport, unread_bytes


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers ``<METHOD> <path> <body>`` (so a test sees which request was answered)."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = f"{scope['method']} {scope['path']} ".encode() + body
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(payload))]})
    await send({"type": "http.response.body", "body": payload})


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    return head + body


class Conn:
    """A keep-alive client connection (a non-blocking socket read through the loop)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    async def _fill(self) -> bool:
        chunk = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        self.buffer += chunk
        return bool(chunk)

    async def response(self) -> tuple[dict[str, str], bytes]:
        """One response (status 200 expected); raises ``EOFError`` if the server closed before it came."""
        while b"\r\n\r\n" not in self.buffer:
            if not await self._fill():
                raise EOFError(self.buffer)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 200"), status
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        size = int(headers["content-length"])
        while len(self.buffer) < size:
            if not await self._fill():
                raise EOFError(self.buffer)
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return headers, body

    async def closed(self) -> bool:
        """The server closed the connection (EOF or reset) with nothing more sent."""
        try:
            return not await self._fill() and not self.buffer
        except ConnectionResetError:
            return not self.buffer


@asynccontextmanager
async def serve(
    protocol: type[HttpToolsProtocol], app: Any = echo, server_class: type[uvicorn.Server] = ApiServer
) -> AsyncIterator[uvicorn.Server]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=protocol, lifespan="off", log_config=None, access_log=False
    )
    server = server_class(config)
    config.load()
    server.lifespan = config.lifespan_class(config)  # what Server.serve() sets up before startup()
    await server.startup()
    try:
        yield server
    finally:
        if server.servers and server.servers[0].is_serving():
            server.force_exit = True
            await server.shutdown()


async def connect(server: uvicorn.Server) -> Conn:
    sock = socket.create_connection(server.servers[0].sockets[0].getsockname()[:2])
    sock.setblocking(False)
    return Conn(sock)


async def answered_once(server: uvicorn.Server) -> Conn:
    """A keep-alive connection that has had one request answered (idle now)."""
    conn = await connect(server)
    conn.sock.send(request("GET", "/first"))
    await conn.response()
    return conn


def server_side(server: uvicorn.Server) -> asyncio.Transport:
    (protocol,) = server.server_state.connections
    return protocol.transport  # type: ignore[attr-defined,no-any-return]


def wait_arrived(transport: asyncio.Transport) -> None:
    """Blocks (holding the loop, so nothing reads it) until the client's bytes are in the server's socket."""
    readable, _, _ = select.select([transport.get_extra_info("socket").fileno()], [], [], 10)
    assert readable, "the client's bytes did not reach the server's socket"
    assert unread_bytes(transport) > 0


async def shut_down(server: uvicorn.Server) -> None:
    # Awaited inline (no task): uvicorn calls every connection's shutdown() before its first await, so
    # before the loop could read anything. The bound only keeps a broken test from hanging.
    async with asyncio.timeout(30):
        await server.shutdown()


async def test_a_request_sent_before_the_shutdown_is_answered() -> None:
    async with serve(ApiHttpProtocol) as server:
        conn = await connect(server)
        conn.sock.send(request("GET", "/first"))
        headers, body = await conn.response()
        assert body == b"GET /first "
        assert "connection" not in headers  # keep-alive: the connection is idle now

        conn.sock.send(request("PUT", "/api/v1/alert-rules/default", b'{"units_below": 4}'))
        wait_arrived(server_side(server))
        await shut_down(server)

        headers, body = await conn.response()
        assert body == b'PUT /api/v1/alert-rules/default {"units_below": 4}'
        assert headers["connection"] == "close"
        assert await conn.closed()


async def test_uvicorns_own_protocol_drops_it() -> None:
    """Why the subclass exists (the test above fails this way without it). If uvicorn stops dropping the
    request, this fails: the subclass can then go (app/cli/commands.py, bench/api.py)."""
    async with serve(HttpToolsProtocol, server_class=uvicorn.Server) as server:
        conn = await answered_once(server)

        conn.sock.send(request("PUT", "/api/v1/alert-rules/default", b'{"units_below": 4}'))
        wait_arrived(server_side(server))
        await shut_down(server)

        with pytest.raises((EOFError, ConnectionResetError)):
            await conn.response()


async def test_a_request_half_read_at_the_shutdown_is_answered() -> None:
    """The loop has read the first part of the next request (its parser began a message) when the shutdown
    comes: the rest still arrives and is answered."""
    async with serve(ApiHttpProtocol) as server:
        conn = await answered_once(server)
        transport = server_side(server)

        whole = request("PUT", "/api/v1/alert-rules/default", b'{"units_below": 4}')
        conn.sock.send(whole[:20])
        wait_arrived(transport)
        while unread_bytes(transport):  # the loop reads it
            await asyncio.sleep(0)
        shutdown = asyncio.create_task(shut_down(server))
        await asyncio.sleep(0)  # shutdown() ran up to its first await
        assert not transport.is_closing()
        conn.sock.send(whole[20:])

        headers, body = await conn.response()
        assert body == b'PUT /api/v1/alert-rules/default {"units_below": 4}'
        assert headers["connection"] == "close"
        assert await conn.closed()
        await shutdown


async def test_an_idle_connection_is_closed_at_once() -> None:
    """Nothing sent: the shutdown closes the connection itself, without waiting (as uvicorn does)."""
    async with serve(ApiHttpProtocol) as server:
        conn = await answered_once(server)
        transport = server_side(server)

        shutdown = asyncio.create_task(shut_down(server))
        await asyncio.sleep(0)
        assert transport.is_closing()
        assert await conn.closed()
        await shutdown


async def test_a_request_stalled_half_way_is_dropped_after_the_drain() -> None:
    """A client that stops half-way through its request head does not hold the shutdown up."""

    class Quick(ApiHttpProtocol):
        drain_s = 0.05

    async with serve(Quick) as server:
        conn = await answered_once(server)
        transport = server_side(server)

        conn.sock.send(request("GET", "/second")[:10])
        wait_arrived(transport)
        await shut_down(server)  # returns: the connection was closed after the drain

        assert transport.is_closing()
        assert await conn.closed()


# ---- one write per response --------------------------------------------------------------------------------


class Recording(asyncio.Transport):
    """Stands in for the socket transport: records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 9) if name == "peername" else default


async def test_writes_in_one_turn_leave_together_and_a_lone_one_at_the_end_of_the_turn() -> None:
    real = Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HEAD\r\n\r\n")
    transport.write(memoryview(b"body"))
    assert real.writes == [b"HEAD\r\n\r\nbody"]  # at once: the second write sends both
    transport.write(b"chunk-1")
    assert real.writes == [b"HEAD\r\n\r\nbody"]  # held to the end of this turn
    await asyncio.sleep(0)
    assert real.writes == [b"HEAD\r\n\r\nbody", b"chunk-1"]
    transport.write(b"a")
    transport.write(b"b")
    transport.write(b"c")
    await asyncio.sleep(0)
    assert real.writes[2:] == [b"ab", b"c"]  # in order, nothing lost
    assert transport.get_extra_info("peername") == ("127.0.0.1", 9)  # the rest is the transport's own


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    real = Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing
    assert real.writes == [b"last words"]

    aborted = Recording()
    transport = CoalescingTransport(aborted, asyncio.get_running_loop())
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert aborted.writes == [] and aborted.closed


def count_writes(server: uvicorn.Server) -> list[bytes]:
    """What the server's connection writes to its socket transport (under the coalescing one)."""
    coalescing = server_side(server)
    assert isinstance(coalescing, CoalescingTransport)
    real = coalescing._transport
    seen: list[bytes] = []
    write = real.write

    def recording(data: Any) -> None:
        seen.append(bytes(data))
        write(data)

    real.write = recording  # type: ignore[method-assign]
    return seen


async def test_a_response_reaches_the_socket_in_one_write() -> None:
    async with serve(ApiHttpProtocol) as server:
        conn = await answered_once(server)
        writes = count_writes(server)
        for path in ("/second", "/third"):
            conn.sock.send(request("POST", path, b"x" * 3000))
            _, body = await conn.response()
            assert body == f"POST {path} ".encode() + b"x" * 3000
        assert len(writes) == 2, writes
        assert all(w.startswith(b"HTTP/1.1 200") and w.endswith(b"x" * 3000) for w in writes)


async def test_a_streamed_responses_head_is_not_held_for_its_body() -> None:
    """The head of a response whose body comes later (a stream, a long export) leaves in its own turn."""
    release = asyncio.Event()

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await release.wait()
        await send({"type": "http.response.body", "body": b"late"})

    async with serve(ApiHttpProtocol, stream) as server:
        conn = await connect(server)
        conn.sock.send(request("GET", "/export"))
        async with asyncio.timeout(10):
            while b"\r\n\r\n" not in conn.buffer:  # the head arrives while the body is still held back
                assert await conn._fill()
        assert not release.is_set()
        release.set()
        _, body = await conn.response()
        assert body == b"late"


# ---- connections waiting to be accepted --------------------------------------------------------------------


def connect_unaccepted(server: uvicorn.Server, payload: bytes) -> Conn:
    """A connection the kernel completes while this coroutine holds the loop (so nothing accepts it), and its
    request sent: it waits in the listener's queue, as when the signal comes before the loop got to it."""
    before = len(server.server_state.connections)
    conn = Conn(socket.create_connection(server.servers[0].sockets[0].getsockname()[:2]))
    conn.sock.sendall(payload)
    conn.sock.setblocking(False)
    assert len(server.server_state.connections) == before  # not accepted
    return conn


async def test_a_request_on_a_connection_not_yet_accepted_is_answered() -> None:
    async with serve(ApiHttpProtocol) as server:
        conn = connect_unaccepted(server, request("POST", "/api/v1/products/1/alert", b'{"units_below": 3}'))
        await shut_down(server)  # inline: the loop has not run since the client connected

        headers, body = await conn.response()
        assert body == b'POST /api/v1/products/1/alert {"units_below": 3}'
        assert headers["connection"] == "close"
        assert await conn.closed()


async def test_uvicorns_own_server_resets_it() -> None:
    """Why ``ApiServer`` exists: uvicorn's server closes its listener with the connection still queued."""
    async with serve(ApiHttpProtocol, server_class=uvicorn.Server) as server:
        conn = connect_unaccepted(server, request("POST", "/api/v1/products/1/alert", b'{"units_below": 3}'))
        await shut_down(server)

        with pytest.raises((EOFError, ConnectionResetError)):
            await conn.response()


async def test_a_connection_accepted_at_the_shutdown_with_nothing_sent_is_closed() -> None:
    async with serve(ApiHttpProtocol) as server:
        conn = connect_unaccepted(server, b"")
        await shut_down(server)
        assert await conn.closed()
