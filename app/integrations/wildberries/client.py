"""Wildberries seller API client: catalogue, stock (FBW and FBS), seller warehouses, orders, ping.

``base_url=None`` talks to the real hosts (one per token category); a base URL sends every host's paths
there instead (the sandbox serves them all under ``<base>/sandbox/wb``). Each call first passes our
limiter for (connection, WB bucket): a short wait sleeps, a longer one raises ``MarketplaceRateLimited``
so the job can be rescheduled instead of holding a worker slot.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import msgspec

from app.integrations.marketplace import MarketplaceBadResponse, Retry, Transport
from app.integrations.wildberries import limits
from app.integrations.wildberries.schemas import (
    Card,
    CardsCursor,
    CardsListRequest,
    CardsListResponse,
    CardsSettings,
    Cursor,
    OrderLine,
    Ping,
    SellerWarehouse,
    StockAmount,
    StockRow,
    StocksReportRequest,
    StocksReportResponse,
    StocksRequest,
    StocksResponse,
)
from app.integrations.wildberries.token import TokenInfo, parse_token
from app.lib.ratelimit import Policy, RateLimiter

MARKETPLACE = "wildberries"
MSK = timezone(timedelta(hours=3))

HOSTS: dict[str, str] = {
    "content": "https://content-api.wildberries.ru",
    "analytics": "https://seller-analytics-api.wildberries.ru",
    "prices": "https://discounts-prices-api.wildberries.ru",
    "marketplace": "https://marketplace-api.wildberries.ru",
    "statistics": "https://statistics-api.wildberries.ru",
    "promotion": "https://advert-api.wildberries.ru",
    "feedbacks": "https://feedbacks-api.wildberries.ru",
    "supplies": "https://supplies-api.wildberries.ru",
    "buyers_chat": "https://buyer-chat-api.wildberries.ru",
    "returns": "https://returns-api.wildberries.ru",
    "documents": "https://documents-api.wildberries.ru",
    "finance": "https://finance-api.wildberries.ru",
    "users": "https://user-management-api.wildberries.ru",
    "common": "https://common-api.wildberries.ru",
}

MAX_CARDS_PAGE = 100
MAX_REPORT_ROWS = 250_000
MAX_CHRT_IDS = 1000


def msk_text(moment: datetime) -> str:
    """``2026-05-02T11:13:35``: Moscow time without an offset (naive datetimes are taken as Moscow time)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(MSK).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


# One flat JSON object (an order line has no nested ones) after the separators before it; possessive, so a
# line cut at the end of what has arrived fails at once instead of backtracking.
_LINE = re.compile(rb'[\s,]*+(\{(?:[^"{}]++|"(?:[^"\\]++|\\.)*+")*+\})', re.DOTALL)


class _NotAnArrayOfLines(Exception):
    pass


