"""Ozon Seller API client: products, stock per product and per warehouse, FBS warehouses, FBO analytics,
and the order lines of FBO and FBS postings.

Every method is a JSON ``POST`` with ``Client-Id`` and ``Api-Key``. Ozon allows at most 50 requests per
second per Client-Id across all methods; one policy per Client-Id keeps every worker under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from app.integrations.marketplace import MarketplaceBadResponse, Retry, Transport
from app.integrations.ozon.schemas import (
    AnalyticsStock,
    AnalyticsStocksRequest,
    AnalyticsStocksResponse,
    FboPosting,
    FboPostingListResponse,
    FboStocksResponse,
    FboWarehouseStock,
    FbsPosting,
    FbsPostingListResponse,
    FbsStocksResponse,
    FbsWarehouseStock,
    PostingFilter,
    PostingListRequest,
    ProductInfo,
    ProductInfoRequest,
    ProductInfoResponse,
    ProductListItem,
    ProductListRequest,
    ProductListResponse,
    ProductStocks,
    StocksRequest,
    StocksResponse,
    Warehouse,
    WarehouseListRequest,
    WarehouseListResponse,
    WarehouseStocksRequest,
)
from app.lib.ratelimit import Policy, RateLimiter, Window

_P = TypeVar("_P", FbsStocksResponse, FboStocksResponse)
_T = TypeVar("_T")

MARKETPLACE = "ozon"
DEFAULT_BASE_URL = "https://api-seller.ozon.ru"

# Ozon does not say how it counts "50 per second". Bursts of at most 10 per 0.25 s and about 40 per
# second stay under 50 in *every* 1 s interval (10 + 40·1, module docstring of app/lib/ratelimit.py),
# so they satisfy a per-second counter, a sliding log and a 50/s token bucket alike, with ~1 s of jitter
# to spare against the bucket.
POLICY = Policy("ozon", (Window("burst", 10, 0.25), Window("second", 40, 1.0)))

MAX_PAGE = 1000
MAX_INFO_IDS = 1000
MAX_ANALYTICS_SKUS = 100
MAX_WAREHOUSES_PAGE = 200
MAX_FBO_OFFSET = 20_000  # Ozon refuses a larger offset on /v2/posting/fbo/list
MAX_POSTINGS_PERIOD = timedelta(days=365)  # /v3/posting/fbs/list refuses a period longer than a year


class OzonClient:
    """One seller's Client-Id and Api-Key; methods return decoded Structs or raise marketplace errors."""

    def __init__(
        self,
        client_id: str,
        api_key: str,
        *,
        base_url: str | None,
        http: httpx.AsyncClient,
        limiter: RateLimiter | None,
        limiter_key: str,
        max_wait: float = 2.0,
        limits_enabled: bool = True,
        retry: Retry | None = None,
    ) -> None:
        self._base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._transport = Transport(
            marketplace=MARKETPLACE,
            http=http,
            headers={"Client-Id": client_id, "Api-Key": api_key},
            limiter=limiter if limits_enabled else None,
            limiter_key=limiter_key,
            max_wait=max_wait,
            retry=retry or Retry(),
            is_auth_error=_is_auth_error,
        )

    @property
    def transport(self) -> Transport:
        """The client's transport: its call count and the run's wait budget (``WaitBudget``)."""
        return self._transport

    async def _post(self, endpoint: str, path: str, body: object, kind: type[_T]) -> _T:
        response = await self._transport.send(endpoint, "POST", self._base_url + path, policy=POLICY, json=body)
        return self._transport.decode(endpoint, response, kind)

    async def product_list(
        self, last_id: str = "", limit: int = MAX_PAGE
    ) -> AsyncIterator[tuple[list[ProductListItem], str]]:
        """Every product (all visibilities), a page at a time with the ``last_id`` to resume after it."""
        _check("limit", limit, MAX_PAGE)
        while True:
            page = await self._post(
                "product_list",
                "/v3/product/list",
                ProductListRequest(last_id=last_id, limit=limit),
                ProductListResponse,
            )
            items = page.result.items
            if items:
                yield items, page.result.last_id
            if len(items) < limit or not page.result.last_id:
                return
            if page.result.last_id == last_id:
                raise _stuck("product_list")
            last_id = page.result.last_id

    async def product_info(self, product_ids: Sequence[int]) -> list[ProductInfo]:
        """Name, offer id, SKUs and barcodes of the given products (asked 1000 at a time)."""
        ids = [str(i) for i in dict.fromkeys(product_ids)]
        out: list[ProductInfo] = []
        for start in range(0, len(ids), MAX_INFO_IDS):
            body = ProductInfoRequest(product_id=ids[start : start + MAX_INFO_IDS])
            out += (await self._post("product_info", "/v3/product/info/list", body, ProductInfoResponse)).items
        return out

    async def stocks(self, cursor: str = "", limit: int = MAX_PAGE) -> AsyncIterator[tuple[list[ProductStocks], str]]:
        """Stock per product and scheme (fbo/fbs/rfbs/fbp), a page at a time with the cursor after it."""
        _check("limit", limit, MAX_PAGE)
        while True:
            page = await self._post(
                "stocks", "/v4/product/info/stocks", StocksRequest(cursor=cursor, limit=limit), StocksResponse
            )
            if page.items:
                yield page.items, page.cursor
            if len(page.items) < limit or not page.cursor:
                return
            if page.cursor == cursor:
                raise _stuck("stocks")
            cursor = page.cursor

    async def fbs_stocks_by_warehouse(self, limit: int = MAX_PAGE) -> list[FbsWarehouseStock]:
        """Stock per SKU on each of the seller's own (FBS/rFBS) warehouses."""
        path = "/v2/product/info/stocks-by-warehouse/fbs"
        return await self._warehouse_stocks("fbs_stocks", path, FbsStocksResponse, limit)

    async def fbo_stocks_by_warehouse(self, limit: int = MAX_PAGE) -> list[FboWarehouseStock]:
        """Stock per SKU on each Ozon (FBO) warehouse; warehouse names come from analytics or Ozon's lists."""
        path = "/v1/product/info/stocks-by-warehouse/fbo"
        return await self._warehouse_stocks("fbo_stocks", path, FboStocksResponse, limit)

    async def _warehouse_stocks(self, endpoint: str, path: str, kind: type[_P], limit: int) -> list[Any]:
        """Both per-warehouse stock methods page the same way: send the cursor back while ``has_next``."""
        _check("limit", limit, MAX_PAGE)
        rows: list[Any] = []
        cursor = ""
        while True:
            page = await self._post(endpoint, path, WarehouseStocksRequest(cursor=cursor, limit=limit), kind)
            rows += page.products
            if not page.has_next or not page.products:
                return rows
            if page.cursor == cursor:
                raise _stuck(endpoint)
            cursor = page.cursor

    async def warehouses(self) -> list[Warehouse]:
        """The seller's FBS and rFBS warehouses."""
        out: list[Warehouse] = []
        cursor = ""
        while True:
            page = await self._post(
                "warehouses",
                "/v2/warehouse/list",
                WarehouseListRequest(cursor=cursor, limit=MAX_WAREHOUSES_PAGE),
                WarehouseListResponse,
            )
            out += page.warehouses
            if not page.has_next or not page.warehouses:
                return out
            if page.cursor == cursor:
                raise _stuck("warehouses")
            cursor = page.cursor

    async def analytics_stocks(self, skus: Sequence[int]) -> list[AnalyticsStock]:
        """FBO stock analytics (per warehouse and cluster, with days of cover), 100 SKUs per call."""
        wanted = [str(s) for s in dict.fromkeys(skus)]
        out: list[AnalyticsStock] = []
        for start in range(0, len(wanted), MAX_ANALYTICS_SKUS):
            body = AnalyticsStocksRequest(skus=wanted[start : start + MAX_ANALYTICS_SKUS])
            out += (await self._post("analytics_stocks", "/v1/analytics/stocks", body, AnalyticsStocksResponse)).items
        return out

    async def fbo_postings(
        self,
        since: datetime,
        to: datetime,
        *,
        status: str = "",
        limit: int = MAX_PAGE,
        max_offset: int = MAX_FBO_OFFSET,
    ) -> AsyncIterator[list[FboPosting]]:
        """FBO postings created in [since, to], oldest first, each exactly once.

        Pages by ``offset``; before the offset would pass Ozon's 20 000 cap the window restarts at the
        newest ``created_at`` seen (postings at that very instant already yielded are skipped).
        """
        _check("limit", limit, MAX_PAGE)
        _rfc3339(since), _rfc3339(to)  # both must be timezone-aware
        start, offset = since, 0
        seen_at_start: set[str] = set()
        while True:
            body = PostingListRequest(PostingFilter(_rfc3339(start), _rfc3339(to), status), limit, offset)
            page = (await self._post("fbo_postings", "/v2/posting/fbo/list", body, FboPostingListResponse)).result
            fresh = [p for p in page if p.posting_number not in seen_at_start]
            if fresh:
                yield fresh
            if len(page) < limit:
                return
            if offset + 2 * limit <= max_offset:
                offset += limit
                continue
            newest = max((_instant(p.created_at) for p in page if p.created_at), default=None)
            if newest is None or newest <= start:
                raise _stuck("fbo_postings")
            seen_at_start = {p.posting_number for p in page if _instant(p.created_at) == newest}
            start, offset = newest, 0

    async def fbs_postings(
        self, since: datetime, to: datetime, *, status: str = "", limit: int = MAX_PAGE
    ) -> AsyncIterator[list[FbsPosting]]:
        """FBS postings that went into processing in [since, to], oldest first (windows of ≤ 1 year)."""
        _check("limit", limit, MAX_PAGE)
        _rfc3339(since), _rfc3339(to)  # both must be timezone-aware
        start = since
        while start <= to:
            end = min(to, start + MAX_POSTINGS_PERIOD)
            offset = 0
            while True:
                body = PostingListRequest(PostingFilter(_rfc3339(start), _rfc3339(end), status), limit, offset)
                result = (await self._post("fbs_postings", "/v3/posting/fbs/list", body, FbsPostingListResponse)).result
                if result.postings:
                    yield result.postings
                if not result.has_next or not result.postings:
                    break
                offset += limit
            start = end + timedelta(microseconds=1)


def _rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("posting filters need timezone-aware datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(value: str | None) -> datetime:
    return datetime.fromisoformat((value or "").replace("Z", "+00:00"))


def _is_auth_error(status: int, detail: str) -> bool:
    """Ozon answers a wrong key with 404 (gRPC NOT_FOUND) and a bad Client-Id with 400, naming the header."""
    text = detail.lower()
    return status in (401, 403) or (status in (400, 404) and ("api-key" in text or "client-id" in text))


def _check(name: str, value: int, maximum: int) -> None:
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must be 1..{maximum}")


def _stuck(endpoint: str) -> MarketplaceBadResponse:
    """A full page whose cursor did not move: continuing would ask the same page forever."""
    return MarketplaceBadResponse(
        f"ozon {endpoint}: the cursor did not advance", marketplace=MARKETPLACE, endpoint=endpoint, status=200
    )
