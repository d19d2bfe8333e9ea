"""Fetch one Wildberries seller into a neutral snapshot, stage by stage (SPEC §5)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import structlog

from app.domain.sync.model import CatalogItem, OrderItem, OrderLines, Snapshot, StockRow, VariantItem, WarehouseItem
from app.domain.sync.normalize import is_pseudo_warehouse, warehouse_key
from app.integrations.marketplace import MarketplaceUnavailable
from app.integrations.wildberries.client import WildberriesClient
from app.integrations.wildberries.schemas import Cursor

log = structlog.get_logger(__name__)
MSK = timezone(timedelta(hours=3))
_MSK_OFFSET = "+03:00"
ORDER_DAYS = 30
FBS_CHUNK = 1000


def _photo(card: Any) -> str | None:
    photos = getattr(card, "photos", None) or []
    if not photos:
        return None
    first = photos[0]
    if isinstance(first, dict):
        return first.get("big") or first.get("c516x688") or next(iter(first.values()), None)
    return getattr(first, "big", None) or getattr(first, "c516x688", None)


def _shared(value: str | None) -> str | None:
    """One string object for a value many rows repeat (a size, a brand, a warehouse): a 100 000-variant
    seller's catalogue and stock hold the same few hundred values some 300 000 times."""
    return None if value is None else sys.intern(value)


