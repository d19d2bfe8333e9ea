"""The Wildberries and Ozon clients over real HTTP against the sandbox, with the real Redis limiter."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.integrations.marketplace import (
    MarketplaceAuthError,
    MarketplaceBadResponse,
    MarketplaceRateLimited,
    MarketplaceUnavailable,
    Retry,
)
from app.integrations.ozon import OzonClient
from app.integrations.wildberries import REQUIRED_CATEGORIES, WildberriesClient, parse_token
from app.integrations.wildberries.schemas import Card, Cursor
from app.lib.ratelimit import RateLimiter
from tests.sandbox_server import SandboxControl, run_sandbox

FAST_RETRY = Retry(attempts=3, base=0.01, cap=0.02)
STOCKS_KEY = "POST /wb/api/v3/stocks/{warehouseId}"


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with run_sandbox() as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def control(http: httpx.AsyncClient, sandbox_url: str) -> SandboxControl:
    return SandboxControl(http, sandbox_url)


@pytest.fixture
def limiter(redis: Redis) -> RateLimiter:
    return RateLimiter(redis, prefix=f"mp-test-{uuid.uuid4().hex[:8]}")


def wb_client(control: SandboxControl, token: str, limiter: RateLimiter | None, **kw: Any) -> WildberriesClient:
    kw.setdefault("retry", FAST_RETRY)
    return WildberriesClient(
        token, base_url=control.wb_url, http=control.http, limiter=limiter, limiter_key=f"wb:{uuid.uuid4()}", **kw
    )


def ozon_client(
    control: SandboxControl, credentials: dict[str, str], limiter: RateLimiter | None, **kw: Any
) -> OzonClient:
    kw.setdefault("retry", FAST_RETRY)
    return OzonClient(
        credentials["client_id"],
        credentials["api_key"],
        base_url=control.ozon_url,
        http=control.http,
        limiter=limiter,
        limiter_key=f"ozon:{credentials['client_id']}",
        **kw,
    )


async def wb_seller(control: SandboxControl, **spec: Any) -> tuple[str, str]:
    seller = await control.create_seller("wildberries", **{"products": 40, "warehouses": 2, "seed": 1, **spec})
    return seller["id"], seller["credentials"]["token"]


async def all_cards(client: WildberriesClient, after: Cursor | None = None) -> list[Card]:
    return [card async for page, _ in client.iter_cards(after) for card in page]


# ---- tokens ------------------------------------------------------------------------------------------------


async def test_sandbox_tokens_parse_to_type_categories_and_expiry(control: SandboxControl) -> None:
    seller_id, token = await wb_seller(control)
    info = parse_token(token)
    summary = await control.seller(seller_id)
    assert info.type == "personal"
    assert info.categories >= REQUIRED_CATEGORIES and not info.missing_categories
    assert info.seller_id == summary["token"]["sid"]
    assert info.expires_at is not None
    assert abs(info.expires_at - (datetime.now(UTC) + timedelta(days=180))) < timedelta(days=1)
    assert info.read_only is False


async def test_token_without_categories_is_reported_and_refused(control: SandboxControl) -> None:
    seller = await control.create_seller(
        "wildberries", products=5, warehouses=1, token_type="base", token_categories=["content", "analytics"]
    )
    token = seller["credentials"]["token"]
    info = parse_token(token)
    assert info.type == "base"
    assert info.missing_categories == {"marketplace", "statistics"}
    client = wb_client(control, token, None)
    assert len(await all_cards(client)) == 5  # content is granted
    with pytest.raises(MarketplaceAuthError) as no_scope:
        await client.orders(datetime(2026, 1, 1, tzinfo=UTC))
    assert no_scope.value.status == 401 and "scope" in no_scope.value.detail
    with pytest.raises(MarketplaceAuthError) as base_refused:
        await client.wb_warehouse_stock()  # analytics is granted, but not to Base tokens
    assert base_refused.value.status == 403 and "base token" in base_refused.value.detail


# ---- Wildberries data ----------------------------------------------------------------------------------------


async def test_cards_are_iterated_exactly_once_and_resume_from_a_cursor(
    control: SandboxControl, limiter: RateLimiter
) -> None:
    seller_id, token = await wb_seller(control, products=250)
    client = wb_client(control, token, limiter, max_wait=6.0)  # 5 calls: the 5th waits for the window
    pages = [(page, cursor) async for page, cursor in client.iter_cards()]
    assert [len(page) for page, _ in pages] == [100, 100, 50]
    cards = [card for page, _ in pages for card in page]
    assert len({c.nmID for c in cards}) == len(cards) == 250
    assert sum(len(c.sizes) for c in cards) == (await control.seller(seller_id))["variants"]
    assert len({s.chrtID for c in cards for s in c.sizes}) == sum(len(c.sizes) for c in cards)
    stamps = [datetime.fromisoformat(c.updatedAt or "") for c in cards]
    assert stamps == sorted(stamps)  # oldest change first, as asked
    # resuming after the first page yields exactly the rest
    rest = await all_cards(client, pages[0][1])
    assert [c.nmID for c in rest] == [c.nmID for c in cards[100:]]


async def test_stock_reports_match_the_sandbox_truth(control: SandboxControl, limiter: RateLimiter) -> None:
    seller_id, token = await wb_seller(control, products=60, warehouses=3)
    client = wb_client(control, token, limiter)
    fbw, fbs = await client.wb_warehouse_stock(), await client.seller_warehouse_stock()
    summary = await control.seller(seller_id)
    kinds = {w["id"]: w["kind"] for w in summary["warehouses"]}
    truth = {
        (r["product_id"], r["variant_id"], r["warehouse_id"]): r["quantity"] for r in await control.truth(seller_id)
    }

    def as_truth(rows: list[Any]) -> dict[tuple[str, str, str], int]:
        return {(str(r.nmId), str(r.chrtId), str(r.warehouseId)): r.quantity for r in rows}

    assert as_truth(fbw) == {k: q for k, q in truth.items() if kinds[k[2]] == "fbw"}
    assert as_truth(fbs) == {k: q for k, q in truth.items() if kinds[k[2]] == "fbs"}
    assert all(r.inWayToClient is not None and r.inWayFromClient is not None for r in fbw)
    assert all(r.inWayToClient is None and r.inWayFromClient is None for r in fbs)  # not reported: unknown


async def test_stock_report_pages_by_offset(control: SandboxControl) -> None:
    seller_id, token = await wb_seller(control, products=60, warehouses=3)
    await control.faults(seller_id, rate_limits="off")
    client = wb_client(control, token, None)
    whole = await client.seller_warehouse_stock()
    paged = await client.seller_warehouse_stock(limit=25)
    assert len(whole) > 50
    assert paged == whole
    requests = (await control.seller(seller_id))["stats"]["requests"]
    assert requests["POST /wb/api/analytics/v1/stocks-report/seller-warehouses"] == 1 + math.ceil((len(whole) + 1) / 25)


async def test_fbs_stock_is_read_per_warehouse_in_chunks_of_1000(control: SandboxControl) -> None:
    seller_id, token = await wb_seller(control, products=700, warehouses=2)
    await control.faults(seller_id, rate_limits="off")
    client = wb_client(control, token, None)
    chrt_ids = [s.chrtID for c in await all_cards(client) for s in c.sizes]
    assert len(chrt_ids) > 1000
    warehouses = await client.seller_warehouses()
    assert len(warehouses) == 2
    truth = await control.truth(seller_id)
    for warehouse in warehouses:
        amounts = await client.fbs_stocks(warehouse.id, chrt_ids)
        expected = {int(r["variant_id"]): r["quantity"] for r in truth if r["warehouse_id"] == str(warehouse.id)}
        assert {a.chrtId: a.amount for a in amounts} == expected
    stats = (await control.seller(seller_id))["stats"]["requests"]
    assert stats[STOCKS_KEY] == 2 * math.ceil(len(chrt_ids) / 1000)


async def test_orders_page_by_last_change_and_keep_one_line_per_srid(control: SandboxControl) -> None:
    seller_id, token = await wb_seller(control, products=30)
    await control.http.post(f"{control.base}/control/sellers/{seller_id}/advance", json={"hours": 72})
    client = wb_client(control, token, None)
    lines = await client.orders(datetime(2019, 6, 20))
    summary = await control.seller(seller_id)
    assert len(lines) == summary["orders"] > 0
    assert len({line.srid for line in lines}) == len(lines)
    assert summary["stats"]["requests"]["GET /wb/api/v1/supplier/orders"] == 2  # the second page adds nothing
    assert any(line.isCancel for line in lines) or all(line.cancelDate.startswith("0001") for line in lines)

    day = lines[len(lines) // 2].date[:10]
    one_day = await client.orders(datetime.fromisoformat(day), flag=1)
    assert one_day and all(line.date.startswith(day) for line in one_day)
    assert {line.srid for line in one_day} == {line.srid for line in lines if line.date.startswith(day)}


# ---- failures ---------------------------------------------------------------------------------------------


async def test_unknown_credentials_raise_auth_errors_without_leaking_them(control: SandboxControl) -> None:
    token = "not-a-wb-token-" + uuid.uuid4().hex
    with pytest.raises(MarketplaceAuthError) as wb_error:
        await wb_client(control, token, None).ping("statistics")
    assert wb_error.value.status == 401 and "token" in wb_error.value.detail
    assert token not in str(wb_error.value)

    seller = await control.create_seller("ozon", products=3, warehouses=1)
    credentials = {**seller["credentials"], "api_key": str(uuid.uuid4())}
    with pytest.raises(MarketplaceAuthError) as ozon_error:
        await ozon_client(control, credentials, None).warehouses()
    # Ozon answers a wrong key with 404 (gRPC NOT_FOUND); the client still reads it as an auth failure
    assert ozon_error.value.status in (401, 403, 404) and "Api-Key" in ozon_error.value.detail
    assert credentials["api_key"] not in str(ozon_error.value)


async def test_server_errors_are_retried_then_unavailable(control: SandboxControl) -> None:
    seller_id, token = await wb_seller(control)
    await control.faults(seller_id, error_rate=1.0, status=500)
    with pytest.raises(MarketplaceUnavailable) as wb_error:
        await wb_client(control, token, None).seller_warehouses()
    assert wb_error.value.status == 500
    assert (await control.seller(seller_id))["stats"]["faults"]["GET /wb/api/v3/warehouses"] == 3

    ozon = await control.create_seller("ozon", products=3, warehouses=1)
    await control.faults(ozon["id"], error_rate=1.0, status=503)
    with pytest.raises(MarketplaceUnavailable):
        await ozon_client(control, ozon["credentials"], None).warehouses()
    assert (await control.seller(ozon["id"]))["stats"]["faults"]["POST /ozon/v2/warehouse/list"] == 3


async def test_truncated_bodies_are_bad_responses(control: SandboxControl) -> None:
    seller_id, token = await wb_seller(control)
    await control.faults(seller_id, malformed_rate=1.0)
    with pytest.raises(MarketplaceBadResponse):
        await wb_client(control, token, None).seller_warehouses()


async def test_a_429_from_the_marketplace_carries_its_retry_delay(control: SandboxControl) -> None:
    _, token = await wb_seller(control)
    client = wb_client(control, token, None)  # our limiter off: the sandbox's bucket (3/min, burst 1) answers
    await client.wb_warehouse_stock()
    with pytest.raises(MarketplaceRateLimited) as wb_error:
        await client.wb_warehouse_stock()
    assert wb_error.value.status == 429
    assert 15 <= wb_error.value.retry_after <= 20  # X-Ratelimit-Retry

    ozon = await control.create_seller("ozon", products=3, warehouses=1)
    await control.faults(ozon["id"], error_rate=1.0, status=429)
    client_ozon = ozon_client(control, ozon["credentials"], None)
    hints = []
    for _ in range(3):
        with pytest.raises(MarketplaceRateLimited) as ozon_error:
            await client_ozon.warehouses()
        hints.append(ozon_error.value.retry_after)
    assert 1 <= hints[0] < hints[1] < hints[2]  # no header from Ozon: growing backoff


async def test_our_limiter_refuses_a_long_wait_instead_of_sleeping(
    control: SandboxControl, limiter: RateLimiter
) -> None:
    seller_id, token = await wb_seller(control)
    client = wb_client(control, token, limiter, max_wait=1.0)
    await client.wb_warehouse_stock()
    with pytest.raises(MarketplaceRateLimited) as refused:
        await client.wb_warehouse_stock()
    assert refused.value.status is None  # decided locally: nothing was sent
    assert 15 < refused.value.retry_after <= 41
    stats = (await control.seller(seller_id))["stats"]
    assert stats["requests"]["POST /wb/api/analytics/v1/stocks-report/wb-warehouses"] == 1
    assert stats["violations"] == 0


# ---- the limiter keeps a burst under the real limits --------------------------------------------------------


async def test_a_burst_through_the_client_draws_no_429_from_real_wb_limits(
    control: SandboxControl, limiter: RateLimiter
) -> None:
    seller_id, token = await wb_seller(control, products=900, warehouses=3)
    client = wb_client(control, token, limiter, max_wait=15.0)
    fbs = await client.seller_warehouse_stock()
    by_warehouse = [(r.warehouseId, r.chrtId) for r in fbs][:30]

    async def cards() -> int:
        return len(await all_cards(client))

    results = await asyncio.gather(
        cards(),
        *(client.fbs_stocks(warehouse, [chrt]) for warehouse, chrt in by_warehouse),
        client.wb_warehouse_stock(),
        client.orders(datetime(2019, 6, 20)),
        *(client.ping(category) for category in ("content", "analytics", "marketplace")),
    )
    assert results[0] == 900
    stats = (await control.seller(seller_id))["stats"]
    assert stats["requests"]["POST /wb/content/v2/get/cards/list"] == 10  # 9 full pages, then an empty one
    assert stats["requests"][STOCKS_KEY] == 30
    assert stats["violations"] == 0, stats["rate_limited"]

    # the same fan-out without our limiter does draw 429s: the check above is not vacuous
    other_id, other_token = await wb_seller(control, products=900, warehouses=3)
    unguarded = wb_client(control, other_token, None)
    outcomes = await asyncio.gather(
        *(unguarded.fbs_stocks(warehouse, [chrt]) for warehouse, chrt in by_warehouse), return_exceptions=True
    )
    assert any(isinstance(o, MarketplaceRateLimited) for o in outcomes)
    assert (await control.seller(other_id))["stats"]["violations"] > 0


# ---- Ozon ---------------------------------------------------------------------------------------------------


async def test_ozon_products_stocks_and_warehouses(control: SandboxControl, limiter: RateLimiter) -> None:
    seller = await control.create_seller("ozon", products=45, warehouses=3, seed=2)
    client = ozon_client(control, seller["credentials"], limiter)
    summary = await control.seller(seller["id"])
    kinds = {w["id"]: w["kind"] for w in summary["warehouses"]}

    pages = [(items, last_id) async for items, last_id in client.product_list(limit=20)]
    assert [len(items) for items, _ in pages] == [20, 20, 5]
    product_ids = [p.product_id for items, _ in pages for p in items]
    assert len(set(product_ids)) == 45
    resumed = [p.product_id async for items, _ in client.product_list(pages[0][1], limit=20) for p in items]
    assert resumed == product_ids[20:]

    info = await client.product_info(product_ids)
    assert sorted(i.id for i in info) == sorted(product_ids)
    assert all(i.name and i.offer_id and i.skus and i.barcodes for i in info)

    stock_pages = [items async for items, _ in client.stocks(limit=30)]
    assert sum(len(items) for items in stock_pages) == 45

    truth = await control.truth(seller["id"])
    fbs = await client.fbs_stocks_by_warehouse(limit=10)
    fbo = await client.fbo_stocks_by_warehouse(limit=25)
    fbs_truth = {(r["variant_id"], r["warehouse_id"]) for r in truth if kinds[r["warehouse_id"]] == "fbs"}
    fbo_truth = {(r["variant_id"], r["warehouse_id"]) for r in truth if kinds[r["warehouse_id"]] == "fbo"}
    assert {(str(r.sku), str(r.warehouse_id)) for r in fbs} == fbs_truth
    assert {(str(r.sku), str(r.warehouse_id)) for r in fbo} == fbo_truth
    assert all(r.free_stock == r.present - r.reserved for r in fbs)

    warehouses = await client.warehouses()
    assert {str(w.warehouse_id) for w in warehouses} == {i for i, kind in kinds.items() if kind == "fbs"}

    skus = [sku for i in info for sku in i.skus]
    analytics = await client.analytics_stocks(skus * 3)  # repeats are dropped; >100 would split
    assert {(str(a.sku), str(a.warehouse_id)) for a in analytics} == fbo_truth
    assert (await control.seller(seller["id"]))["stats"]["violations"] == 0


async def test_ozon_burst_through_the_client_stays_under_50_per_second(
    control: SandboxControl, limiter: RateLimiter
) -> None:
    seller = await control.create_seller("ozon", products=3, warehouses=1)
    client = ozon_client(control, seller["credentials"], limiter, max_wait=10.0)
    await asyncio.gather(*(client.warehouses() for _ in range(90)))
    stats = (await control.seller(seller["id"]))["stats"]
    assert stats["requests"]["POST /ozon/v2/warehouse/list"] == 90
    assert stats["violations"] == 0

    other = await control.create_seller("ozon", products=3, warehouses=1)
    unguarded = ozon_client(control, other["credentials"], None)
    # Enough at once that the sandbox's bucket runs dry even when a loaded machine serves them slowly.
    await asyncio.gather(*(unguarded.warehouses() for _ in range(300)), return_exceptions=True)
    assert (await control.seller(other["id"]))["stats"]["violations"] > 0
