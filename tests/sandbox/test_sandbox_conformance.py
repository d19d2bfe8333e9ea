"""The sandbox's responses validate against the official WB / Ozon OpenAPI documents.

For every (method, path) that both a spec and the sandbox define, real responses (success and errors)
are validated with jsonschema against the schema the spec gives for their status code. The specs are
read from `../shared/reference/specs/` beside the checkout and are never copied into the repository.
Paths newer than the snapshot are checked against the documented shapes at the end of this module.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from app.sandbox import create_sandbox_app
from tests.sandbox._support import MakeSeller, SandboxSeller

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = REPO_ROOT.parent / "shared" / "reference" / "specs"
SPEC_FILES = {
    "wb-general": ("wb", "wildberries/01-general.yaml"),
    "wb-items": ("wb", "wildberries/02-items.yaml"),
    "wb-analytics": ("wb", "wildberries/11-analytics.yaml"),
    "wb-reports": ("wb", "wildberries/12-reports.yaml"),
    "ozon": ("ozon", "ozon/seller-api-stock-subset.json"),
}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}

Key = tuple[str, str, str]  # (spec name, METHOD, spec path)
Sample = tuple[Key, httpx.Response]


# ---- loading and converting OpenAPI 3.0 schemas ----------------------------------------------------------


def _errata(name: str, doc: dict[str, Any]) -> None:
    """Known mistakes in the snapshots, fixed so that real, correct responses validate."""
    if name == "ozon":
        # `quants` is declared as one object, but the API (and the spec's own example) returns an array.
        item = doc["components"]["schemas"]["productv3GetProductListResponseItem"]["properties"]
        item["quants"] = {
            "type": "array",
            "items": {"$ref": "#/components/schemas/productv3GetProductListResponseItemQuant"},
        }


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, Any]]:
    if not SPECS_DIR.is_dir():
        message = f"official API specs not found at {SPECS_DIR}; response conformance was not checked"
        if os.environ.get("STOCK_TRACKER_REQUIRE_SPECS") == "1":
            pytest.fail(message + " (STOCK_TRACKER_REQUIRE_SPECS=1)")
        pytest.skip(message)
    loaded = {}
    for name, (_, relative) in SPEC_FILES.items():
        text = (SPECS_DIR / relative).read_text(encoding="utf-8")
        doc = json.loads(text) if relative.endswith(".json") else yaml.safe_load(text)
        _errata(name, doc)
        loaded[name] = doc
    return loaded


def _pointer(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs are expected, got {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(node: Any, doc: dict[str, Any], stack: frozenset[str] = frozenset()) -> Any:
    """Inline `$ref`s and turn OpenAPI 3.0 `nullable: true` into a JSON Schema null alternative."""
    if isinstance(node, list):
        return [to_json_schema(item, doc, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        return {} if ref in stack else to_json_schema(_pointer(doc, ref), doc, stack | {ref})
    out = {key: to_json_schema(value, doc, stack) for key, value in node.items()}
    if out.pop("nullable", None) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(doc: dict[str, Any], method: str, path: str, status: int, media_type: str) -> Any:
    """The schema for one status (falling back to `default`); raises LookupError when undocumented."""
    responses = doc["paths"][path][method.lower()]["responses"]
    entry = responses.get(str(status), responses.get("default"))
    if entry is None:
        raise LookupError(f"status {status} is not documented (documented: {sorted(responses)})")
    entry = to_json_schema(entry, doc)
    content = entry.get("content") or {}
    if not content:
        return None
    chosen = content.get(media_type) or next((c for t, c in content.items() if "json" in t), None)
    if chosen is None:
        raise LookupError(f"media type {media_type} is not documented for {status} ({sorted(content)})")
    return chosen.get("schema")


def sandbox_routes() -> set[tuple[str, str]]:
    routes = set()
    for route in create_sandbox_app(rate_limits=False).routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for method in getattr(route, "methods", set()):
            if method in HTTP_METHODS:
                routes.add((method, path))
    return routes


def shared_paths(specs: dict[str, dict[str, Any]]) -> set[Key]:
    ours = sandbox_routes()
    shared = set()
    for name, (prefix, _) in SPEC_FILES.items():
        for path, operations in specs[name]["paths"].items():
            for method in operations:
                if method.upper() in HTTP_METHODS and (method.upper(), f"/{prefix}{path}") in ours:
                    shared.add((name, method.upper(), path))
    return shared


# ---- exercising the sandbox --------------------------------------------------------------------------------


def wb_samples(make_seller: MakeSeller, http: httpx.Client) -> Iterator[Sample]:
    seller = make_seller("wildberries", products=150, warehouses=2, seed=31)
    seller.advance(24)
    cards = ("wb-items", "POST", "/content/v2/get/cards/list")
    stocks = ("wb-items", "POST", "/api/v3/stocks/{warehouseId}")
    fbw = ("wb-analytics", "POST", "/api/analytics/v1/stocks-report/wb-warehouses")
    orders = ("wb-reports", "GET", "/api/v1/supplier/orders")
    ping = ("wb-general", "GET", "/ping")
    warehouses = ("wb-items", "GET", "/api/v3/warehouses")

    yield ping, seller.wb("GET", "/ping")
    yield ping, http.get("/wb/ping")
    yield cards, seller.wb("POST", "/content/v2/get/cards/list", json={"settings": {"cursor": {"limit": 100}}})
    yield (
        cards,
        seller.wb("POST", "/content/v2/get/cards/list", json={"settings": {"filter": {"textSearch": "nothing"}}}),
    )
    yield cards, seller.wb("POST", "/content/v2/get/cards/list", json={"settings": {"cursor": {"limit": 500}}})
    yield cards, http.post("/wb/content/v2/get/cards/list", json={})
    listed = seller.wb("GET", "/api/v3/warehouses")
    yield warehouses, listed
    yield warehouses, http.get("/wb/api/v3/warehouses", headers={"Authorization": "x.y.z"})
    chrt_ids = [int(r["variant_id"]) for r in seller.truth()][:1000]
    wid = listed.json()[0]["id"]
    yield stocks, seller.wb("POST", f"/api/v3/stocks/{wid}", json={"chrtIds": chrt_ids})
    yield stocks, seller.wb("POST", f"/api/v3/stocks/{wid}", json={"skus": ["2000000000015"]})
    yield stocks, seller.wb("POST", f"/api/v3/stocks/{wid}", json={"chrtIds": list(range(1001))})
    yield stocks, seller.wb("POST", "/api/v3/stocks/1", json={"chrtIds": [1]})
    yield fbw, seller.wb("POST", "/api/analytics/v1/stocks-report/wb-warehouses", json={})
    yield fbw, seller.wb("POST", "/api/analytics/v1/stocks-report/wb-warehouses", json={"limit": 10**6})
    base = make_seller("wildberries", products=5, token_type="base")
    yield fbw, base.wb("POST", "/api/analytics/v1/stocks-report/wb-warehouses", json={})
    yield orders, seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "2000-01-01"})
    yield orders, seller.wb("GET", "/api/v1/supplier/orders")
    yield orders, seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "soon"})
    content_only = make_seller("wildberries", products=5, token_categories=["content"])
    yield orders, content_only.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "2024-01-01"})

    limited = make_seller("wildberries", products=5, rate_limits="real")
    for key, call in [
        (ping, lambda: limited.wb("GET", "/ping")),
        (cards, lambda: limited.wb("POST", "/content/v2/get/cards/list", json={})),
        (fbw, lambda: limited.wb("POST", "/api/analytics/v1/stocks-report/wb-warehouses", json={})),
        (orders, lambda: limited.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "2024-01-01"})),
    ]:
        yield key, _until_429(call)


def _until_429(call: Callable[[], httpx.Response]) -> httpx.Response:
    for _ in range(30):
        response = call()
        if response.status_code == 429:
            return response
    raise AssertionError("expected a 429 within 30 back-to-back requests")


def ozon_samples(make_seller: MakeSeller) -> Iterator[Sample]:
    seller = make_seller("ozon", products=80, warehouses=2, seed=32)
    seller.advance(24)
    product_list = ("ozon", "POST", "/v3/product/list")
    info = ("ozon", "POST", "/v3/product/info/list")
    stocks = ("ozon", "POST", "/v4/product/info/stocks")
    analytics = ("ozon", "POST", "/v1/analytics/stocks")
    listed = seller.ozon("/v3/product/list", {"filter": {"visibility": "ALL"}, "limit": 50})
    yield product_list, listed
    yield product_list, seller.ozon("/v3/product/list", {"limit": 5000})
    yield product_list, seller.ozon("/v3/product/list", {"limit": 5}, headers={"Api-Key": "wrong"})
    ids = [str(i["product_id"]) for i in listed.json()["result"]["items"]]
    yield info, seller.ozon("/v3/product/info/list", {"product_id": ids})
    yield info, seller.ozon("/v3/product/info/list", {"sku": ["x"]})
    yield stocks, seller.ozon("/v4/product/info/stocks", {"filter": {"visibility": "ALL"}, "limit": 100})
    yield stocks, seller.ozon("/v4/product/info/stocks", {"limit": 100})
    skus = [str(i["sku"]) for i in seller.ozon("/v3/product/info/list", {"product_id": ids}).json()["items"]]
    yield analytics, seller.ozon("/v1/analytics/stocks", {"skus": skus})
    yield analytics, seller.ozon("/v1/analytics/stocks", {"skus": []})


# ---- the tests ---------------------------------------------------------------------------------------------


def test_responses_conform_to_official_specs(
    specs: dict[str, dict[str, Any]], make_seller: MakeSeller, http: httpx.Client
) -> None:
    shared = shared_paths(specs)
    assert len(shared) >= 9, f"expected the stock paths to be shared with the specs, got {sorted(shared)}"
    samples = [*wb_samples(make_seller, http), *ozon_samples(make_seller)]
    problems: list[str] = []
    statuses: dict[Key, set[int]] = {}
    for key, response in samples:
        name, method, path = key
        statuses.setdefault(key, set()).add(response.status_code)
        label = f"{method} {path} → {response.status_code}"
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        try:
            schema = response_schema(specs[name], method, path, response.status_code, media_type)
        except LookupError as exc:
            problems.append(f"{label}: {exc}")
            continue
        if schema is None:
            continue
        validator = jsonschema.Draft4Validator(copy.deepcopy(schema))
        for error in list(validator.iter_errors(response.json()))[:3]:
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{label}: at '{where}': {error.message[:200]}")
    not_exercised = shared - statuses.keys()
    assert not not_exercised, f"paths shared with the specs but not exercised here: {sorted(not_exercised)}"
    assert not problems, "responses that do not match the official specs:\n" + "\n".join(problems)
    assert all(any(s >= 400 for s in codes) for codes in statuses.values()), statuses


def _keys(rows: list[dict[str, Any]]) -> set[frozenset[str]]:
    return {frozenset(row) for row in rows}


def test_newer_paths_have_the_documented_shapes(make_seller: MakeSeller) -> None:
    """Paths newer than the snapshot, checked against the shapes in marketplaces.md (§1.8, §2.4, §2.7)."""
    wb: SandboxSeller = make_seller("wildberries", products=60, warehouses=2)
    body = wb.wb(
        "POST", "/api/analytics/v1/stocks-report/seller-warehouses", json={"limit": 250000, "offset": 0}
    ).json()
    assert set(body) == {"data"}
    assert set(body["data"]) == {"items"}
    assert _keys(body["data"]["items"]) == {
        frozenset({"nmId", "chrtId", "warehouseId", "warehouseName", "regionName", "quantity"})
    }

    ozon = make_seller("ozon", products=60, warehouses=2)
    fbs = ozon.ozon("/v2/product/info/stocks-by-warehouse/fbs", {"limit": 100}).json()
    assert set(fbs) == {"cursor", "has_next", "products"}
    assert _keys(fbs["products"]) == {
        frozenset(
            {"sku", "offer_id", "product_id", "warehouse_id", "warehouse_name", "present", "reserved", "free_stock"}
        )
    }
    fbo = ozon.ozon("/v1/product/info/stocks-by-warehouse/fbo", {"limit": 100}).json()
    assert set(fbo) == {"cursor", "has_next", "products"}
    assert _keys(fbo["products"]) == {
        frozenset({"sku", "offer_id", "product_id", "warehouse_id", "present", "reserved"})
    }
    listed = ozon.ozon("/v2/warehouse/list", {"limit": 200}).json()
    assert set(listed) == {"warehouses", "cursor", "has_next"}
    for warehouse in listed["warehouses"]:
        assert {
            "warehouse_id",
            "name",
            "status",
            "is_rfbs",
            "is_express",
            "is_kgt",
            "address_info",
            "working_days",
        } <= set(warehouse)
        assert {"address", "latitude", "longitude", "utc"} == set(warehouse["address_info"])
    for response in (fbs, fbo):
        for row in response["products"]:
            assert all(isinstance(row[k], int) for k in ("sku", "product_id", "warehouse_id", "present", "reserved"))
