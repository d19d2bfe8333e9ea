"""Ozon stock methods: per product (v4), per warehouse (FBS v2, FBO v1), FBO analytics, FBS warehouses.

Quantities: the sandbox keeps the *available* units per row; Ozon's `present` includes `reserved`
(units of orders awaiting shipment), so `present = available + reserved` and `free_stock = available`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from app.sandbox._catalog import NO_ROW, Catalog
from app.sandbox._gate import ozon_gate
from app.sandbox._ozon_common import (
    BadRequest,
    check_limit,
    decode,
    decode_cursor,
    encode_cursor,
    ints,
    present_reserved,
    select_products,
)
from app.sandbox._ozon_products import filtered, name_of, page_after
from app.sandbox._replies import Reply, json_reply
from app.sandbox._seller import Sandbox, Seller


class StocksFilter(msgspec.Struct):
    offer_id: list[str] = msgspec.field(default_factory=list)
    product_id: list[str | int] = msgspec.field(default_factory=list)
    visibility: str = "ALL"
    with_quant: dict[str, bool] | None = None


class StocksRequest(msgspec.Struct):
    filter: StocksFilter | None = None
    cursor: str = ""
    limit: int | None = None


class FbsRequest(msgspec.Struct):
    cursor: str = ""
    limit: int | None = None
    offer_id: list[str] = msgspec.field(default_factory=list)
    sku: list[str | int] = msgspec.field(default_factory=list)


class FboRequest(msgspec.Struct):
    cursor: str = ""
    limit: int | None = None
    offer_ids: list[str] = msgspec.field(default_factory=list)
    skus: list[str | int] = msgspec.field(default_factory=list)


class AnalyticsRequest(msgspec.Struct):
    skus: list[str | int] | None = None
    cluster_ids: list[str | int] = msgspec.field(default_factory=list)
    macrolocal_cluster_ids: list[str | int] = msgspec.field(default_factory=list)
    warehouse_ids: list[str | int] = msgspec.field(default_factory=list)
    item_tags: list[str] = msgspec.field(default_factory=list)
    turnover_grades: list[str] = msgspec.field(default_factory=list)


class WarehouseListRequest(msgspec.Struct):
    limit: int | None = None
    cursor: str = ""
    warehouse_ids: list[str | int] = msgspec.field(default_factory=list)


def product_stocks(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, StocksRequest)
        if req.filter is None:
            raise BadRequest("filter: value is required")
        limit = check_limit(req.limit, 1000)
        cat = seller.catalog
        flt = req.filter
        selected = filtered(cat, ints(flt.product_id, "product_id"), flt.offer_id, flt.visibility)
        page = page_after(cat, selected, decode_cursor(req.cursor), limit)
    except BadRequest as exc:
        return exc.reply()
    items = []
    for p in page:
        v = cat.var_start[p]
        stocks = []
        for kind in ("fbo", "fbs"):
            rows = [wh for wh in cat.warehouses if wh.kind == kind and cat.quantity[wh.index][v] != NO_ROW]
            if not rows:
                continue
            present = reserved = 0
            for wh in rows:
                pr, rs = present_reserved(cat, wh.index, v)
                present += pr
                reserved += rs
            stocks.append(
                {
                    "type": kind,
                    "present": present,
                    "reserved": reserved,
                    "sku": cat.variant_ids[v],
                    "shipment_type": "SHIPMENT_TYPE_GENERAL",
                    "warehouse_ids": [str(wh.id) for wh in rows] if kind == "fbs" else [],
                }
            )
        items.append({"offer_id": cat.offer_id(p), "product_id": cat.product_ids[p], "stocks": stocks})
    total = cat.n_products if selected is None else len(selected)
    cursor = encode_cursor(cat.product_ids[page[-1]]) if page else ""
    return json_reply({"cursor": cursor, "total": total, "items": items})


def _row_page(cat: Catalog, kind: str, variants: list[int] | None, cursor: str, limit: int) -> tuple[list[int], bool]:
    """A page of packed row keys after the cursor key, and whether more rows follow."""
    keys: Sequence[int]
    if variants is None:
        keys = cat.rows(kind)
    else:
        width = len(cat.warehouses)
        members = [wh.index for wh in cat.warehouses if wh.kind == kind]
        keys = [v * width + w for v in variants for w in members if cat.quantity[w][v] != NO_ROW]
    after = decode_cursor(cursor)
    start = 0 if after is None else bisect_right(keys, after)
    return list(keys[start : start + limit]), start + limit < len(keys)


def _variants(cat: Catalog, offer_ids: list[str], skus: list[int]) -> list[int] | None:
    products = select_products(cat, [], offer_ids, skus)
    return None if products is None else [cat.var_start[p] for p in products]


def fbs_by_warehouse(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, FbsRequest)
        limit = check_limit(req.limit, 1000)
        cat = seller.catalog
        page, has_next = _row_page(cat, "fbs", _variants(cat, req.offer_id, ints(req.sku, "sku")), req.cursor, limit)
    except BadRequest as exc:
        return exc.reply()
    width = len(cat.warehouses)
    products = []
    for key in page:
        v, w = divmod(key, width)
        p = cat.variant_product[v]
        present, reserved = present_reserved(cat, w, v)
        products.append(
            {
                "sku": cat.variant_ids[v],
                "offer_id": cat.offer_id(p),
                "product_id": cat.product_ids[p],
                "warehouse_id": cat.warehouses[w].id,
                "warehouse_name": cat.warehouses[w].name,
                "present": present,
                "reserved": reserved,
                "free_stock": cat.quantity[w][v],
            }
        )
    return json_reply({"cursor": encode_cursor(page[-1]) if page else "", "has_next": has_next, "products": products})


def fbo_by_warehouse(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, FboRequest)
        limit = check_limit(req.limit, 1000)
        cat = seller.catalog
        variants = _variants(cat, req.offer_ids, ints(req.skus, "skus"))
        page, has_next = _row_page(cat, "fbo", variants, req.cursor, limit)
    except BadRequest as exc:
        return exc.reply()
    width = len(cat.warehouses)
    products = []
    for key in page:
        v, w = divmod(key, width)
        p = cat.variant_product[v]
        present, reserved = present_reserved(cat, w, v)
        products.append(
            {
                "sku": cat.variant_ids[v],
                "offer_id": cat.offer_id(p),
                "product_id": cat.product_ids[p],
                "warehouse_id": cat.warehouses[w].id,
                "present": present,
                "reserved": reserved,
            }
        )
    return json_reply({"cursor": encode_cursor(page[-1]) if page else "", "has_next": has_next, "products": products})


def _grade(idc: float, ads: float) -> str:
    if ads <= 0:
        return "NO_SALES"
    if idc < 28:
        return "DEFICIT"
    if idc < 56:
        return "POPULAR"
    return "ACTUAL" if idc < 120 else "SURPLUS"


def analytics_stocks(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, AnalyticsRequest)
        if not req.skus:
            raise BadRequest("skus: value is required")
        if len(req.skus) > 100:
            raise BadRequest("skus: at most 100 items")
        if req.cluster_ids and req.macrolocal_cluster_ids:
            raise BadRequest("cluster_ids and macrolocal_cluster_ids cannot be used together")
        skus = ints(req.skus, "skus")
        clusters = set(ints(req.cluster_ids, "cluster_ids"))
        warehouses = set(ints(req.warehouse_ids, "warehouse_ids"))
    except BadRequest as exc:
        return exc.reply()
    cat = seller.catalog
    scale = seller.sim.scale
    items = []
    for sku in dict.fromkeys(skus):
        v = cat.variant_index(sku)
        if v is None:
            continue
        p = cat.variant_product[v]
        for wh in cat.warehouses_of_kind("fbo"):
            available = cat.quantity[wh.index][v]
            if available == NO_ROW or (clusters and wh.cluster_id not in clusters):
                continue
            if warehouses and wh.id not in warehouses:
                continue
            ads = round(cat.daily_rate[v] * scale, 2)
            idc = round(available / ads, 1) if ads > 0 else 0.0
            grade = _grade(idc, ads)
            items.append(
                {
                    "sku": sku,
                    "offer_id": cat.offer_id(p),
                    "name": name_of(cat, p),
                    "warehouse_id": wh.id,
                    "warehouse_name": wh.name,
                    "cluster_id": wh.cluster_id,
                    "cluster_name": wh.cluster_name,
                    "available_stock_count": available,
                    "valid_stock_count": 0,
                    "transit_stock_count": (sku // 7) % 5,
                    "requested_stock_count": 0,
                    "return_from_customer_stock_count": (sku // 11) % 3,
                    "return_to_seller_stock_count": 0,
                    "other_stock_count": 0,
                    "excess_stock_count": 0,
                    "expiring_stock_count": 0,
                    "stock_defect_stock_count": 0,
                    "transit_defect_stock_count": 0,
                    "waiting_docs_stock_count": 0,
                    "ads": ads,
                    "ads_cluster": ads,
                    "idc": idc,
                    "idc_cluster": idc,
                    "days_without_sales": 0 if ads > 0 else 28,
                    "days_without_sales_cluster": 0 if ads > 0 else 28,
                    "turnover_grade": grade,
                    "turnover_grade_cluster": grade,
                    "item_tags": [],
                }
            )
    return json_reply({"items": items})


def warehouse_list(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, WarehouseListRequest)
        limit = check_limit(req.limit, 200)
        wanted = set(ints(req.warehouse_ids, "warehouse_ids"))
        after = decode_cursor(req.cursor)
    except BadRequest as exc:
        return exc.reply()
    fbs = [wh for wh in seller.catalog.warehouses_of_kind("fbs") if not wanted or wh.id in wanted]
    start = 0 if after is None else next((i + 1 for i, wh in enumerate(fbs) if wh.id == after), len(fbs))
    page = fbs[start : start + limit]
    warehouses = [
        {
            "warehouse_id": wh.id,
            "name": wh.name,
            "status": "created",
            "warehouse_type": "FBS",
            "is_rfbs": False,
            "is_express": False,
            "is_kgt": False,
            "is_economy": False,
            "has_entrusted_acceptance": False,
            "address_info": {"address": f"{wh.name}, Россия", "latitude": 55.75, "longitude": 37.62, "utc": "+03:00"},
            "working_days": ["1", "2", "3", "4", "5"],
            "first_mile_type": {"first_mile_type": "DropOff"},
        }
        for wh in page
    ]
    return json_reply(
        {
            "warehouses": warehouses,
            "cursor": encode_cursor(page[-1].id) if page else "",
            "has_next": start + limit < len(fbs),
        }
    )


def _route(path: str, method_fn: Callable[[Seller, bytes, Request], Reply]) -> HTTPRouteHandler:
    key = f"POST /ozon{path}"

    @post(f"/ozon{path}", status_code=200, name=key)
    async def handler(request: Request, sandbox: Sandbox) -> Response[bytes]:
        return await ozon_gate(sandbox, request, key, method_fn)

    return handler


ROUTES = [
    _route("/v4/product/info/stocks", product_stocks),
    _route("/v2/product/info/stocks-by-warehouse/fbs", fbs_by_warehouse),
    _route("/v1/product/info/stocks-by-warehouse/fbo", fbo_by_warehouse),
    _route("/v1/analytics/stocks", analytics_stocks),
    _route("/v2/warehouse/list", warehouse_list),
]
