"""The HTTP/1.1 protocol the API runs under uvicorn (``ApiHttpProtocol``): uvicorn's httptools protocol, but a
graceful shutdown answers a request the client has already sent on an idle keep-alive connection instead of
dropping it, and each response leaves in one write to the socket.

**Shutdown** (``DrainingHttpToolsProtocol``).

uvicorn's ``shutdown()`` closes a keep-alive connection at once when its last response is complete. The
client's next request may already sit unread in the socket then: uvicorn acts on SIGTERM on its next 0.1 s
tick, and a busy event loop has not called ``data_received`` yet. Closing drops that request (the client
reads a reset or an empty reply; a proxy retries only idempotent requests). Here an idle connection is
closed at once only when nothing of a new request has arrived; otherwise the loop reads the request, it is
served with ``Connection: close`` and the connection closes after the response. Listening stops as before.

**One write per response** (``CoalescingTransport``). uvicorn writes a response's head and its body with two
``transport.write`` calls; a socket with nothing queued sends each at once, so every response took two trips
through the kernel's TCP stack (on loopback, or to a proxy on the same host, a ``send`` also runs the
receiving side's path and wakes its reader). In ``bench/api.py``'s profile of an API worker serving the cached
list the two writes were ~47 % of the samples (the head's 39.5 %, the body's 7.8 %). The head is now held until
the body's first write or the end of the event loop's current turn, whichever comes first — a streamed
response's head, or one with no body (``HEAD``, 204, 304), still leaves in the same turn — and both leave in
one ``send``.

**Connections waiting to be accepted** (``ApiServer``). uvicorn stops listening at the signal; a connection the
kernel had already completed but the event loop had not accepted yet — its request possibly sent — was reset
with the listener. ``ApiServer`` accepts what is waiting first, so such a request meets the draining shutdown
above like any other (``stock-tracker api`` runs it with one worker process, compose's default; with
``STOCK_TRACKER_API_WORKERS`` > 1 uvicorn's own supervisor builds the servers and this step is skipped).
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import socket
import termios
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes waiting in the connection's socket that the event loop has not read yet (0 if unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    except (OSError, ValueError):  # closed meanwhile
        return 0
    return count[0]


class CoalescingTransport:
    """A transport whose writes in one turn of the event loop leave together: a write is held, the next one in
    the same turn joins it, and a lone write is flushed at the end of the turn (``call_soon``). Everything
    else is the socket transport's own (``__getattr__``)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._loop = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()  # what was written goes out before the FIN, as with the socket transport's own close
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class DrainingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose ``shutdown()`` lets a request already sent on an idle connection in."""

    # A request that began arriving before the shutdown and is not complete this long after it (a client
    # stalled half-way through its request head) is dropped, as uvicorn would have dropped it at once.
    drain_s: float = 1.0

    _draining = False
    _request_begun = False  # part of a request head is parsed, its request-response cycle not created yet

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._request_begun = False
        if self._draining and self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # answered with `connection: close`, closed after the response

    def shutdown(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if not idle:
            super().shutdown()  # the response in progress goes out with `connection: close`
            return
        if not self._request_begun and not unread_bytes(self.transport):
            super().shutdown()  # nothing sent: closed at once, as uvicorn does
            return
        self._draining = True
        self.loop.call_later(self.drain_s, self._drain_expired)

    def _drain_expired(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # the request arrived and is being served; its response closes the connection
        if unread_bytes(self.transport):
            self.loop.call_later(self.drain_s, self._drain_expired)  # more of it arrived, not read yet
            return
        self.transport.close()


class ApiHttpProtocol(DrainingHttpToolsProtocol):
    """What ``stock-tracker api`` runs: the draining shutdown, on a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


class ApiServer(uvicorn.Server):
    """``uvicorn.Server`` whose shutdown first accepts the connections waiting in its listeners' queues."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.admit_waiting()
        await super().shutdown(sockets)

    async def admit_waiting(self) -> None:
        """Accept every connection the kernel holds for this server's listeners and hand it to the protocol
        (as the loop would have)."""
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
            )

        for server in getattr(self, "servers", []):
            for listener in server.sockets:
                # A second descriptor of the same listening socket (the server keeps its own open).
                with socket.socket(fileno=os.dup(listener.fileno())) as sock:
                    sock.setblocking(False)
                    while True:
                        try:
                            conn, _ = sock.accept()
                        except OSError:  # none left (BlockingIOError), or the listener is gone: done
                            break
                        conn.setblocking(False)
                        try:
                            await loop.connect_accepted_socket(protocol, conn)
                        except OSError:  # the client is gone already
                            conn.close()
