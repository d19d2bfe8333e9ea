"""WB Statistics `GET /api/v1/supplier/orders` and the `GET /ping` every WB host has.

Order lines: one line = one unit = one `srid`; lines of one basket share `gNumber` and `date`. Dates
are Moscow time without an offset. FBW lines name the WB shipment warehouse (not "Склад WB": the
per-warehouse stock is aggregated, the order report is not), FBS lines the seller's warehouse.
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get

from app.sandbox._gate import WbEndpoint, wb_gate
from app.sandbox._names import BRANDS, REGIONS, SUBJECTS, WB_SHIP_WAREHOUSES
from app.sandbox._ratelimit import Limit
from app.sandbox._replies import Reply, json_reply, statistics_error
from app.sandbox._seller import Sandbox, Seller
from app.sandbox._timeutil import msk_day_bounds, msk_naive, msk_offset, parse_msk
from app.sandbox._wb_content import barcode

MAX_LINES = 80_000
NEVER = "0001-01-01T00:00:00"


class OrderLine(msgspec.Struct):
    date: str
    lastChangeDate: str
    warehouseName: str
    warehouseType: str
    countryName: str
    oblastOkrugName: str
    regionName: str
    supplierArticle: str
    nmId: int
    barcode: str
    category: str
    subject: str
    brand: str
    techSize: str
    incomeID: int
    isSupply: bool
    isRealization: bool
    totalPrice: float
    discountPercent: int
    spp: float
    finishedPrice: float
    priceWithDisc: float
    isCancel: bool
    cancelDate: str
    sticker: str
    gNumber: str
    srid: str


class Ping(msgspec.Struct):
    Status: str
    TS: str


def order_line(seller: Seller, o: int) -> OrderLine:
    cat, book, now = seller.catalog, seller.sim.orders, seller.now
    v = book.variant[o]
    p = cat.variant_product[v]
    wh = cat.warehouses[book.warehouse[o]]
    subject = SUBJECTS[cat.subject[p]]
    basket = book.basket[o]
    region, okrug = REGIONS[basket % len(REGIONS)]
    nm = cat.product_ids[p]
    price = float(cat.price[p])
    discount = 10 + nm % 41
    spp = float(basket % 25)
    with_disc = round(price * (100 - discount) / 100, 2)
    cancelled = book.cancelled(o, now)
    fbw = wh.kind == "fbw"
    return OrderLine(
        date=msk_naive(book.ts[o]),
        lastChangeDate=msk_naive(book.last_change(o, now)),
        warehouseName=WB_SHIP_WAREHOUSES[(basket + nm) % len(WB_SHIP_WAREHOUSES)] if fbw else wh.name,
        warehouseType="Склад WB" if fbw else "Склад продавца",
        countryName="Россия",
        oblastOkrugName=okrug,
        regionName=region,
        supplierArticle=cat.offer_id(p),
        nmId=nm,
        barcode=barcode(cat.variant_ids[v]),
        category=subject.category,
        subject=subject.name,
        brand=BRANDS[cat.brand[p]],
        techSize=subject.sizes[cat.variant_size[v]][0],
        incomeID=(nm % 9_000_000) + 10_000_000 if fbw else 0,
        isSupply=False,
        isRealization=True,
        totalPrice=price,
        discountPercent=discount,
        spp=spp,
        finishedPrice=round(with_disc * (100 - spp) / 100),
        priceWithDisc=with_disc,
        isCancel=cancelled,
        cancelDate=msk_naive(book.cancel[o]) if cancelled else NEVER,
        sticker=str(30_000_000_000 + o),
        gNumber=f"{(nm * 7919 + basket) % 10**6:06d}{basket:014d}",
        srid=f"{o % 90 + 10}.r{seller.sid[:8]}{o:012x}.0.0",
    )


def supplier_orders(seller: Seller, body: bytes, request: Request) -> Reply:
    raw_from = request.query_params.get("dateFrom")
    if not raw_from:
        return statistics_error(["dateFrom: field required"])
    since = parse_msk(raw_from)
    if since is None:
        return statistics_error("dateFrom: Value not validated")
    flag = request.query_params.get("flag", "0").strip() or "0"
    if flag not in ("0", "1"):
        return statistics_error("flag: Value not validated")
    book, now = seller.sim.orders, seller.now
    if flag == "1":
        start, end = msk_day_bounds(since)
        selected: range | list[int] = book.placed_between(start, end)
    else:
        selected = book.changed_since(since, now, MAX_LINES)
    return json_reply([order_line(seller, o) for o in selected])


def ping(seller: Seller, body: bytes, request: Request) -> Reply:
    return json_reply(Ping(Status="OK", TS=msk_offset(seller.now)))


ORDERS = WbEndpoint(
    "GET /wb/api/v1/supplier/orders", "statistics", 5,
    "statistics.orders", Limit(60, 1, 10), Limit(3 * 3600, 1, 1),
)  # fmt: skip
PING = WbEndpoint("GET /wb/ping", "common", None, "ping", Limit(30, 3, 3), Limit(30, 3, 3))


@get("/wb/api/v1/supplier/orders")
async def supplier_orders_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, ORDERS, supplier_orders)


@get("/wb/ping")
async def ping_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, PING, ping)


ROUTES = [supplier_orders_route, ping_route]
