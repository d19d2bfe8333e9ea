"""A real sandbox marketplace on a loopback port, for tests that sync over HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_sandbox() -> Iterator[str]:
    from app.sandbox import create_standalone_sandbox_app

    port = free_port()
    config = uvicorn.Config(
        create_standalone_sandbox_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sandbox-for-sync", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/sandbox"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
