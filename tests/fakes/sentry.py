"""A Sentry-compatible ingest endpoint over real HTTP (what Sentry and GlitchTip accept from SDKs).

``POST /api/<project>/envelope/`` with an ``X-Sentry-Auth`` header naming the DSN's public key, a body that
may be gzip- or brotli-less (we ask for none) compressed, made of newline-separated JSON: the envelope
header, then per item a header and a payload. Events are kept (parsed) with the raw bytes they came in, so
a test can assert on what left the process, secrets included.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.fakes import serve_asgi

PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
PROJECT = "42"


@dataclass(frozen=True)
class Envelope:
    raw: bytes  # as decompressed
    items: list[tuple[dict[str, Any], Any]]

    def events(self) -> list[dict[str, Any]]:
        return [payload for header, payload in self.items if header.get("type") == "event"]


class FakeSentry:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.base = ""

    @property
    def dsn(self) -> str:
        host = self.base.removeprefix("http://")
        return f"http://{PUBLIC_KEY}@{host}/{PROJECT}"

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeSentry]:
        with serve_asgi(self, "fake-sentry") as base:
            self.base = base
            yield self

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for env in self.envelopes for e in env.events()]

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(env.raw for env in self.envelopes)

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._arrived:
            self._arrived.wait_for(lambda: sum(len(e.events()) for e in self.envelopes) >= count, timeout)
        return self.events()

    @staticmethod
    def _parse(raw: bytes) -> list[tuple[dict[str, Any], Any]]:
        lines = raw.split(b"\n")
        items = []
        i = 1  # line 0: the envelope header
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            header = json.loads(lines[i])
            length = header.get("length")
            if length is not None:
                rest = b"\n".join(lines[i + 1 :])
                payload_raw, remainder = rest[:length], rest[length + 1 :]
                lines = [*lines[: i + 1], *remainder.split(b"\n")] if remainder else lines[: i + 1]
                i += 1
            else:
                payload_raw = lines[i + 1] if i + 1 < len(lines) else b""
                i += 2
            try:
                payload: Any = json.loads(payload_raw)
            except ValueError:
                payload = payload_raw
            items.append((header, payload))
        return items

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        ok = (
            scope["method"] == "POST"
            and scope["path"] == f"/api/{PROJECT}/envelope/"
            and f"sentry_key={PUBLIC_KEY}" in headers.get("x-sentry-auth", "")
        )
        if ok:
            encoding = headers.get("content-encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding:
                ok = False
        status = 200 if ok else 400
        with self._arrived:
            if ok:
                self.envelopes.append(Envelope(raw=body, items=self._parse(body)))
            else:
                self.refused += 1
            self._arrived.notify_all()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": b'{"id":"0"}'})
