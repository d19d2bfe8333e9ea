"""The control API: create sellers, read and set the true stock, advance time, inject faults.

Every error is an RFC 9457 problem document; bodies are validated in full before anything changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put

from app.sandbox._auth import DEFAULT_CATEGORIES, category_name, mask_categories
from app.sandbox._catalog import NO_ROW
from app.sandbox._gate import to_response
from app.sandbox._replies import Reply, json_reply, problem
from app.sandbox._seller import Faults, Sandbox, Seller, SellerSpec
from app.sandbox._simulation import MAX_ADVANCE_HOURS
from app.sandbox._timeutil import utc_micro_z, utc_z

MAX_PRODUCTS = 100_000
MAX_WAREHOUSES = 50


class SellerCreate(msgspec.Struct, forbid_unknown_fields=True):
    marketplace: Literal["wildberries", "ozon"]
    products: Annotated[int, msgspec.Meta(ge=1, le=MAX_PRODUCTS)] = 100
    warehouses: Annotated[int, msgspec.Meta(ge=0, le=MAX_WAREHOUSES)] = 1
    seed: int = 0
    token_categories: list[str] | None = None
    token_type: Literal["personal", "service", "base", "test"] = "personal"
    token_expires_in_days: Annotated[int, msgspec.Meta(ge=-3650, le=3650)] = 180


class FaultsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    error_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0
    latency_jitter_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0
    rate_limits: Literal["real", "off"] = "real"
    malformed_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    endpoint: Annotated[str, msgspec.Meta(max_length=200)] = ""
    retry_after: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 1
    count: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    after: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0


class Advance(msgspec.Struct, forbid_unknown_fields=True):
    hours: Annotated[float, msgspec.Meta(gt=0, le=MAX_ADVANCE_HOURS)]


class StockItem(msgspec.Struct, forbid_unknown_fields=True):
    product_id: str | int
    variant_id: str | int
    warehouse_id: str | int
    quantity: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class StockUpdate(msgspec.Struct, forbid_unknown_fields=True):
    items: Annotated[list[StockItem], msgspec.Meta(max_length=1_000_000)]


class TruthRow(msgspec.Struct):
    product_id: str
    variant_id: str
    warehouse_id: str
    quantity: int


class ControlError(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ControlError(problem(422, f"Invalid body: {exc}")) from None
    except msgspec.DecodeError:
        raise ControlError(problem(400, "The body is not valid JSON")) from None


def _seller(sandbox: Sandbox, seller_id: str) -> Seller:
    seller = sandbox.sellers.get(seller_id)
    if seller is None:
        raise ControlError(problem(404, f"No seller {seller_id!r}"))
    return seller


def summary(seller: Seller) -> dict[str, Any]:
    cat = seller.catalog
    out: dict[str, Any] = {
        "id": seller.id,
        "marketplace": seller.marketplace,
        "seed": seller.spec.seed,
        "products": cat.n_products,
        "variants": cat.n_variants,
        "warehouses": [{"id": str(wh.id), "name": wh.name, "kind": wh.kind} for wh in cat.warehouses],
        "now": utc_z(seller.now),
        "orders": len(seller.sim.orders),
        "faults": msgspec.to_builtins(seller.faults),
        "credentials": seller.credentials(),
        "stats": {
            "requests": dict(seller.stats.requests),
            "rate_limited": dict(seller.stats.rate_limited),
            "faults": dict(seller.stats.faults),
            "violations": seller.stats.violations,
        },
    }
    if seller.wb_token is not None:
        token = seller.wb_token
        out["token"] = {
            "type": token.token_type,
            "categories": mask_categories(token.mask),
            "sid": token.seller_sid,
            "expires_at": utc_z(token.expires_at),
        }
    return out


async def _guard(action: Any) -> Response[bytes]:
    try:
        result = action()
        if asyncio.iscoroutine(result):
            result = await result
    except ControlError as exc:
        return to_response(exc.reply)
    return to_response(result)


@post("/control/sellers", status_code=201)
async def create_seller(request: Request, sandbox: Sandbox) -> Response[bytes]:
    async def action() -> Reply:
        body = _decode(await request.body(), SellerCreate)
        categories = list(DEFAULT_CATEGORIES)
        if body.token_categories is not None:
            if body.marketplace != "wildberries":
                raise ControlError(problem(422, "token_categories only applies to wildberries sellers"))
            unknown = [c for c in body.token_categories if category_name(c) is None]
            if unknown:
                raise ControlError(problem(422, f"Unknown token categories: {', '.join(unknown)}"))
            categories = [n for c in body.token_categories if (n := category_name(c)) is not None]
        spec = SellerSpec(
            body.marketplace, body.products, body.warehouses, body.seed,
            categories, body.token_type, body.token_expires_in_days,
        )  # fmt: skip
        # generation is CPU-bound and self-contained: build off the event loop, register on it
        seller = await asyncio.to_thread(sandbox.build_seller, spec)
        sandbox.register(seller)
        return json_reply(
            {"id": seller.id, "marketplace": seller.marketplace, "credentials": seller.credentials()}, 201
        )

    return await _guard(action)


@get("/control/sellers")
async def list_sellers(sandbox: Sandbox) -> Response[bytes]:
    items = [
        {"id": s.id, "marketplace": s.marketplace, "products": s.catalog.n_products, "now": utc_z(s.now)}
        for s in sandbox.sellers.values()
    ]
    return to_response(json_reply({"items": items}))


@get("/control/sellers/{seller_id:str}")
async def get_seller(seller_id: str, sandbox: Sandbox) -> Response[bytes]:
    return await _guard(lambda: json_reply(summary(_seller(sandbox, seller_id))))


@delete("/control/sellers/{seller_id:str}", status_code=200)
async def delete_seller(seller_id: str, sandbox: Sandbox) -> Response[bytes]:
    if not sandbox.remove(seller_id):
        return to_response(problem(404, f"No seller {seller_id!r}"))
    return to_response(Reply(204))


def truth(seller: Seller, product_filter: str | None, warehouse_filter: str | None) -> list[TruthRow]:
    cat = seller.catalog
    warehouses = [wh for wh in cat.warehouses if warehouse_filter is None or str(wh.id) == warehouse_filter]
    if product_filter is None:
        products: range | list[int] = range(cat.n_products)
    else:
        index = cat.product_index(int(product_filter)) if product_filter.lstrip("-").isdigit() else None
        products = [] if index is None else [index]
    rows: list[TruthRow] = []
    for p in products:
        pid = str(cat.product_ids[p])
        for v in cat.variants_of(p):
            vid = str(cat.variant_ids[v])
            for wh in warehouses:
                q = cat.quantity[wh.index][v]
                if q != NO_ROW:
                    rows.append(TruthRow(product_id=pid, variant_id=vid, warehouse_id=str(wh.id), quantity=q))
    return rows


@get("/control/sellers/{seller_id:str}/stocks")
async def get_stocks(seller_id: str, request: Request, sandbox: Sandbox) -> Response[bytes]:
    def action() -> Reply:
        seller = _seller(sandbox, seller_id)
        query = request.query_params
        return json_reply({"items": truth(seller, query.get("product_id"), query.get("warehouse_id"))})

    return await _guard(action)


def _resolve(seller: Seller, item: StockItem, position: int) -> tuple[int, int]:
    cat = seller.catalog
    try:
        product_id, variant_id, warehouse_id = int(item.product_id), int(item.variant_id), int(item.warehouse_id)
    except ValueError:
        raise ControlError(problem(422, f"items[{position}]: ids must be integers (as strings or numbers)")) from None
    v = cat.variant_index(variant_id)
    if v is None or cat.product_ids[cat.variant_product[v]] != product_id:
        raise ControlError(problem(422, f"items[{position}]: no variant {variant_id} of product {product_id}"))
    wh = cat.warehouse_by_id(warehouse_id)
    if wh is None:
        raise ControlError(problem(422, f"items[{position}]: no warehouse {warehouse_id}"))
    return v, wh.index


@put("/control/sellers/{seller_id:str}/stocks", status_code=200)
async def put_stocks(seller_id: str, request: Request, sandbox: Sandbox) -> Response[bytes]:
    async def action() -> Reply:
        seller = _seller(sandbox, seller_id)
        body = _decode(await request.body(), StockUpdate)
        resolved = [(*_resolve(seller, item, i), item.quantity) for i, item in enumerate(body.items)]
        created = 0
        for v, w, q in resolved:  # logged so that past end-of-day stock stays reconstructible
            seller.sim.stock_log.note(seller.now, v, w, q - max(0, seller.catalog.quantity[w][v]))
            created += seller.catalog.set_quantity(v, w, q)
        return json_reply({"count": len(resolved), "created": created})

    return await _guard(action)


@post("/control/sellers/{seller_id:str}/advance", status_code=200)
async def advance(seller_id: str, request: Request, sandbox: Sandbox) -> Response[bytes]:
    async def action() -> Reply:
        seller = _seller(sandbox, seller_id)
        body = _decode(await request.body(), Advance)
        result = seller.sim.advance(body.hours)
        return json_reply({"now": utc_z(seller.now), **dataclasses.asdict(result)})

    return await _guard(action)


@put("/control/sellers/{seller_id:str}/faults", status_code=200)
async def put_faults(seller_id: str, request: Request, sandbox: Sandbox) -> Response[bytes]:
    async def action() -> Reply:
        seller = _seller(sandbox, seller_id)
        body = _decode(await request.body(), FaultsUpdate)
        seller.faults = Faults(**msgspec.structs.asdict(body))
        seller.reseed_faults()  # the same fault settings give the same sequence of failures
        return json_reply(seller.faults)

    return await _guard(action)


@post("/control/sellers/{seller_id:str}/products/{product_id:str}/touch", status_code=200)
async def touch_product(seller_id: str, product_id: str, sandbox: Sandbox) -> Response[bytes]:
    """Edit a card: its `updatedAt` becomes the seller's simulated now (moves it in the content cursor)."""

    def action() -> Reply:
        seller = _seller(sandbox, seller_id)
        cat = seller.catalog
        index = cat.product_index(int(product_id)) if product_id.lstrip("-").isdigit() else None
        if index is None:
            raise ControlError(problem(404, f"No product {product_id!r}"))
        stamp = cat.touch(index, int(seller.now * 1_000_000))
        return json_reply({"product_id": product_id, "updated_at": utc_micro_z(stamp)})

    return await _guard(action)


@post("/control/sellers/{seller_id:str}/products/{product_id:str}/archive", status_code=200)
async def archive_product(seller_id: str, product_id: str, sandbox: Sandbox) -> Response[bytes]:
    """Ozon: the seller archives (or deletes) a product — it leaves the product list (listed only under
    visibility ``ARCHIVED``) and every stock report."""

    def action() -> Reply:
        seller = _seller(sandbox, seller_id)
        cat = seller.catalog
        if cat.marketplace != "ozon":
            raise ControlError(problem(422, "Only Ozon products can be archived here"))
        index = cat.product_index(int(product_id)) if product_id.lstrip("-").isdigit() else None
        if index is None:
            raise ControlError(problem(404, f"No product {product_id!r}"))
        cat.archive(index)
        return json_reply({"product_id": product_id, "archived": True})

    return await _guard(action)


ROUTES = [
    create_seller, list_sellers, get_seller, delete_seller, get_stocks, put_stocks, advance, put_faults,
    touch_product, archive_product,
]  # fmt: skip
