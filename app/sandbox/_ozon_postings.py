"""Ozon postings: `/v2/posting/fbo/list` and `/v3/posting/fbs/list` over the simulated order book.

One order line of the simulator is one posting with one unit (Ozon splits an order into postings per
warehouse and shipment; lines of one basket share `order_id` and `order_number` and are numbered
`<order_number>-<n>`). FBO postings are the lines taken from Ozon warehouses, FBS postings those from
the seller's. Status follows the line's life: `awaiting_packaging` (first 2 h), `awaiting_deliver`
(until 8 h), `delivering`, `delivered`, or `cancelled` from the moment it was cancelled.

Paging is Ozon's: `limit` (1–1000) and `offset` (FBO: at most 20 000); FBO answers a bare `result` array,
FBS `result.postings` with `has_next`. `filter.since`/`filter.to` (RFC 3339, required) select by the
time the posting was created / went into processing; FBS refuses a period longer than a year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from app.sandbox._gate import ozon_gate
from app.sandbox._names import REGIONS
from app.sandbox._ozon_common import BadRequest, decode, ints
from app.sandbox._ozon_products import name_of
from app.sandbox._replies import Reply, json_reply
from app.sandbox._seller import Sandbox, Seller
from app.sandbox._timeutil import HOUR

FBO_STATUSES = {"awaiting_packaging", "awaiting_deliver", "delivering", "delivered", "cancelled"}
FBS_STATUSES = FBO_STATUSES | {
    "awaiting_registration", "acceptance_in_progress", "awaiting_approve", "arbitration", "client_arbitration",
    "driver_pickup", "not_accepted", "sent_by_seller", "awaiting_verification", "cancelled_from_split_pending",
}  # fmt: skip
MAX_OFFSET_FBO = 20_000
MAX_PERIOD_FBS = dt.timedelta(days=366)
CANCEL_REASON = (402, "Покупатель отменил заказ")
SUBSTATUS = {
    "awaiting_packaging": "posting_created",
    "awaiting_deliver": "posting_transferring_to_delivery",
    "delivering": "posting_on_way_to_pickup_point",
    "delivered": "posting_delivered",
    "cancelled": "posting_canceled",
}


class With(msgspec.Struct):
    analytics_data: bool = False
    financial_data: bool = False
    barcodes: bool = False
    legal_info: bool = False
    translit: bool = False


class Filter(msgspec.Struct):
    since: str | None = None
    to: str | None = None
    status: str = ""
    warehouse_id: list[str | int] = msgspec.field(default_factory=list)


class ListRequest(msgspec.Struct):
    filter: Filter | None = None
    limit: int | None = None
    offset: int = 0
    dir: str = "ASC"
    translit: bool = False
    with_: With = msgspec.field(default_factory=With, name="with")


def _instant(value: str | None, name: str) -> float:
    if not value:
        raise BadRequest(f"filter.{name}: value is required")
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"filter.{name}: invalid date-time {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_of(seller: Seller, o: int) -> str:
    book, now = seller.sim.orders, seller.now
    if book.cancelled(o, now):
        return "cancelled"
    if book.deliver[o] <= now:
        return "delivered"
    age = now - book.ts[o]
    return "awaiting_packaging" if age < 2 * HOUR else "awaiting_deliver" if age < 8 * HOUR else "delivering"


def _numbers(seller: Seller, o: int) -> tuple[int, str, str]:
    """(order_id, order_number, posting_number) of a line; lines of one basket share the order."""
    book = seller.sim.orders
    basket = book.basket[o]
    n = 1
    while o - n >= 0 and book.basket[o - n] == basket:
        n += 1
    salt = int(seller.sid[:6], 16) % 10**7
    order_number = f"{salt + basket // 10_000:08d}-{basket % 10_000:04d}"
    return 30_000_000_000 + basket, order_number, f"{order_number}-{n}"


def _select(seller: Seller, req: ListRequest, kind: str, statuses: set[str]) -> list[int]:
    flt = req.filter or Filter()
    since, to = _instant(flt.since, "since"), _instant(flt.to, "to")
    if to < since:
        raise BadRequest("filter: 'to' is earlier than 'since'")
    if kind == "fbs" and to - since > MAX_PERIOD_FBS.total_seconds():
        raise BadRequest("filter: the period must not be longer than one year")
    if flt.status and flt.status not in statuses:
        raise BadRequest(f"filter.status: unknown status {flt.status!r}")
    if req.limit is None or not 1 <= req.limit <= 1000:
        raise BadRequest("limit: value must be in range [1, 1000]")
    if req.offset < 0 or (kind == "fbo" and req.offset > MAX_OFFSET_FBO):
        raise BadRequest(f"offset: value must be in range [0, {MAX_OFFSET_FBO}]")
    if req.dir.upper() not in ("ASC", "DESC"):
        raise BadRequest("dir: must be ASC or DESC")
    warehouses = set(ints(flt.warehouse_id, "warehouse_id"))
    cat, book = seller.catalog, seller.sim.orders
    # `since`/`to` are inclusive; the order book is ordered by time, so the range is a bisect away
    picked = [
        o
        for o in book.placed_between(since, to + 1)
        if cat.warehouses[book.warehouse[o]].kind == kind
        and (not warehouses or cat.warehouses[book.warehouse[o]].id in warehouses)
        and (not flt.status or status_of(seller, o) == flt.status)
    ]
    return picked[::-1] if req.dir.upper() == "DESC" else picked


def _product(seller: Seller, o: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The posting's product line and its financial data."""
    cat = seller.catalog
    v = seller.sim.orders.variant[o]
    p = cat.variant_product[v]
    old = float(cat.price[p])
    discount = 5 + cat.product_ids[p] % 31
    price = round(old * (100 - discount) / 100, 2)
    product = {
        "sku": cat.variant_ids[v], "name": name_of(cat, p), "offer_id": cat.offer_id(p), "quantity": 1,
        "price": f"{price:.6f}", "currency_code": "RUB", "is_marketplace_buyout": False,
    }  # fmt: skip
    commission = round(price * 0.15, 2)
    financial: dict[str, Any] = {
        "products": [
            {
                "product_id": cat.product_ids[p], "quantity": 1, "price": price, "old_price": old,
                "total_discount_value": round(old - price, 2), "total_discount_percent": float(discount),
                "commission_amount": commission, "commission_percent": 15, "payout": round(price - commission, 2),
                "actions": [], "picking": None, "client_price": "", "currency_code": "RUB",
            }
        ],
        "posting_services": None,
    }  # fmt: skip
    return product, financial


