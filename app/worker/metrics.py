"""The worker's Prometheus listener: prometheus_client's WSGI app behind the same scrape rule as the API's
/metrics (the bearer token when one is configured, else loopback clients only), on a configurable address."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from app.lib.security import metrics_scrape_allowed

_NOT_FOUND = b"Not Found\n"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each (and a refused one must not fill the log)."""


def guarded(app: Callable[..., Iterable[bytes]], token: str) -> Callable[..., Iterable[bytes]]:
    """``app`` for callers the scrape rule admits; 404 for everyone else (as if nothing were there)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if metrics_scrape_allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR"), token):
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(_NOT_FOUND)))])
        return [_NOT_FOUND]

    return wsgi


def serve_worker_metrics(addr: str, port: int, token: str) -> tuple[WSGIServer, threading.Thread]:
    """Start the listener in a daemon thread; returns the server (``shutdown()`` stops it) and its thread."""

    class _Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET

    httpd = make_server(addr, port, guarded(make_wsgi_app(), token), _Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="worker-metrics", daemon=True)
    thread.start()
    return httpd, thread
