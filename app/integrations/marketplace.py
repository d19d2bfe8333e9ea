"""What both marketplace clients share: typed errors, retries with backoff, the limiter gate and metrics.

One ``Transport`` per client instance. Every attempt passes our own limiter first (so a retry is paced
like any other call), is counted in ``marketplace_calls`` under a fixed endpoint name, and ends in a
response the caller can decode or in one of the errors below. Tokens and keys live only in the request
headers: they are never logged and never put into an error message.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import msgspec
import structlog

from app.lib.ratelimit import Policy, RateLimiter
from app.observability.metrics import instruments

log = structlog.get_logger(__name__)

T = TypeVar("T")

_DETAIL_FIELDS = ("detail", "message", "errorText", "title", "errors")
_MAX_DETAIL = 300


class MarketplaceError(Exception):
    """A marketplace call failed; ``status`` is the HTTP status (None when no response was received)."""

    def __init__(self, message: str, *, marketplace: str, endpoint: str, status: int | None = None) -> None:
        super().__init__(message)
        self.marketplace = marketplace
        self.endpoint = endpoint
        self.status = status


class MarketplaceAuthError(MarketplaceError):
    """401/403: the credentials are invalid, expired, lack the category, or the token type is refused."""

    def __init__(self, message: str, *, detail: str, marketplace: str, endpoint: str, status: int) -> None:
        super().__init__(message, marketplace=marketplace, endpoint=endpoint, status=status)
        self.detail = detail


class MarketplaceRateLimited(MarketplaceError):
    """Do not call again for ``retry_after`` seconds: our limiter said so (``status`` None) or a 429 did."""

    def __init__(self, retry_after: float, *, marketplace: str, endpoint: str, status: int | None = None) -> None:
        source = "the marketplace answered 429" if status == 429 else "the outbound rate limit is spent"
        super().__init__(
            f"{marketplace} {endpoint}: {source}; retry in {retry_after:.1f} s",
            marketplace=marketplace,
            endpoint=endpoint,
            status=status,
        )
        self.retry_after = retry_after


class MarketplaceWaitExhausted(MarketplaceRateLimited):
    """Waiting out this limit would take the run past its total wait budget (``WaitBudget.cap``)."""


class MarketplaceUnavailable(MarketplaceError):
    """5xx, timeouts or connection errors that outlasted the client's own retries."""


class MarketplaceBadResponse(MarketplaceError):
    """A 2xx answer whose body could not be decoded into the expected shape."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempts for 5xx/timeouts/connection errors; waits of ``base·2^n`` capped at ``cap``, ±25 % jitter."""

    attempts: int = 3
    base: float = 0.5
    cap: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2 ** (attempt - 1)) * random.uniform(0.75, 1.25)


class WaitBudget:
    """How long one sync run may wait on marketplace limits: ``cap`` seconds in total (over every job of the
    run, ``spent`` so far), and at most ``step_max`` for one wait inside the current step.

    A 429 or a spent budget that the step may wait out is slept here and the same request sent again, so the
    step resumes where it was (a cursor page, a warehouse) instead of the sync starting over. A longer wait
    raises ``MarketplaceRateLimited`` for the caller to defer the step or the run; one past ``cap`` raises
    ``MarketplaceWaitExhausted``.
    """

    def __init__(self, cap: float, spent: float = 0.0, step_max: float = 0.0) -> None:
        self.cap = cap
        self.spent = spent
        self.step_max = step_max

    def allows(self, seconds: float) -> bool:
        return self.spent + seconds <= self.cap

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.spent += seconds


def error_detail(body: bytes) -> str:
    """The human part of any marketplace error body (WB problem+json, WB host shapes, Ozon rpcStatus)."""
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:_MAX_DETAIL].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        for name in _DETAIL_FIELDS:
            value = data.get(name)
            if value:
                return (value if isinstance(value, str) else msgspec.json.encode(value).decode())[:_MAX_DETAIL]
    return ""


