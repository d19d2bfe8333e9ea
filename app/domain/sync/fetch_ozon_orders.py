"""The Ozon orders step of the fetch stage: FBO and FBS postings as order lines, so Ozon's days of cover come
from orders like WB's (``/v2/posting/fbo/list``, ``/v3/posting/fbs/list``).

A posting holds products with quantities; one order line is one unit (the id ``<posting>:<sku>:<n>``), as one
WB ``srid`` is one unit, so every figure counts lines the same way on both marketplaces. The order date is
when the posting was created (FBO) or went into processing (FBS), as a Moscow calendar day; a cancelled
posting's lines are kept and flagged. The warehouse is Ozon's id (FBO ``analytics_data``, FBS
``delivery_method``) — the identity the stock steps use — never its name.

The first sync reads the last 30 days; later ones re-read from ``RECHECK_DAYS`` before the previous sync's end
(postings change status — a cancellation — after they are created), so a line's flag follows its posting.
A failed page fails the step: nothing is written and the cursor stays (the pipeline's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import msgspec

from app.domain.sync.model import OrderItem, OrderLines, Snapshot, WarehouseItem
from app.domain.sync.normalize import warehouse_key
from app.integrations.ozon.client import OzonClient
from app.integrations.ozon.schemas import FboPosting, FbsPosting

MSK = timezone(timedelta(hours=3))
ORDER_DAYS = 30
RECHECK_DAYS = 7


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(now: datetime, cursor: str | None) -> datetime:
    floor = (now.astimezone(MSK) - timedelta(days=ORDER_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    last = _instant(cursor)
    return floor if last is None else max(floor, last - timedelta(days=RECHECK_DAYS))


def _lines(
    posting: FboPosting | FbsPosting,
    kind: str,
    at: datetime,
    warehouse: tuple[str, str] | None,
    product_of: dict[str, str],
) -> list[OrderItem]:
    raw = msgspec.to_builtins(posting)
    out: list[OrderItem] = []
    for item in posting.products:
        sku = str(item.sku)
        for n in range(max(1, item.quantity)):
            out.append(
                OrderItem(
                    external_id=f"{posting.posting_number}:{sku}:{n + 1}",
                    basket_id=posting.order_number or None,
                    product_external_id=product_of.get(sku, ""),
                    variant_external_id=sku,
                    barcode=None,
                    warehouse_name=warehouse[1] if warehouse else None,
                    warehouse_kind=kind,
                    ordered_at=at.astimezone(UTC),
                    order_date=at.astimezone(MSK).date(),
                    is_cancel=posting.cancelled,
                    cancelled_at=None,
                    raw={"posting": raw, "sku": sku, "unit": n + 1, "scheme": kind},
                    warehouse_external_id=warehouse[0] if warehouse else None,
                )
            )
    return out


async def fetch_orders(
    client: OzonClient,
    snapshot: Snapshot,
    now: datetime,
    cursor: str | None,
    variants: Sequence[tuple[str, str]],
) -> None:
    """Order lines of every FBO and FBS posting placed since the cursor (see the module's docstring).

    ``variants`` are the (product, sku) pairs known before this sync; the catalogue just fetched adds its own.
    """
    product_of = {sku: product for product, sku in variants}
    for item in snapshot.catalog:
        for v in item.variants:
            product_of[v.external_id] = item.external_id
    since, to = _since(now, cursor), now
    known = {w.external_id for w in snapshot.warehouses}
    lines = OrderLines()  # compressed a chunk at a time: a page of postings is held decoded, not all of them
    places: dict[str, WarehouseItem] = {}

    def place(kind: str, warehouse_id: int | None, name: str | None) -> tuple[str, str] | None:
        if not warehouse_id:
            return None
        # FBO stock carries ids only and is labelled by id (fetch_ozon.fetch_fbo): the same label here, so a
        # warehouse's name does not flip between the stock step and this one.
        label = f"Ozon warehouse {warehouse_id}" if kind == "fbo" else (name or f"Warehouse {warehouse_id}")
        key = warehouse_key(warehouse_id, label)
        if key not in known and key not in places:
            places[key] = WarehouseItem(key, label, kind, None)
        return key, label

    async for page in client.fbo_postings(since, to):
        for p in page:
            at = _instant(p.created_at) or _instant(p.in_process_at)
            if at is None:
                continue
            data = p.analytics_data
            lines.extend(_lines(p, "fbo", at, place("fbo", data.warehouse_id if data else None, None), product_of))
    async for fbs_page in client.fbs_postings(since, to):
        for q in fbs_page:
            at = _instant(q.in_process_at)
            if at is None:
                continue
            method = q.delivery_method
            where = place("fbs", method.warehouse_id if method else None, method.warehouse if method else None)
            lines.extend(_lines(q, "fbs", at, where, product_of))
    snapshot.warehouses.extend(places.values())  # rule 3: a product's warehouses include where it was ordered
    lines.seal()
    snapshot.orders = lines
    snapshot.orders_cursor = to.astimezone(UTC).isoformat()