def _analytics(seller: Seller, o: int) -> dict[str, Any]:
    book, cat = seller.sim.orders, seller.catalog
    wh = cat.warehouses[book.warehouse[o]]
    region, _okrug = REGIONS[book.basket[o] % len(REGIONS)]
    return {
        "region": region, "city": region, "delivery_type": "PVZ", "is_premium": False,
        "payment_type_group_name": "Карты оплаты", "warehouse_id": wh.id, "warehouse_name": wh.name,
        "is_legal": False,
    }  # fmt: skip


def fbo_posting(seller: Seller, o: int, with_: With) -> dict[str, Any]:
    book = seller.sim.orders
    order_id, order_number, posting_number = _numbers(seller, o)
    status = status_of(seller, o)
    product, financial = _product(seller, o)
    created = _rfc3339(book.ts[o])
    return {
        "order_id": order_id,
        "order_number": order_number,
        "posting_number": posting_number,
        "status": status,
        "cancel_reason_id": CANCEL_REASON[0] if status == "cancelled" else 0,
        "created_at": created,
        "in_process_at": created,
        "products": [{**product, "digital_codes": []}],
        "analytics_data": _analytics(seller, o) if with_.analytics_data else None,
        "financial_data": financial if with_.financial_data else None,
        "additional_data": [],
    }


def fbs_posting(seller: Seller, o: int, with_: With) -> dict[str, Any]:
    book, cat = seller.sim.orders, seller.catalog
    wh = cat.warehouses[book.warehouse[o]]
    order_id, order_number, posting_number = _numbers(seller, o)
    status = status_of(seller, o)
    product, financial = _product(seller, o)
    cancelled = status == "cancelled"
    ts = book.ts[o]
    analytics = {**_analytics(seller, o), "warehouse": wh.name, "tpl_provider": "Ozon Логистика"}
    analytics.pop("warehouse_name")
    return {
        "posting_number": posting_number,
        "order_id": order_id,
        "order_number": order_number,
        "status": status,
        "substatus": SUBSTATUS[status],
        "delivery_method": {
            "id": 1_000_000 + wh.index,
            "name": f"Ozon Логистика, {wh.name}",
            "warehouse_id": wh.id,
            "warehouse": wh.name,
            "tpl_provider_id": 24,
            "tpl_provider": "Ozon Логистика",
        },
        "tracking_number": "",
        "tpl_integration_type": "ozon",
        "in_process_at": _rfc3339(ts),
        "shipment_date": _rfc3339(ts + 24 * HOUR),
        "delivering_date": _rfc3339(ts + 8 * HOUR) if status in ("delivering", "delivered") else None,
        "cancellation": {
            "cancel_reason_id": CANCEL_REASON[0] if cancelled else 0,
            "cancel_reason": CANCEL_REASON[1] if cancelled else "",
            "cancellation_type": "client" if cancelled else "",
            "cancelled_after_ship": False,
            "affect_cancellation_rating": False,
            "cancellation_initiator": "Клиент" if cancelled else "",
        },
        "customer": None,
        "addressee": None,
        "products": [{**product, "mandatory_mark": [], "imei": []}],
        "barcodes": {"upper_barcode": f"%{order_id}%", "lower_barcode": str(order_id)} if with_.barcodes else None,
        "analytics_data": analytics if with_.analytics_data else None,
        "financial_data": financial if with_.financial_data else None,
        "is_express": False,
        "requirements": {"products_requiring_gtd": [], "products_requiring_country": []},
        "parent_posting_number": "",
        "available_actions": [],
        "multi_box_qty": 1,
        "is_multibox": False,
    }


def fbo_list(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, ListRequest)
        picked = _select(seller, req, "fbo", FBO_STATUSES)
    except BadRequest as exc:
        return exc.reply()
    assert req.limit is not None
    page = picked[req.offset : req.offset + req.limit]
    return json_reply({"result": [fbo_posting(seller, o, req.with_) for o in page]})


def fbs_list(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, ListRequest)
        picked = _select(seller, req, "fbs", FBS_STATUSES)
    except BadRequest as exc:
        return exc.reply()
    assert req.limit is not None
    page = picked[req.offset : req.offset + req.limit]
    postings = [fbs_posting(seller, o, req.with_) for o in page]
    return json_reply({"result": {"postings": postings, "has_next": req.offset + req.limit < len(picked)}})


def _route(path: str, method_fn: Callable[[Seller, bytes, Request], Reply]) -> HTTPRouteHandler:
    key = f"POST /ozon{path}"

    @post(f"/ozon{path}", status_code=200, name=key)
    async def handler(request: Request, sandbox: Sandbox) -> Response[bytes]:
        return await ozon_gate(sandbox, request, key, method_fn)

    return handler


ROUTES = [_route("/v2/posting/fbo/list", fbo_list), _route("/v3/posting/fbs/list", fbs_list)]
