"""The stock report as CSV and XLSX over the API: the XLSX read back with openpyxl equals the JSON report cell
for cell (headers, merged warehouse blocks, totals, highlights, frozen panes), the CSV opens with the stdlib
csv module in both dialects, and the format follows ``?format=`` or ``Accept``; the filters and ``per=size``."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest

from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PRODUCTS = 14
MARKETPLACE_LABEL = {"wildberries": "Wildberries", "ozon": "Ozon"}
RU_PRODUCT = ["Маркетплейс", "Бренд", "Предмет", "Артикул продавца", "Артикул МП", "Название"]
EN_PRODUCT = ["Marketplace", "Brand", "Subject", "Vendor code", "Marketplace ID", "Title"]


def shaped_stock(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every fifth product out of stock, the next one low (2 units in one place), the rest as they are."""
    order = sorted({i["product_id"] for i in items})
    out, first = [], set()
    for i in items:
        n = order.index(i["product_id"])
        quantity = i["quantity"]
        if n % 5 == 0:
            quantity = 0
        elif n % 5 == 1:
            quantity = 0 if i["product_id"] in first else 2
            first.add(i["product_id"])
        out.append({**i, "quantity": quantity})
    return out


@pytest.fixture(scope="module")
async def synced(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=PRODUCTS, warehouses=2, seed=41)
    # Some products out and some low, so the file has highlighted cells.
    seller.set_stocks(shaped_stock(seller.truth()))
    conn = await connect(client, owner["headers"], seller)
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    yield owner, conn, seller
    seller.delete()


