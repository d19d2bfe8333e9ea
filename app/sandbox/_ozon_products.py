"""Ozon product methods: `/v3/product/list` (last_id paging) and `/v3/product/info/list` (details)."""

from __future__ import annotations

from bisect import bisect_right

import msgspec
from litestar import Request, Response, post

from app.sandbox._catalog import NO_ROW, Catalog
from app.sandbox._gate import ozon_gate
from app.sandbox._names import BRANDS, DESCRIPTORS, SUBJECTS
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
from app.sandbox._replies import Reply, json_reply
from app.sandbox._seller import Sandbox, Seller
from app.sandbox._timeutil import utc_micro_z

VISIBILITIES = {
    "ALL", "VISIBLE", "INVISIBLE", "EMPTY_STOCK", "NOT_MODERATED", "MODERATED", "DISABLED", "STATE_FAILED",
    "READY_TO_SUPPLY", "VALIDATION_STATE_PENDING", "VALIDATION_STATE_FAIL", "VALIDATION_STATE_SUCCESS",
    "TO_SUPPLY", "IN_SALE", "REMOVED_FROM_SALE", "BANNED", "OVERPRICED", "CRITICALLY_OVERPRICED",
    "EMPTY_BARCODE", "BARCODE_EXISTS", "QUARANTINE", "ARCHIVED", "OVERPRICED_WITH_STOCK", "PARTIAL_APPROVED",
}  # fmt: skip
# Every simulated product is on sale with a price and a barcode: these visibilities select nothing.
EMPTY_VISIBILITIES = {
    "INVISIBLE", "NOT_MODERATED", "DISABLED", "STATE_FAILED", "VALIDATION_STATE_PENDING",
    "VALIDATION_STATE_FAIL", "REMOVED_FROM_SALE", "BANNED", "OVERPRICED", "CRITICALLY_OVERPRICED",
    "EMPTY_BARCODE", "QUARANTINE", "ARCHIVED", "OVERPRICED_WITH_STOCK", "PARTIAL_APPROVED",
}  # fmt: skip


class ListFilter(msgspec.Struct):
    offer_id: list[str] = msgspec.field(default_factory=list)
    product_id: list[str | int] = msgspec.field(default_factory=list)
    visibility: str = "ALL"


class ProductListRequest(msgspec.Struct):
    filter: ListFilter = msgspec.field(default_factory=ListFilter)
    last_id: str = ""
    limit: int | None = None


class ListItem(msgspec.Struct):
    product_id: int
    offer_id: str
    archived: bool
    has_fbo_stocks: bool
    has_fbs_stocks: bool
    is_discounted: bool
    quants: list[dict[str, object]]


class ListResult(msgspec.Struct):
    items: list[ListItem]
    total: int
    last_id: str


class ProductListResponse(msgspec.Struct):
    result: ListResult


class InfoRequest(msgspec.Struct):
    offer_id: list[str] = msgspec.field(default_factory=list)
    product_id: list[str | int] = msgspec.field(default_factory=list)
    sku: list[str | int] = msgspec.field(default_factory=list)


def name_of(cat: Catalog, p: int) -> str:
    subject = SUBJECTS[cat.subject[p]]
    name = f"{subject.noun} {DESCRIPTORS[cat.descriptor[p]]} {BRANDS[cat.brand[p]]}"
    tech = subject.sizes[cat.variant_size[cat.var_start[p]]][0]
    return name if tech == "0" else f"{name}, размер {tech}"


def has_stock(cat: Catalog, p: int, kind: str) -> bool:
    v = cat.var_start[p]
    return any(wh.kind == kind and cat.quantity[wh.index][v] > 0 for wh in cat.warehouses)


def filtered(cat: Catalog, product_ids: list[int], offer_ids: list[str], visibility: str) -> list[int] | None:
    if visibility not in VISIBILITIES:
        raise BadRequest(f"invalid visibility: {visibility!r}")
    if visibility == "ARCHIVED":
        chosen = select_products(cat, product_ids, offer_ids)
        return sorted(cat.archived if chosen is None else cat.archived.intersection(chosen))
    if visibility in EMPTY_VISIBILITIES:
        return []
    selected = select_products(cat, product_ids, offer_ids)
    if cat.archived:  # archived products are listed only under ARCHIVED
        source = range(cat.n_products) if selected is None else selected
        selected = [p for p in source if p not in cat.archived]
    if visibility == "EMPTY_STOCK":
        source = range(cat.n_products) if selected is None else selected
        selected = [p for p in source if not has_stock(cat, p, "fbo") and not has_stock(cat, p, "fbs")]
    return selected


def page_after(cat: Catalog, selected: list[int] | None, after: int | None, limit: int) -> list[int]:
    """The next `limit` products (ascending product_id) after product id `after`."""
    ids = cat.product_ids
    if selected is None:
        start = 0 if after is None else bisect_right(ids, after)
        return list(range(start, min(start + limit, len(ids))))
    start = 0 if after is None else bisect_right(selected, after, key=ids.__getitem__)
    return selected[start : start + limit]


