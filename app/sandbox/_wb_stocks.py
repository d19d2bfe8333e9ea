"""WB stock: analytics stocks-report (FBW and FBS) and the Marketplace seller warehouses / FBS stocks.

FBW stock is aggregated into one row per size at `warehouseId = -999999` ("Склад WB"), as WB has
served it since 15 Aug 2026. Sizes with only seller-warehouse (FBS) stock have no FBW row at all.
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post

from app.sandbox._catalog import NO_ROW, Catalog
from app.sandbox._gate import WbEndpoint, wb_gate
from app.sandbox._ratelimit import Limit
from app.sandbox._replies import Reply, analytics_error, json_reply, marketplace_error
from app.sandbox._seller import Sandbox, Seller

MAX_ROWS = 250_000
MAX_NM_IDS = 1000
MAX_CHRT_IDS = 1000


class InventoryRequest(msgspec.Struct):
    nmIds: list[int] = msgspec.field(default_factory=list)
    chrtIds: list[int] = msgspec.field(default_factory=list)
    limit: int = MAX_ROWS
    offset: int = 0


class WbRow(msgspec.Struct):
    nmId: int
    chrtId: int
    warehouseId: int
    warehouseName: str
    regionName: str
    quantity: int
    inWayToClient: int
    inWayFromClient: int


class SellerRow(msgspec.Struct):
    nmId: int
    chrtId: int
    warehouseId: int
    warehouseName: str
    regionName: str
    quantity: int


class WbItems(msgspec.Struct):
    items: list[WbRow]


class SellerItems(msgspec.Struct):
    items: list[SellerRow]


class WbInventory(msgspec.Struct):
    data: WbItems


class SellerInventory(msgspec.Struct):
    data: SellerItems


class StocksRequest(msgspec.Struct):
    chrtIds: list[int] | None = None
    skus: list[str | int] | None = None


class StockAmount(msgspec.Struct):
    chrtId: int
    amount: int


class StocksResponse(msgspec.Struct):
    stocks: list[StockAmount]


class SellerWarehouse(msgspec.Struct):
    name: str
    officeId: int
    id: int
    cargoType: int
    deliveryType: int
    isDeleting: bool
    isProcessing: bool


def _inventory_keys(cat: Catalog, kind: str, req: InventoryRequest) -> list[int] | None:
    """Packed row keys (variant * W + warehouse) for the request's filter; None = all rows (cached)."""
    if not req.nmIds:
        return None
    width = len(cat.warehouses)
    members = [wh.index for wh in cat.warehouses if wh.kind == kind]
    chrt = set(req.chrtIds)
    keys: list[int] = []
    for p in sorted({i for nm in req.nmIds if (i := cat.product_index(nm)) is not None}):
        for v in cat.variants_of(p):
            if chrt and cat.variant_ids[v] not in chrt:
                continue
            keys.extend(v * width + w for w in members if cat.quantity[w][v] != NO_ROW)
    return keys


def _parse_inventory(body: bytes) -> InventoryRequest | Reply:
    try:
        req = msgspec.json.decode(body, type=InventoryRequest)
    except msgspec.DecodeError as exc:
        return analytics_error(400, "Invalid request body", f"code=400, message={exc}")
    if not 1 <= req.limit <= MAX_ROWS:
        return analytics_error(400, "Invalid request body", f"limit: must be from 1 to {MAX_ROWS}")
    if req.offset < 0:
        return analytics_error(400, "Invalid request body", "offset: must be non-negative")
    if len(req.nmIds) > MAX_NM_IDS:
        return analytics_error(400, "Invalid request body", f"nmIds: at most {MAX_NM_IDS} items")
    return req


def wb_warehouses(seller: Seller, body: bytes, request: Request) -> Reply:
    req = _parse_inventory(body)
    if isinstance(req, Reply):
        return req
    cat = seller.catalog
    keys = _inventory_keys(cat, "fbw", req)
    page = (cat.rows("fbw") if keys is None else keys)[req.offset : req.offset + req.limit]
    width = len(cat.warehouses)
    nm_ids, chrt_ids, product_of = cat.product_ids, cat.variant_ids, cat.variant_product
    rows = []
    for key in page:
        v, w = divmod(key, width)
        wh = cat.warehouses[w]
        to_client, from_client = cat.pending[w], cat.returning[w]
        rows.append(
            WbRow(
                nmId=nm_ids[product_of[v]],
                chrtId=chrt_ids[v],
                warehouseId=wh.id,
                warehouseName=wh.name,
                regionName=wh.region,
                quantity=cat.quantity[w][v],
                inWayToClient=to_client[v] if to_client is not None else 0,
                inWayFromClient=from_client[v] if from_client is not None else 0,
            )
        )
    return json_reply(WbInventory(data=WbItems(items=rows)))