class _PageBody:
    """An orders page's body as it streams in; read back one line (its JSON) at a time.

    A small page (up to ``plain_limit`` bytes: a seller of a few thousand orders a month) is kept as it came
    and split by msgspec in one call. A larger one (a large seller's page is up to 80 000 lines, ~60 MB) is
    kept zlib-compressed from the moment it passes the limit, ~10× smaller, and split as it is decompressed:
    what is held is then the compressed page, not the page. (Compressing every page cost a fleet of small
    sellers ~12 % more worker CPU for memory it did not need; ``bench/fleet.py``.)"""

    PLAIN_LIMIT = 6 << 20

    def __init__(self, plain_limit: int = PLAIN_LIMIT) -> None:
        self.plain_limit = plain_limit
        self.reset()

    def reset(self) -> None:
        self._zip: Any = None  # a zlib compressor once the page passed ``plain_limit``
        self._plain = bytearray()  # the page as it came, until then (one buffer: no join to copy it again)
        self._parts: list[bytes] = []  # the compressed page, after
        self._flushed = False

    def write(self, part: bytes) -> None:
        if self._zip is None:
            self._plain += part
            if len(self._plain) > self.plain_limit:  # from here on, held compressed
                self._zip = zlib.compressobj(1)
                self._parts.append(self._zip.compress(self._plain))
                self._plain = bytearray()
        elif out := self._zip.compress(part):
            self._parts.append(out)

    def lines(self) -> Iterator[bytes]:
        """Each element of the JSON array, as bytes, in order; anything else in the body fails the read.

        The splitter of a compressed page knows flat objects only (an order line has no nested one today).
        Should WB nest one, the page is not refused: it is decoded whole by msgspec (the body held once,
        uncompressed, for that page) and the elements not yet given are given from there."""
        if self._zip is None:
            yield from self._elements(self._plain, 0)
            return
        if not self._flushed:
            self._parts.append(self._zip.flush())
            self._flushed = True
        given = 0
        try:
            for line in self._split():
                given += 1
                yield line
        except _NotAnArrayOfLines:
            unzip = zlib.decompressobj()
            yield from self._elements(b"".join(unzip.decompress(part) for part in self._parts), given)

    @staticmethod
    def _elements(body: bytes | bytearray, skip: int) -> Iterator[bytes]:
        try:
            elements = msgspec.json.decode(body, type=list[msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _NotAnArrayOfLines("not a JSON array") from None
        del body
        for element in elements[skip:]:
            yield bytes(element)

    def _split(self) -> Iterator[bytes]:
        unzip = zlib.decompressobj()
        rest, opened = b"", False
        for part in self._parts:
            rest += unzip.decompress(part)
            if not opened:
                rest = rest.lstrip()
                if not rest:
                    continue
                if rest[:1] != b"[":
                    raise _NotAnArrayOfLines("not a JSON array")
                rest, opened = rest[1:], True
            position = 0
            while found := _LINE.match(rest, position):
                yield found.group(1)
                position = found.end()
            rest = rest[position:]
        if not opened or rest.strip() != b"]":
            raise _NotAnArrayOfLines("not an array of flat objects")


@dataclass(slots=True)
class _PageTally:
    last: str  # the last line's change date: where the next page starts
    fresh: int = 0  # lines whose srid no earlier page had


class WildberriesClient:
    """One seller token; methods return decoded Structs or raise ``app.integrations.marketplace`` errors."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None,
        http: httpx.AsyncClient,
        limiter: RateLimiter | None,
        limiter_key: str,
        max_wait: float = 2.0,
        limits_enabled: bool = True,
        retry: Retry | None = None,
        page_max_wait: float = 60.0,
    ) -> None:
        self.token_info: TokenInfo = parse_token(token)
        self._base_url = base_url.rstrip("/") if base_url else None
        self._limiter_key = limiter_key
        # a report that spans pages is only useful whole: later pages may wait out the 20 s bucket
        self._page_max_wait = max(page_max_wait, max_wait)
        self._transport = Transport(
            marketplace=MARKETPLACE,
            http=http,
            headers={"Authorization": token},
            limiter=limiter if limits_enabled else None,
            limiter_key=limiter_key,
            max_wait=max_wait,
            retry=retry or Retry(),
        )
        base = self.token_info.type == "base"
        self._warehouses_policy = limits.BASE_WAREHOUSES if base else limits.WAREHOUSES
        self._fbs_policy = limits.BASE_FBS_STOCKS if base else limits.FBS_STOCKS
        self._orders_policy = limits.BASE_ORDERS if base else limits.ORDERS

    @property
    def transport(self) -> Transport:
        """The client's transport: its call count and the run's wait budget (``WaitBudget``)."""
        return self._transport

    def _url(self, category: str, path: str) -> str:
        return (self._base_url or HOSTS[category]) + path

    async def ping(self, category: str = "content") -> Ping:
        """``GET /ping`` on the category's host: 401 (``MarketplaceAuthError``) if the token does not fit it."""
        if category not in HOSTS:
            raise ValueError(f"unknown WB category {category!r}")
        # WB limits /ping per host; in front of the sandbox every category is one host, so one bucket
        host_key = f"{self._limiter_key}:{category if self._base_url is None else 'base'}"
        response = await self._transport.send(
            "ping", "GET", self._url(category, "/ping"), policy=limits.PING, key=host_key
        )
        return self._transport.decode("ping", response, Ping)

    async def iter_cards(
        self, after: Cursor | None = None, limit: int = MAX_CARDS_PAGE
    ) -> AsyncIterator[tuple[list[Card], Cursor]]:
        """Cards oldest change first, a page at a time with the cursor to resume after it."""
        if not 1 <= limit <= MAX_CARDS_PAGE:
            raise ValueError(f"limit must be 1..{MAX_CARDS_PAGE}")
        position = CardsCursor(limit=limit)
        if after is not None:
            position = CardsCursor(limit=limit, updatedAt=after.updatedAt, nmID=after.nmID)
        while True:
            body = CardsListRequest(settings=CardsSettings(cursor=position))
            response = await self._transport.send(
                "cards_list", "POST", self._url("content", "/content/v2/get/cards/list"), policy=limits.CARDS, json=body
            )
            page = self._transport.decode("cards_list", response, CardsListResponse)
            if page.cards:
                yield page.cards, page.cursor
            if page.cursor.total < limit or not page.cards:
                return
            following = CardsCursor(limit=limit, updatedAt=page.cursor.updatedAt, nmID=page.cursor.nmID)
            if following == position:  # a full page that does not move the cursor would loop forever
                raise MarketplaceBadResponse(
                    "wildberries cards_list: the cursor did not advance",
                    marketplace=MARKETPLACE,
                    endpoint="cards_list",
                    status=response.status_code,
                )
            position = following

    async def wb_warehouse_stock(self, limit: int = MAX_REPORT_ROWS) -> list[StockRow]:
        """FBW stock: one row per size per WB warehouse (currently aggregated as ``-999999`` "Склад WB")."""
        return await self._stocks_report(
            "stocks_wb", "/api/analytics/v1/stocks-report/wb-warehouses", limits.STOCKS_REPORT_WB, limit
        )

    async def seller_warehouse_stock(self, limit: int = MAX_REPORT_ROWS) -> list[StockRow]:
        """FBS stock from the analytics report: one row per size per seller warehouse (no in-way fields)."""
        return await self._stocks_report(
            "stocks_seller", "/api/analytics/v1/stocks-report/seller-warehouses", limits.STOCKS_REPORT_SELLER, limit
        )

    async def _stocks_report(self, endpoint: str, path: str, policy: Policy, limit: int) -> list[StockRow]:
        if not 1 <= limit <= MAX_REPORT_ROWS:
            raise ValueError(f"limit must be 1..{MAX_REPORT_ROWS}")
        rows: list[StockRow] = []
        while True:
            response = await self._transport.send(
                endpoint,
                "POST",
                self._url("analytics", path),
                policy=policy,
                json=StocksReportRequest(limit=limit, offset=len(rows)),
                max_wait=self._page_max_wait if rows else None,
            )
            if response.status_code == 204:  # "no data"
                return rows
            items = self._transport.decode(endpoint, response, StocksReportResponse).data.items
            rows.extend(items)
            if len(items) < limit:
                return rows

    async def seller_warehouses(self) -> list[SellerWarehouse]:
        """The seller's own warehouses (FBS/DBS); their ids key ``fbs_stocks``."""
        response = await self._transport.send(
            "warehouses",
            "GET",
            self._url("marketplace", "/api/v3/warehouses"),
            policy=self._warehouses_policy,
            cost_4xx=limits.MARKETPLACE_4XX_COST,
        )
        return self._transport.decode("warehouses", response, list[SellerWarehouse])

    async def fbs_stocks(self, warehouse_id: int, chrt_ids: Sequence[int]) -> list[StockAmount]:
        """Stock of the given sizes on one seller warehouse, asked in chunks of at most 1000 sizes."""
        unique = list(dict.fromkeys(chrt_ids))
        url = self._url("marketplace", f"/api/v3/stocks/{int(warehouse_id)}")
        out: list[StockAmount] = []
        for start in range(0, len(unique), MAX_CHRT_IDS):
            response = await self._transport.send(
                "fbs_stocks",
                "POST",
                url,
                policy=self._fbs_policy,
                json=StocksRequest(chrtIds=unique[start : start + MAX_CHRT_IDS]),
                cost_4xx=limits.MARKETPLACE_4XX_COST,
            )
            out.extend(self._transport.decode("fbs_stocks", response, StocksResponse).stocks)
        return out

    async def orders(self, date_from: datetime, flag: int = 0) -> list[OrderLine]:
        """Order lines changed since ``date_from`` (flag 0, paged) or placed on that Moscow day (flag 1).

        Paging: the next ``dateFrom`` is the last line's ``lastChangeDate``; WB answers lines changed at or
        after it, so the boundary lines come twice and are merged by ``srid`` (a later copy wins). Stops on
        an empty page, when ``lastChangeDate`` no longer moves, or when a page brings no line not yet seen
        (so changes arriving while we page cannot keep us asking a 1-per-minute method).
        """
        lines: dict[str, OrderLine] = {}
        async for page in self.order_page_lines(date_from, flag):
            for line, _ in page:
                lines[line.srid] = line
        return list(lines.values())

    async def order_page_lines(
        self, date_from: datetime, flag: int = 0
    ) -> AsyncIterator[Iterator[tuple[OrderLine, bytes]]]:
        """``orders`` a page at a time, each page's lines decoded one by one as they are read, each with the JSON
        WB sent for it (every field, those ``OrderLine`` does not declare included: what the sync stores as the
        raw line). A page of up to 80 000 lines (~60 MB of JSON) is never held whole: its body is kept
        zlib-compressed as it streams in (``_PageBody``, ~10× smaller) and split into lines when read. Read each
        page whole before asking for the next. The boundary lines of two pages come twice (a later copy carries
        the newer state): the reader merges them by ``srid``. A line that does not decode fails the read, as a
        page would."""
        if flag not in (0, 1):
            raise ValueError("flag must be 0 or 1")
        url = self._url("statistics", "/api/v1/supplier/orders")
        since = msk_text(date_from)
        seen: set[str] = set()
        while True:
            body = _PageBody()
            response = await self._transport.send(
                "orders",
                "GET",
                url,
                policy=self._orders_policy,
                params={"dateFrom": since, "flag": str(flag)},
                max_wait=self._page_max_wait if seen else None,
                sink=body,
            )
            tally = _PageTally(since)
            if response.status_code != 204:
                yield self._page_lines(body, response.status_code, seen, tally)
            del body
            if flag == 1 or not tally.fresh or tally.last == since:
                return
            since = tally.last

    def _page_lines(
        self, body: _PageBody, status: int, seen: set[str], tally: _PageTally
    ) -> Iterator[tuple[OrderLine, bytes]]:
        """The page's lines, decoded one at a time, each with its own bytes; counts the new ones and keeps the
        last change date."""
        try:
            for data in body.lines():
                line = self._transport.decode_body("orders", status, data, OrderLine)
                tally.fresh += line.srid not in seen
                seen.add(line.srid)
                tally.last = line.lastChangeDate
                yield line, data
        except _NotAnArrayOfLines as exc:
            raise MarketplaceBadResponse(
                f"wildberries orders: unexpected response body ({exc})",
                marketplace=MARKETPLACE,
                endpoint="orders",
                status=status,
            ) from None