def product_list(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, ProductListRequest)
        limit = check_limit(req.limit, 1000)
        if len(req.filter.product_id) > 1000 or len(req.filter.offer_id) > 1000:
            raise BadRequest("filter: at most 1000 ids")
        cat = seller.catalog
        selected = filtered(cat, ints(req.filter.product_id, "product_id"), req.filter.offer_id, req.filter.visibility)
        page = page_after(cat, selected, decode_cursor(req.last_id), limit)
    except BadRequest as exc:
        return exc.reply()
    items = [
        ListItem(
            product_id=cat.product_ids[p],
            offer_id=cat.offer_id(p),
            archived=p in cat.archived,
            has_fbo_stocks=has_stock(cat, p, "fbo"),
            has_fbs_stocks=has_stock(cat, p, "fbs"),
            is_discounted=False,
            quants=[],
        )
        for p in page
    ]
    total = cat.n_products if selected is None else len(selected)
    last_id = encode_cursor(cat.product_ids[page[-1]]) if page else ""
    return json_reply(ProductListResponse(result=ListResult(items=items, total=total, last_id=last_id)))


def _model_count(cat: Catalog, p: int) -> int:
    model, count = cat.group_ids[p], 1
    for step in (-1, 1):
        q = p + step
        while 0 <= q < cat.n_products and cat.group_ids[q] == model:
            count += 1
            q += step
    return count


def _info_item(cat: Catalog, p: int) -> dict[str, object]:
    v = cat.var_start[p]
    sku = cat.variant_ids[v]
    pid = cat.product_ids[p]
    stocks: list[dict[str, object]] = []
    in_stock = False
    for kind in ("fbo", "fbs"):
        rows = [wh.index for wh in cat.warehouses if wh.kind == kind and cat.quantity[wh.index][v] != NO_ROW]
        if rows:
            pairs = [present_reserved(cat, w, v) for w in rows]
            present, reserved = sum(p for p, _ in pairs), sum(r for _, r in pairs)
            in_stock = in_stock or present > 0
            stocks.append({"present": present, "reserved": reserved, "sku": sku, "source": kind})
    created = utc_micro_z(cat.created_us[p])
    price = cat.price[p]
    image = f"https://cdn1.ozone.ru/s3/multimedia-{pid % 10}/{pid}.jpg"
    return {
        "id": pid,
        "name": name_of(cat, p),
        "offer_id": cat.offer_id(p),
        "sku": sku,
        "barcodes": [f"OZN{sku}"],
        "created_at": created,
        "updated_at": utc_micro_z(cat.updated_us[p]),
        "currency_code": "RUB",
        "description_category_id": 17_000_000 + SUBJECTS[cat.subject[p]].id,
        "type_id": 90_000 + SUBJECTS[cat.subject[p]].id,
        "is_archived": p in cat.archived,
        "is_autoarchived": False,
        "is_discounted": False,
        "is_kgt": False,
        "is_super": False,
        "has_discounted_fbo_item": False,
        "discounted_fbo_stocks": 0,
        "price": f"{price}.00",
        "old_price": f"{price * 13 // 10}.00",
        "min_price": f"{price * 9 // 10}.00",
        "marketing_price": f"{price}.00",
        "vat": "0.2",
        "images": [image],
        "primary_image": [image],
        "color_image": [],
        "images360": [],
        "model_info": {"model_id": cat.group_ids[p], "count": _model_count(cat, p)},
        "sources": [
            {
                "sku": sku,
                "source": "sds",
                "created_at": created,
                "shipment_type": "SHIPMENT_TYPE_GENERAL",
                "quant_code": "",
            }
        ],
        "stocks": {"has_stock": in_stock, "stocks": stocks},
        "statuses": {
            "status": "price_sent",
            "status_name": "Продается",
            "moderate_status": "approved",
            "validation_status": "success",
            "status_description": "",
            "status_failed": "",
            "status_tooltip": "",
            "is_created": True,
            "status_updated_at": created,
        },
        "visibility_details": {"has_price": True, "has_stock": in_stock},
        "volume_weight": SUBJECTS[cat.subject[p]].weight_kg,
        "errors": [],
        "commissions": [],
        "promotions": [],
    }


def product_info_list(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = decode(body, InfoRequest)
        if len(req.offer_id) + len(req.product_id) + len(req.sku) > 1000:
            raise BadRequest("at most 1000 identifiers per request")
        cat = seller.catalog
        selected = select_products(cat, ints(req.product_id, "product_id"), req.offer_id, ints(req.sku, "sku"))
    except BadRequest as exc:
        return exc.reply()
    return json_reply({"items": [_info_item(cat, p) for p in selected or ()]})


@post("/ozon/v3/product/list", status_code=200)
async def product_list_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await ozon_gate(sandbox, request, "POST /ozon/v3/product/list", product_list)


@post("/ozon/v3/product/info/list", status_code=200)
async def product_info_list_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await ozon_gate(sandbox, request, "POST /ozon/v3/product/info/list", product_info_list)


ROUTES = [product_list_route, product_info_list_route]
