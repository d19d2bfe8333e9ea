"""A small ASGI layer: an explicit route table, request reading and responses (no framework in the way,
so every answer — unknown URL and wrong method included — can be in Stripe's own shape)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

logger = logging.getLogger("app.sandbox.stripe")

MAX_BODY = 1024 * 1024
JSON = "application/json"
HTML = "text/html; charset=utf-8"

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str  # inside the mount, e.g. /v1/customers
    query: bytes
    body: bytes
    headers: dict[str, str]
    base_url: str  # scheme://host plus the mount prefix, e.g. http://127.0.0.1:8100/sandbox/stripe
    path_params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    media_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, _encoder.encode(value), JSON, dict(headers or {}))


def html_response(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(status, text.encode(), HTML)


def redirect(location: str) -> HttpResponse:
    return HttpResponse(303, b"", HTML, {"Location": location})


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str]


def route(method: str, template: str, handler: Handler) -> Route:
    regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$"
    return Route(method, template, handler, re.compile(regex))


class Router:
    """Dispatch by method and path; ``fallback(request, allowed_methods)`` answers what matches nothing and
    ``crashed(request)`` what raised (a bug in the stand-in; logged, never a bare connection drop)."""

    def __init__(
        self,
        routes: list[Route],
        fallback: Callable[[HttpRequest, list[str]], HttpResponse],
        crashed: Callable[[HttpRequest], HttpResponse],
    ) -> None:
        self.routes = routes
        self.fallback = fallback
        self.crashed = crashed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = await _read(scope, receive)
        if request is None:
            response = json_response(
                {"error": {"message": "Request body too large.", "type": "invalid_request_error"}}, 413
            )
        else:
            response = await self.dispatch(request)
        headers = [
            (b"content-type", response.media_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def dispatch(self, request: HttpRequest) -> HttpResponse:
        allowed: list[str] = []
        for r in self.routes:
            match = r.pattern.match(request.path)
            if match is None:
                continue
            if r.method != request.method:
                allowed.append(r.method)
                continue
            request.path_params = match.groupdict()
            try:
                return await r.handler(request)
            except Exception:
                logger.exception("sandbox.stripe.unexpected_error", extra={"path": request.path})
                return self.crashed(request)
        return self.fallback(request, allowed)


async def _read(scope: dict[str, Any], receive: Any) -> HttpRequest | None:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    path = scope["path"]
    raw_path = scope.get("raw_path")
    full = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope.get("root_path", "") + path
    # Mounts strip their prefix from `path` but not from `raw_path`: what is left over is where we live.
    inner = path.rstrip("/") or "/"
    outer = full.rstrip("/")
    prefix = outer[: len(outer) - len(inner)] if inner != "/" and outer.endswith(inner) else outer
    scheme = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
    host = headers.get("host", "127.0.0.1")
    return HttpRequest(
        method=scope["method"],
        path=inner,
        query=scope.get("query_string", b""),
        body=b"".join(chunks),
        headers=headers,
        base_url=f"{scheme}://{host}{prefix}",
    )
