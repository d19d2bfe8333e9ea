"""A webhook receiver over real HTTP: records every request and answers scripted statuses per path.

Raw ASGI (no framework) so it stays cheap enough to receive a benchmark's thousands of deliveries. Run it
in a thread (``Receiver.serve()``) for tests, or as a process for benchmarks:
``python -m tests.fakes.receiver --port 9100`` (``GET /_stats`` returns what arrived, as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.fakes import serve_asgi


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0
    body: bytes = b'{"ok":true}'
    location: str | None = None


class Receiver:
    def __init__(self, *, keep_bodies: bool = True) -> None:
        self.requests: list[Received] = []
        self.keep_bodies = keep_bodies
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.base = ""

    # --- test side -----------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def script(self, path: str, *replies: int | Reply) -> None:
        """Answer the next requests to ``path`` with these statuses (then 200 again)."""
        with self._lock:
            self._scripts[path].extend(r if isinstance(r, Reply) else Reply(status=r) for r in replies)

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        return self.at(path)

    @contextlib.contextmanager
    def serve(self) -> Iterator[Receiver]:
        with serve_asgi(self, "webhook-receiver") as base:
            self.base = base
            yield self

    # --- server side ---------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        if scope["method"] == "GET" and path == "/_stats":
            await self._stats(send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.requests.append(Received(path, headers, body if self.keep_bodies else b"", time.time()))
            queue = self._scripts.get(path)
            reply = queue.popleft() if queue else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        out_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply.body)).encode())]
        if reply.location:
            out_headers.append((b"location", reply.location.encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _stats(self, send: Any) -> None:
        with self._lock:
            items = [[r.path, r.headers.get("webhook-id", ""), r.at] for r in self.requests]
        body = json.dumps({"count": len(items), "items": items}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="a webhook receiver that records arrivals (GET /_stats)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        Receiver(keep_bodies=False),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        backlog=4096,
        limit_concurrency=None,
    )


if __name__ == "__main__":
    main()