def _moscow(value: str | datetime | None) -> datetime | None:
    """WB statistics dates are Moscow local time without an offset."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=MSK)
    else:
        text = str(value)
        if text.startswith("0001-"):  # "not cancelled" (most lines): not parsed only to be dropped below
            return None
        clock = text[11:]
        if text[10:11] in ("T", " ") and clock and "+" not in clock and "-" not in clock and "Z" not in clock:
            # The usual text, a date and a local time without an offset, read with Moscow's offset appended: an
            # order line's two dates cost 1.3 µs each as a naive parse and ``replace(tzinfo=…)``, 0.35 µs this
            # way (~10 ms of a 5 000-line first sync). Only then: ``fromisoformat`` would read an offset after a
            # date alone ("2026-11-20+03:00") as the time 03:00.
            dt = datetime.fromisoformat(text + _MSK_OFFSET)
        else:  # an offset (or "Z") of its own, or a date alone
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=MSK)
    if dt.year < 2000:  # "0001-01-01T00:00:00" means "not cancelled"
        return None
    return dt


async def fetch_catalog(client: WildberriesClient, cursor: dict[str, Any] | None, snapshot: Snapshot) -> None:
    """Cards from the saved cursor on; the new cursor is kept only if every page arrived."""
    after = msgspec.convert(cursor, Cursor) if cursor else None
    last: Cursor | None = None
    async for cards, page_cursor in client.iter_cards(after):
        for card in cards:
            snapshot.catalog.append(
                CatalogItem(
                    external_id=str(card.nmID),
                    vendor_code=card.vendorCode,
                    title=card.title,
                    brand=_shared(card.brand),
                    subject=_shared(card.subjectName),
                    photo_url=_photo(card),
                    variants=[
                        VariantItem(
                            external_id=str(size.chrtID),
                            size=_shared(size.techSize),
                            marketplace_size=_shared(size.wbSize),
                            barcodes=list(size.skus or []),
                        )
                        for size in card.sizes
                    ],
                )
            )
        if cards:
            last = page_cursor
    snapshot.catalogue_complete = True
    if last is not None and last.updatedAt:
        snapshot.catalogue_cursor = {"updatedAt": last.updatedAt, "nmID": last.nmID}
    else:
        snapshot.catalogue_cursor = cursor


async def fetch_fbo(client: WildberriesClient, snapshot: Snapshot) -> None:
    """Stock on WB warehouses (FBW) with in-transit to / from customers."""
    rows = await client.wb_warehouse_stock()
    # A warehouse is listed again only when its name or region changes (``normalize`` keeps the last name a
    # key had, with the region it first came with): not once per row — 100 000 rows name ten warehouses.
    listed: dict[str, tuple[str, str | None]] = {}
    products: dict[int, str] = {}
    for r in rows:
        if is_pseudo_warehouse(r.warehouseName):
            continue
        key = sys.intern(warehouse_key(r.warehouseId, r.warehouseName))
        place = (r.warehouseName.strip(), r.regionName)
        if listed.get(key) != place:
            listed[key] = place
            snapshot.warehouses.append(WarehouseItem(key, place[0], "fbo", place[1]))
        product = products.get(r.nmId)
        if product is None:
            product = products[r.nmId] = str(r.nmId)
        snapshot.stock.append(
            StockRow(
                product_external_id=product,
                variant_external_id=str(r.chrtId),
                warehouse_external_id=key,
                quantity=int(r.quantity),
                in_way_to_client=r.inWayToClient,
                in_way_from_client=r.inWayFromClient,
            )
        )
    snapshot.covered_fbo = True


async def fetch_fbs(client: WildberriesClient, snapshot: Snapshot, variants: Sequence[tuple[str, str]]) -> None:
    """Rule 1: every seller warehouse × every variant, including variants with no FBW stock at all."""
    warehouses = await client.seller_warehouses()
    product_of = {v: p for p, v in variants}
    chrt_ids = sorted({int(v) for _, v in variants if v.lstrip("-").isdigit()})
    # A row's size id back to the variant's own string (one object per variant, not one more per row).
    variant_of = {int(v): v for v in product_of if v.lstrip("-").isdigit() and str(int(v)) == v}
    for wh in warehouses:
        key = warehouse_key(wh.id, wh.name)
        snapshot.warehouses.append(WarehouseItem(key, wh.name.strip(), "fbs", None))
        try:
            amounts = await client.fbs_stocks(wh.id, chrt_ids) if chrt_ids else []
        except MarketplaceUnavailable as exc:
            snapshot.errors.append(f"fbs warehouse {wh.id}: {exc}")
            continue
        for a in amounts:
            variant = variant_of.get(a.chrtId)
            if variant is None:
                continue
            snapshot.stock.append(StockRow(product_of[variant], variant, key, int(a.amount)))
        snapshot.covered_fbs.add(key)


async def fetch_orders(client: WildberriesClient, snapshot: Snapshot, now: datetime, changed_since: str | None) -> None:
    """Order lines (one line = one srid): the last 30 days (whole days, Moscow time) on the first sync, then
    only lines changed since the newest change we hold (with an hour's overlap), as WB's flag=0 intends."""
    floor = (now.astimezone(MSK) - timedelta(days=ORDER_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    since = floor
    last = _moscow(changed_since)
    if last is not None:
        since = max(floor, last - timedelta(hours=1))
    orders = OrderLines()  # compressed a chunk at a time; a page's lines are decoded one by one as read
    newest: str | None = None
    async for page in client.order_page_lines(since):
        for line, data in page:
            if newest is None or line.lastChangeDate > newest:
                newest = line.lastChangeDate
            ordered_at = _moscow(line.date)
            if ordered_at is None or not line.srid:
                continue
            warehouse_type = (line.warehouseType or "").strip()
            kind = "fbo" if warehouse_type == "Склад WB" else "fbs" if warehouse_type == "Склад продавца" else None
            orders.append(
                OrderItem(
                    external_id=line.srid,
                    basket_id=line.gNumber,
                    product_external_id=str(line.nmId),
                    variant_external_id=None,
                    barcode=line.barcode or None,
                    warehouse_name=(line.warehouseName or "").strip() or None,
                    warehouse_kind=kind,
                    ordered_at=ordered_at.astimezone(UTC),
                    order_date=ordered_at.astimezone(MSK).date(),
                    is_cancel=bool(line.isCancel),
                    cancelled_at=_moscow(line.cancelDate),
                    raw=data,  # the JSON WB sent for the line, every field (stored raw; not re-encoded)
                )
            )
    orders.seal()
    # Set only once every page arrived: a failed page leaves the step with no orders and the cursor where it was.
    snapshot.orders_cursor = max(filter(None, (newest, changed_since)), default=None)
    snapshot.orders = orders