def _auth_status(status: int, detail: str) -> bool:
    return status in (401, 403)


class BodySink(Protocol):
    """Where ``Transport.send`` streams a 2xx body to, part by part, instead of reading it whole."""

    def reset(self) -> None:
        """A new attempt starts: forget whatever an earlier one wrote."""

    def write(self, part: bytes) -> None: ...


class Transport:
    """Sends one logical call: limiter, retries with backoff, metrics, and status → typed error."""

    def __init__(
        self,
        *,
        marketplace: str,
        http: httpx.AsyncClient,
        headers: Mapping[str, str],
        limiter: RateLimiter | None,
        limiter_key: str,
        max_wait: float,
        retry: Retry,
        is_auth_error: Callable[[int, str], bool] | None = None,
    ) -> None:
        self.marketplace = marketplace
        self.is_auth_error = is_auth_error or _auth_status
        self.http = http
        self.headers = dict(headers)
        self.limiter = limiter
        self.limiter_key = limiter_key
        self.max_wait = max_wait
        self.retry = retry
        self._throttled = 0  # consecutive 429s, for a backoff hint when the server gives none
        self.calls = 0  # requests really sent to the marketplace (what a run's counts.calls reports)
        self.budget: WaitBudget | None = None  # set by a sync run: waits it may take inside a step

    async def send(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        policy: Policy,
        key: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        max_wait: float | None = None,
        cost_4xx: int = 1,
        sink: BodySink | None = None,
    ) -> httpx.Response:
        """A 2xx response (204 included), or raise; ``key`` overrides the limiter key (e.g. per host).

        With ``sink`` the body of a 2xx response is streamed into it part by part (``reset`` first, at every
        attempt) and the response comes back closed, its body read: a large body (a WB orders page, ~60 MB)
        need not be held whole at all (reading it whole holds it twice: its parts, then their join)."""
        limiter_key = key or self.limiter_key
        content = None if json is None else msgspec.json.encode(json)
        headers = self.headers if content is None else {**self.headers, "Content-Type": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            wait = self.max_wait if max_wait is None else max_wait
            if self.budget is not None:  # a run's step never sleeps in the limiter longer than it may wait
                wait = min(wait, max(self.max_wait, self.budget.step_max))
            try:
                await self._admit(endpoint, limiter_key, policy, wait)
            except MarketplaceRateLimited as exc:
                await self._wait_out(exc)  # raises unless the step may wait this long
                attempt -= 1
                continue
            response: httpx.Response | None = None
            self.calls += 1
            try:
                if sink is None:
                    response = await self.http.request(method, url, content=content, params=params, headers=headers)
                else:
                    request = self.http.build_request(method, url, content=content, params=params, headers=headers)
                    response = await self._streamed(request, sink)
                outcome = str(response.status_code)
            except httpx.TimeoutException:
                outcome = "timeout"
            except httpx.TransportError:
                outcome = "error"
            self._count(endpoint, outcome)
            if response is not None and response.status_code < 300:
                self._throttled = 0
                return response
            if response is not None and response.status_code < 500:
                error = await self._client_error(endpoint, response, limiter_key, policy, cost_4xx)
                if isinstance(error, MarketplaceRateLimited):
                    await self._wait_out(error)  # a 429 honoured inside the step: the same request again
                    attempt -= 1
                    continue
                raise error
            if attempt >= self.retry.attempts:
                raise MarketplaceUnavailable(
                    f"{self.marketplace} {endpoint}: {outcome} after {attempt} attempts",
                    marketplace=self.marketplace,
                    endpoint=endpoint,
                    status=None if response is None else response.status_code,
                )
            delay = self.retry.delay(attempt)
            log.info(
                "marketplace.retry",
                marketplace=self.marketplace,
                endpoint=endpoint,
                outcome=outcome,
                attempt=attempt,
                delay=round(delay, 3),
            )
            await asyncio.sleep(delay)

    async def _streamed(self, request: httpx.Request, sink: BodySink) -> httpx.Response:
        response = await self.http.send(request, stream=True)
        try:
            if response.status_code < 300:
                sink.reset()
                async for part in response.aiter_bytes():
                    sink.write(part)
            else:
                await response.aread()  # an error's body gives its detail
        finally:
            await response.aclose()
        return response

    async def _wait_out(self, exc: MarketplaceRateLimited) -> None:
        """Sleep ``exc.retry_after`` when the run's budget lets this step wait that long; else raise."""
        budget = self.budget
        if budget is None or exc.retry_after > budget.step_max:
            raise exc
        if not budget.allows(exc.retry_after):
            raise MarketplaceWaitExhausted(
                exc.retry_after, marketplace=exc.marketplace, endpoint=exc.endpoint, status=exc.status
            ) from exc
        log.info(
            "marketplace.wait",
            marketplace=self.marketplace,
            endpoint=exc.endpoint,
            status=exc.status,
            seconds=round(exc.retry_after, 3),
        )
        await budget.sleep(exc.retry_after)

    def decode(self, endpoint: str, response: httpx.Response, kind: type[T]) -> T:
        """The body as ``kind``; any decoding or shape problem becomes ``MarketplaceBadResponse``."""
        return self.decode_body(endpoint, response.status_code, response.content, kind)

    def decode_body(self, endpoint: str, status: int, body: bytes | bytearray | memoryview, kind: type[T]) -> T:
        """``decode`` for a body read apart from its response (``send``'s ``buffer``, one line of a page)."""
        try:
            return msgspec.json.decode(body, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise MarketplaceBadResponse(
                f"{self.marketplace} {endpoint}: unexpected response body ({exc})",
                marketplace=self.marketplace,
                endpoint=endpoint,
                status=status,
            ) from None

    async def _admit(self, endpoint: str, key: str, policy: Policy, max_wait: float) -> None:
        if self.limiter is None:
            return
        started = time.monotonic()
        decision = await self.limiter.acquire(key, policy, max_wait=max_wait)
        if self.budget is not None:  # a wait our limiter slept is a wait of the run, too
            self.budget.spent += time.monotonic() - started
        if not decision.allowed:
            raise MarketplaceRateLimited(decision.retry_after, marketplace=self.marketplace, endpoint=endpoint)

    async def _client_error(
        self, endpoint: str, response: httpx.Response, key: str, policy: Policy, cost_4xx: int
    ) -> MarketplaceError:
        status = response.status_code
        detail = error_detail(response.content)
        if status == 429:
            instruments().marketplace_429.add(1, {"marketplace": self.marketplace, "endpoint": endpoint})
            return MarketplaceRateLimited(
                self._retry_hint(response), marketplace=self.marketplace, endpoint=endpoint, status=429
            )
        if cost_4xx > 1 and self.limiter is not None:
            # the marketplace bills this error as several requests: keep our count in step with its bucket
            await self.limiter.charge(key, policy, cost_4xx - 1)
        message = f"{self.marketplace} {endpoint} answered {status}" + (f": {detail}" if detail else "")
        if self.is_auth_error(status, detail):
            return MarketplaceAuthError(
                message, detail=detail, marketplace=self.marketplace, endpoint=endpoint, status=status
            )
        return MarketplaceError(message, marketplace=self.marketplace, endpoint=endpoint, status=status)

    def _retry_hint(self, response: httpx.Response) -> float:
        """WB's ``X-Ratelimit-Retry``; without it (Ozon) an exponential backoff over consecutive 429s."""
        self._throttled += 1
        raw = response.headers.get("X-Ratelimit-Retry")
        if raw is not None:
            try:
                return max(0.0, float(raw))
            except ValueError:
                pass
        return min(60.0, 2.0 ** (self._throttled - 1)) * random.uniform(1.0, 1.5)

    def _count(self, endpoint: str, status: str) -> None:
        instruments().marketplace_calls.add(
            1, {"marketplace": self.marketplace, "endpoint": endpoint, "status": status}
        )