async def json_report(client, owner, **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/reports/stock", params={"limit": 1000, **params}, headers=owner["headers"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["next_cursor"] is None
    return body


def expected_rows(report: dict[str, Any], per: str = "product") -> list[list[Any]]:
    """The table a file must hold for a JSON report, worked out here independently of the server's code."""
    ids = [w["warehouse_id"] for w in report["warehouses"]]
    out = []
    for r in report["rows"]:
        row = [MARKETPLACE_LABEL[r["marketplace"]], r["brand"], r["subject"], r["vendor_code"], r["external_id"],
               r["title"]]  # fmt: skip
        if per == "size":
            row += [r["size"], r["variant_external_id"]]
        row += [r["in_way_to_client"], r["in_way_from_client"], r["orders"], r["total_stock"], r["days_of_cover"]]
        cells = {c["warehouse_id"]: c for c in r["warehouses"]}
        for wid in ids:
            c = cells.get(wid)
            row += [c["stock"], c["orders"], c["days_of_cover"]] if c else [None, None, None]
        out.append(row)
    return out


def expected_totals(report: dict[str, Any], rows: list[list[Any]], first: int, days: int) -> list[Any]:
    def total(i: int) -> Any:
        values = [r[i] for r in rows if isinstance(r[i], int | float)]
        return sum(values) if values else None

    def cover(stock_at: int, orders_at: int) -> Any:
        stock, orders = total(stock_at), total(orders_at)
        return None if stock is None or not orders else round(stock / (orders / days), 1)

    out: list[Any] = ["Итого"] + [None] * (first - 1)
    out += [total(first), total(first + 1), total(first + 2), total(first + 3), cover(first + 3, first + 2)]
    for w in range(len(report["warehouses"])):
        at = first + 5 + 3 * w
        out += [total(at), total(at + 1), cover(at, at + 1)]
    return out


async def test_xlsx_read_back_equals_the_json_report_cell_for_cell(client, synced):
    owner, conn, _seller = synced
    report = await json_report(client, owner, window=14, connection_id=conn["id"])
    resp = await client.get(
        "/api/v1/reports/stock",
        params={"format": "xlsx", "window": 14, "connection_id": conn["id"], "lang": "ru"},
        headers=owner["headers"],
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == XLSX
    assert resp.headers["content-disposition"].startswith('attachment; filename="stock-report-')
    book = openpyxl.load_workbook(io.BytesIO(resp.content))
    assert book.sheetnames == ["Остатки"]
    ws = book["Остатки"]
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    assert grid[0][0].startswith("Остатки на ") and "заказы за 14 дн" in grid[0][0]
    names = [w["name"] for w in report["warehouses"]]
    assert len(names) >= 2  # the seller's warehouses: the FBW aggregate, its FBS ones, order-only FBW ones
    totals_header = ["В пути к клиенту", "В пути от клиента", "Заказы за 14 дн", "Остаток", "Дней запаса"]
    top = RU_PRODUCT + totals_header
    for name in names:
        top += [name, None, None]
    bottom = [None] * (len(RU_PRODUCT) + 5) + ["Остаток", "Заказы", "Дней"] * len(names)
    assert grid[1] == top and grid[2] == bottom
    # Each warehouse block is one merged cell over its three columns; the other headers span both rows.
    merged = {str(r) for r in ws.merged_cells.ranges}
    first_block = len(RU_PRODUCT) + 5
    letters = [openpyxl.utils.get_column_letter(i + 1) for i in range(len(top))]
    for w in range(len(names)):
        assert f"{letters[first_block + 3 * w]}2:{letters[first_block + 3 * w + 2]}2" in merged
    assert all(f"{letters[i]}2:{letters[i]}3" in merged for i in range(first_block))
    rows = expected_rows(report)
    assert len(rows) == PRODUCTS
    assert grid[3 : 3 + PRODUCTS] == rows
    assert grid[3 + PRODUCTS] == expected_totals(report, rows, len(RU_PRODUCT), 14)
    assert len(grid) == 4 + PRODUCTS
    # Frozen: the title and both header rows, and the product columns up to the marketplace id.
    assert ws.freeze_panes == "F4"
    assert ws.auto_filter.ref == f"A3:{letters[-1]}{3 + PRODUCTS}"
    # Out of stock in red, low in amber: exactly the cells the JSON calls so.
    stock_col = len(RU_PRODUCT) + 3
    for i, r in enumerate(report["rows"]):
        fill = ws.cell(row=4 + i, column=stock_col + 1).fill.fgColor.rgb
        assert fill == {"out": "FFFFC7CE", "low": "FFFFEB9C", "in_stock": "00000000"}[r["status"]], r
    assert {r["status"] for r in report["rows"]} >= {"out", "low", "in_stock"}


async def test_csv_opens_with_the_csv_module_in_both_dialects(client, synced):
    owner, conn, _seller = synced
    report = await json_report(client, owner, window=30, connection_id=conn["id"], per="size")
    rows = expected_rows(report, per="size")
    names = [w["name"] for w in report["warehouses"]]
    header = [*RU_PRODUCT, "Размер", "ID размера", "В пути к клиенту", "В пути от клиента", "Заказы за 30 дн",
              "Остаток", "Дней запаса"]  # fmt: skip
    for name in names:
        header += [f"{name}: Остаток", f"{name}: Заказы", f"{name}: Дней"]
    for separator, delimiter in (("comma", ","), ("semicolon", ";")):
        resp = await client.get(
            "/api/v1/reports/stock",
            params={"format": "csv", "separator": separator, "connection_id": conn["id"], "per": "size"},
            headers=owner["headers"],
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/csv")
        assert resp.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM: Excel reads Cyrillic right
        lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig")), delimiter=delimiter))
        assert lines[0] == header
        body = lines[1:-1]
        assert len(body) == len(rows) == len(report["rows"])

        def text(value: Any, comma_decimals: bool = delimiter == ";") -> str:
            if value is None:
                return ""
            if isinstance(value, float):
                return repr(value).replace(".", ",") if comma_decimals else repr(value)
            return str(value)

        assert body == [[text(v) for v in r] for r in rows]
        assert lines[-1][0] == "Итого"
    assert any(r["size"] for r in report["rows"]) and all(r["variant_id"] or r["size"] is None for r in report["rows"])


async def test_the_format_follows_format_then_accept(client, synced):
    owner, conn, _seller = synced
    params = {"connection_id": conn["id"]}
    as_csv = await client.get(
        "/api/v1/reports/stock", params=params, headers={**owner["headers"], "Accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    as_xlsx = await client.get("/api/v1/reports/stock", params=params, headers={**owner["headers"], "Accept": XLSX})
    assert as_xlsx.headers["content-type"] == XLSX and as_xlsx.content[:2] == b"PK"
    preferred = {**owner["headers"], "Accept": "text/csv;q=0.5, application/json"}
    assert (await client.get("/api/v1/reports/stock", params=params, headers=preferred)).json()["rows"]
    forced = await client.get(
        "/api/v1/reports/stock", params={**params, "format": "json"}, headers={**owner["headers"], "Accept": XLSX}
    )
    assert forced.headers["content-type"].startswith("application/json")
    refused = await client.get("/api/v1/reports/stock", headers={**owner["headers"], "Accept": "image/png"})
    assert refused.status_code == 406 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "not_acceptable"
    bad = await client.get("/api/v1/reports/stock", params={"format": "pdf"}, headers=owner["headers"])
    assert bad.status_code == 422


async def test_headers_follow_lang_and_default_to_the_organizations_locale(client, synced):
    owner, conn, _seller = synced
    params = {"format": "csv", "connection_id": conn["id"]}
    en = await client.get("/api/v1/reports/stock", params={**params, "lang": "en"}, headers=owner["headers"])
    assert next(csv.reader(io.StringIO(en.content.decode("utf-8-sig"))))[:6] == EN_PRODUCT
    ru = await client.get("/api/v1/reports/stock", params=params, headers=owner["headers"])
    assert next(csv.reader(io.StringIO(ru.content.decode("utf-8-sig"))))[:6] == RU_PRODUCT
    changed = await client.patch("/api/v1/reports/settings", json={"locale": "en"}, headers=owner["headers"])
    assert changed.status_code == 200 and changed.json()["locale"] == "en"
    try:
        default = await client.get("/api/v1/reports/stock", params=params, headers=owner["headers"])
        assert next(csv.reader(io.StringIO(default.content.decode("utf-8-sig"))))[:6] == EN_PRODUCT
    finally:
        await client.patch("/api/v1/reports/settings", json={"locale": "ru"}, headers=owner["headers"])


async def test_filters_narrow_rows_and_a_warehouse_filter_narrows_the_totals(client, synced):
    owner, conn, _seller = synced
    whole = await json_report(client, owner, connection_id=conn["id"])
    low = whole["low_units"]
    out = await json_report(client, owner, connection_id=conn["id"], stock_status="out")
    assert out["rows"] and {r["product_id"] for r in out["rows"]} == {
        r["product_id"] for r in whole["rows"] if r["total_stock"] <= 0
    }
    attention = await json_report(client, owner, connection_id=conn["id"], stock_status="low_or_out")
    assert {r["product_id"] for r in attention["rows"]} == {
        r["product_id"] for r in whole["rows"] if r["total_stock"] < low
    }
    brand = whole["rows"][0]["brand"]
    by_brand = await json_report(client, owner, connection_id=conn["id"], brand=brand.upper())
    assert by_brand["rows"] and all(r["brand"] == brand for r in by_brand["rows"])
    article = whole["rows"][3]["external_id"]
    assert [r["external_id"] for r in (await json_report(client, owner, search=article))["rows"]] == [article]
    stocked_ids = {c["warehouse_id"] for r in whole["rows"] for c in r["warehouses"] if c["stock"]}
    stocked = next(w for w in whole["warehouses"] if w["warehouse_id"] in stocked_ids)
    one = await json_report(client, owner, connection_id=conn["id"], warehouse_id=stocked["warehouse_id"])
    assert [w["warehouse_id"] for w in one["warehouses"]] == [stocked["warehouse_id"]]
    for r in one["rows"]:
        assert [c["warehouse_id"] for c in r["warehouses"]] == [stocked["warehouse_id"]]
        cell = r["warehouses"][0]
        assert r["total_stock"] == (cell["stock"] or 0) and r["orders"] == cell["orders"]  # rule 7
    other = await register(client, "Other")
    assert (await json_report(client, other, connection_id=conn["id"]))["rows"] == []


async def test_per_size_rows_add_up_to_the_product_rows(client, synced):
    owner, conn, _seller = synced
    products = await json_report(client, owner, connection_id=conn["id"])
    sizes = await json_report(client, owner, connection_id=conn["id"], per="size")
    assert sizes["per"] == "size" and len(sizes["rows"]) > len(products["rows"])
    for p in products["rows"]:
        mine = [r for r in sizes["rows"] if r["product_id"] == p["product_id"]]
        assert sum(r["total_stock"] for r in mine) == p["total_stock"]
        assert sum(r["orders"] for r in mine) == p["orders"]
