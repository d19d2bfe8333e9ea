"""The HTTP/1.1 protocol the API runs under uvicorn: uvicorn's httptools protocol, but a graceful shutdown
answers a request the client has already sent on an idle keep-alive connection instead of dropping it.

uvicorn's ``shutdown()`` closes a keep-alive connection at once when its last response is complete. The
client's next request may already sit unread in the socket then: uvicorn acts on SIGTERM on its next 0.1 s
tick, and a busy event loop has not called ``data_received`` yet. Closing drops that request (the client
reads a reset or an empty reply; a proxy retries only idempotent requests). Here an idle connection is
closed at once only when nothing of a new request has arrived; otherwise the loop reads the request, it is
served with ``Connection: close`` and the connection closes after the response. Listening stops as before.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import termios

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
