"""OzonClient's posting methods over real HTTP against the sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.integrations.marketplace import Retry
from app.integrations.ozon import FboPosting, FbsPosting, OzonClient
from tests.sandbox_server import SandboxControl, run_sandbox


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with run_sandbox() as url:
        yield url


@pytest.fixture
async def control(sandbox_url: str) -> AsyncIterator[SandboxControl]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield SandboxControl(http, sandbox_url)


async def seller(control: SandboxControl, **spec: Any) -> tuple[OzonClient, dict[str, Any]]:
    made = await control.create_seller("ozon", **{"products": 80, "warehouses": 2, "seed": 11, **spec})
    await control.faults(made["id"], rate_limits="off")
    resp = await control.http.post(f"{control.base}/control/sellers/{made['id']}/advance", json={"hours": 36})
    assert resp.status_code == 200
    creds = made["credentials"]
    client = OzonClient(
        creds["client_id"], creds["api_key"], base_url=control.ozon_url, http=control.http, limiter=None,
        limiter_key="ozon:test", retry=Retry(attempts=2, base=0.01, cap=0.01),
    )  # fmt: skip
    return client, await control.seller(made["id"])


def now_of(summary: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(summary["now"].replace("Z", "+00:00"))


async def test_postings_decode_into_structs_once_each(control: SandboxControl) -> None:
    client, summary = await seller(control)
    to = now_of(summary)
    since = to - dt.timedelta(days=40)
    fbo: list[FboPosting] = [p async for page in client.fbo_postings(since, to, limit=50) for p in page]
    fbs: list[FbsPosting] = [p async for page in client.fbs_postings(since, to, limit=50) for p in page]
    assert len(fbo) + len(fbs) == summary["orders"]
    assert len({p.posting_number for p in fbo + fbs}) == len(fbo) + len(fbs)
    assert any(p.cancelled for p in fbo + fbs) and not all(p.cancelled for p in fbo + fbs)
    fbs_ids = {int(w["id"]) for w in summary["warehouses"] if w["kind"] == "fbs"}
    assert all(p.delivery_method is not None and p.delivery_method.warehouse_id in fbs_ids for p in fbs)
    assert all(p.analytics_data is not None and p.analytics_data.warehouse_id for p in fbo)
    assert all(p.products[0].sku > 0 and p.products[0].quantity == 1 for p in fbo + fbs)
    cancelled = [p for p in fbs if p.cancelled]
    assert all(p.cancellation is not None and p.cancellation.cancel_reason_id for p in cancelled)


async def test_fbo_paging_restarts_its_window_before_the_offset_cap(control: SandboxControl) -> None:
    client, summary = await seller(control, seed=12)
    to = now_of(summary)
    since = to - dt.timedelta(days=40)
    whole = [p.posting_number async for page in client.fbo_postings(since, to) for p in page]
    pages = [page async for page in client.fbo_postings(since, to, limit=7, max_offset=21)]
    capped = [p.posting_number for page in pages for p in page]
    assert len(whole) > 50 and capped == whole  # same postings, same order, none twice
    delivered = [p async for page in client.fbo_postings(since, to, status="delivered") for p in page]
    assert delivered and all(p.status == "delivered" for p in delivered)


async def test_fbs_windows_longer_than_a_year_are_split(control: SandboxControl) -> None:
    client, summary = await seller(control, seed=13)
    to = now_of(summary)
    long = [p.posting_number async for page in client.fbs_postings(to - dt.timedelta(days=800), to) for p in page]
    short = [p.posting_number async for page in client.fbs_postings(to - dt.timedelta(days=40), to) for p in page]
    assert long == short and short
    with pytest.raises(ValueError, match="timezone-aware"):
        [p async for p in client.fbs_postings(dt.datetime(2026, 1, 1), to)]