def seller_warehouses(seller: Seller, body: bytes, request: Request) -> Reply:
    req = _parse_inventory(body)
    if isinstance(req, Reply):
        return req
    cat = seller.catalog
    keys = _inventory_keys(cat, "fbs", req)
    page = (cat.rows("fbs") if keys is None else keys)[req.offset : req.offset + req.limit]
    if not len(page):
        return Reply(204)
    width = len(cat.warehouses)
    rows = []
    for key in page:
        v, w = divmod(key, width)
        wh = cat.warehouses[w]
        rows.append(
            SellerRow(
                nmId=cat.product_ids[cat.variant_product[v]],
                chrtId=cat.variant_ids[v],
                warehouseId=wh.id,
                warehouseName=wh.name,
                regionName=wh.region,
                quantity=cat.quantity[w][v],
            )
        )
    return json_reply(SellerInventory(data=SellerItems(items=rows)))


def list_warehouses(seller: Seller, body: bytes, request: Request) -> Reply:
    items = [
        SellerWarehouse(
            name=wh.name,
            officeId=wh.office_id,
            id=wh.id,
            cargoType=1,
            deliveryType=1,
            isDeleting=False,
            isProcessing=False,
        )
        for wh in seller.catalog.warehouses_of_kind("fbs")
    ]
    return json_reply(items)


def fbs_stocks(seller: Seller, body: bytes, request: Request) -> Reply:
    cat = seller.catalog
    raw_id = request.path_params.get("warehouseId", "")
    try:
        warehouse_id = int(raw_id)
    except ValueError:
        return marketplace_error(400, "IncorrectParameter", "IncorrectParameter")
    try:
        req = msgspec.json.decode(body, type=StocksRequest)
    except msgspec.DecodeError:
        return marketplace_error(400, "IncorrectRequestBody", "Incorrect required body")
    if req.skus is not None:
        return marketplace_error(
            400, "SKUUploadDisabled", "Uploading stock is not allowed by 'sku'. Please use the 'chrtId' key"
        )
    if req.chrtIds is None:
        return marketplace_error(400, "IncorrectRequestBody", "Incorrect required body")
    if len(req.chrtIds) > MAX_CHRT_IDS:
        return marketplace_error(400, "IncorrectRequest", f"chrtIds: at most {MAX_CHRT_IDS} items")
    wh = cat.warehouse_by_id(warehouse_id)
    if wh is None or wh.kind != "fbs":
        return marketplace_error(404, "NotFound", "")
    qty = cat.quantity[wh.index]
    stocks = []
    for chrt in dict.fromkeys(req.chrtIds):
        v = cat.variant_index(chrt)
        if v is not None and qty[v] != NO_ROW:
            stocks.append(StockAmount(chrtId=chrt, amount=qty[v]))
    return json_reply(StocksResponse(stocks=stocks))


_ANALYTICS = 2
_MARKETPLACE = 4
_STOCKS_REPORT = Limit(60, 3, 1)
_MARKETPLACE_LIMIT = Limit(60, 300, 20)
_MARKETPLACE_BASE = Limit(60, 150, 10)

WB_WAREHOUSES = WbEndpoint(
    "POST /wb/api/analytics/v1/stocks-report/wb-warehouses", "analytics", _ANALYTICS,
    "analytics.wb-warehouses", _STOCKS_REPORT, None,
)  # fmt: skip
SELLER_WAREHOUSES = WbEndpoint(
    "POST /wb/api/analytics/v1/stocks-report/seller-warehouses", "analytics", _ANALYTICS,
    "analytics.seller-warehouses", _STOCKS_REPORT, None,
)  # fmt: skip
WAREHOUSES = WbEndpoint(
    "GET /wb/api/v3/warehouses", "marketplace", _MARKETPLACE,
    "marketplace.warehouses", _MARKETPLACE_LIMIT, _MARKETPLACE_BASE, cost_4xx=10,
)  # fmt: skip
STOCKS = WbEndpoint(
    "POST /wb/api/v3/stocks/{warehouseId}", "marketplace", _MARKETPLACE,
    "marketplace.stocks", _MARKETPLACE_LIMIT, _MARKETPLACE_BASE, cost_4xx=10,
)  # fmt: skip


@post("/wb/api/analytics/v1/stocks-report/wb-warehouses", status_code=200)
async def wb_warehouses_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, WB_WAREHOUSES, wb_warehouses)


@post("/wb/api/analytics/v1/stocks-report/seller-warehouses", status_code=200)
async def seller_warehouses_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, SELLER_WAREHOUSES, seller_warehouses)


@get("/wb/api/v3/warehouses")
async def warehouses_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, WAREHOUSES, list_warehouses)


@post("/wb/api/v3/stocks/{warehouseId:str}", status_code=200)
async def stocks_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, STOCKS, fbs_stocks)


ROUTES = [wb_warehouses_route, seller_warehouses_route, warehouses_route, stocks_route]
