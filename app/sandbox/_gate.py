"""What every marketplace request goes through: auth, token category, rate limit, faults, then the method.

The order mirrors the real gateways: an unknown token or a token without the host's category is refused
before the limiter sees it; a refused (429) request does not reach the method; the limiter is per
seller and per method group, and its state lives in token buckets driven by the app clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from litestar import Request, Response

from app.sandbox._auth import WbAuthError, explain_unknown_token, raw_token, same_secret
from app.sandbox._ratelimit import Limit
from app.sandbox._replies import (
    OZON_INVALID_KEY,
    OZON_RATE_LIMITED,
    Reply,
    WbFamily,
    ozon_error,
    ozon_fault,
    wb_base_forbidden,
    wb_fault,
    wb_too_many,
    wb_unauthorized,
)
from app.sandbox._seller import Sandbox, Seller

Method = Callable[[Seller, bytes, Request], Reply]

OZON_LIMIT = Limit(1.0, 50, 50)


@dataclass(frozen=True, slots=True)
class WbEndpoint:
    key: str  # stats key, e.g. "POST /wb/content/v2/get/cards/list"
    family: WbFamily
    category: int | None  # token category bit the host requires; None = any valid token
    bucket: str
    limit: Limit
    base_limit: Limit | None  # None: Base tokens are refused (403)
    cost_4xx: int = 1


def to_response(reply: Reply) -> Response[bytes]:
    return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)


def _malform(seller: Seller, reply: Reply) -> None:
    if reply.status == 200 and reply.body and seller.fault_rng.random() < seller.faults.malformed_rate:
        reply.body = reply.body[: max(1, len(reply.body) // 2)]


async def wb_gate(sandbox: Sandbox, request: Request, endpoint: WbEndpoint, method: Method) -> Response[bytes]:
    try:
        token = raw_token(request.headers.get("authorization"))
    except WbAuthError as exc:
        return to_response(wb_unauthorized(endpoint.family, str(exc)))
    seller_id = sandbox.wb_tokens.get(token)
    seller = sandbox.sellers.get(seller_id) if seller_id else None
    if seller is None or seller.wb_token is None:
        return to_response(wb_unauthorized(endpoint.family, explain_unknown_token(sandbox.secret, token)))
    info = seller.wb_token
    if info.expires_at <= seller.now:
        return to_response(wb_unauthorized(endpoint.family, "token problem; token is expired"))
    seller.stats.requests[endpoint.key] += 1
    if endpoint.category is not None and not info.allows(endpoint.category):
        return to_response(wb_unauthorized(endpoint.family, "token scope not allowed"))
    base = info.token_type == "base"
    if base and endpoint.base_limit is None:
        return to_response(wb_base_forbidden(endpoint.family))
    limit = endpoint.base_limit if base and endpoint.base_limit is not None else endpoint.limit

    bucket = None
    now = sandbox.clock()
    if sandbox.rate_limits and seller.faults.rate_limits == "real":
        bucket = seller.bucket(f"{endpoint.bucket}:{'base' if base else 'full'}", limit, now)
        if not bucket.try_take(now):
            seller.stats.rate_limited[endpoint.key] += 1
            reply = wb_too_many(endpoint.family, seller.sid, bucket.retry_after(), bucket.reset_after(), limit.burst)
            return to_response(reply)

    faults = seller.faults
    if delay := seller.latency_s():
        await asyncio.sleep(delay)
    body = await request.body()
    if seller.fault_due(endpoint.key):
        seller.stats.faults[endpoint.key] += 1
        if faults.status == 429:
            reply = wb_too_many(endpoint.family, seller.sid, faults.retry_after, faults.retry_after, limit.burst)
        else:
            reply = wb_fault(endpoint.family, faults.status)
    else:
        reply = method(seller, body, request)
        _malform(seller, reply)

    if bucket is not None:
        if 400 <= reply.status < 500 and endpoint.cost_4xx > 1:
            bucket.charge(sandbox.clock(), endpoint.cost_4xx - 1)
        if reply.status != 429:
            reply.headers = {**(reply.headers or {}), "X-Ratelimit-Remaining": str(bucket.remaining())}
    return to_response(reply)


async def ozon_gate(sandbox: Sandbox, request: Request, key: str, method: Method) -> Response[bytes]:
    client_id = request.headers.get("client-id", "").strip()
    api_key = request.headers.get("api-key", "").strip()
    # Statuses as observed on the live API: a wrong key is a 404 with gRPC code 5, not a 401/403.
    if not client_id or not api_key:
        return to_response(ozon_error(401, "Client-Id and Api-Key headers are required", 16))
    if not client_id.isdigit() or int(client_id) <= 0:
        return to_response(ozon_error(400, "Client-Id header value should be positive integer", 3))
    seller_id = sandbox.ozon_clients.get(client_id)
    seller = sandbox.sellers.get(seller_id) if seller_id else None
    if seller is None or not same_secret(api_key, seller.api_key):
        return to_response(ozon_error(404, OZON_INVALID_KEY, 5))
    seller.stats.requests[key] += 1

    now = sandbox.clock()
    if sandbox.rate_limits and seller.faults.rate_limits == "real":
        bucket = seller.bucket("ozon", OZON_LIMIT, now)
        if not bucket.try_take(now):
            seller.stats.rate_limited[key] += 1
            return to_response(ozon_error(429, OZON_RATE_LIMITED, 8))

    faults = seller.faults
    if delay := seller.latency_s():
        await asyncio.sleep(delay)
    body = await request.body()
    if seller.fault_due(key):
        seller.stats.faults[key] += 1
        return to_response(ozon_fault(faults.status))
    reply = method(seller, body, request)
    _malform(seller, reply)
    return to_response(reply)
