"""SheetsClient over real HTTP against the sandbox's Google stand-in: a report grid in, the same grid back."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.config import load_settings
from app.integrations.marketplace import Retry
from app.integrations.sheets import (
    SheetsClient,
    SheetsCredentialsError,
    SheetsGrantRevoked,
    SheetsNotFound,
    SheetsPermissionDenied,
    SheetsUnavailable,
    TokenCache,
    parse_service_account,
)
from app.lib.tabular import Column, Grid, Marked, Sheet, to_grid
from tests.sandbox_server import run_sandbox

FAST = Retry(attempts=3, base=0.01, cap=0.02)


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with run_sandbox() as url:
        yield url + "/sandbox"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


class Google:
    """The stand-in's control API."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http, self.base = http, base

    async def account(self) -> dict[str, Any]:
        response = await self.http.post(f"{self.base}/control/google/service-accounts", json={})
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def spreadsheet(self, editors: list[str], sheets: list[str] | None = None) -> str:
        body: dict[str, Any] = {"editors": editors, **({"sheets": sheets} if sheets else {})}
        response = await self.http.post(f"{self.base}/control/google/spreadsheets", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["spreadsheetId"])

    async def read(self, spreadsheet_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.base}/control/google/spreadsheets/{spreadsheet_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def faults(self, spreadsheet_id: str, *statuses: int) -> None:
        response = await self.http.put(
            f"{self.base}/control/google/spreadsheets/{spreadsheet_id}/faults", json={"statuses": list(statuses)}
        )
        assert response.status_code == 200, response.text

    async def tokens_issued(self, email: str) -> int:
        response = await self.http.get(f"{self.base}/control/google/service-accounts/{email}")
        return int(response.json()["tokens_issued"])


@pytest.fixture
def google(http: httpx.AsyncClient, sandbox_url: str) -> Google:
    return Google(http, sandbox_url)


def client(http: httpx.AsyncClient, base: str, account: dict[str, Any], **kw: Any) -> SheetsClient:
    kw.setdefault("retry", FAST)
    return SheetsClient(
        httpx.Response(200, json=account).content, http=http, api_base=f"{base}/google/sheets",
        token_url=f"{base}/google/oauth2/token", **kw,
    )  # fmt: skip


def report(rows: int = 4) -> Sheet:
    columns = [
        Column("Бренд"), Column("Артикул WB"), Column("Остаток", "int", total="sum"),
        Column("Остаток", "int", group="Коледино", total="sum"), Column("Заказы", "int", group="Коледино"),
        Column("Дней", "decimal", group="Коледино"), Column("Дата", "date"),
    ]  # fmt: skip
    data = []
    for i in range(rows):
        stock: Any = Marked(i, "out" if i == 0 else "low") if i < 2 else i
        data.append([f"Brand {i}", str(241775342 + i), i * 3, stock, 2, None if i == 1 else 1.5, dt.date(2026, 9, 1)])
    return Sheet("Остатки", columns, data, freeze_columns=2, totals_label="Итого")


def trimmed(grid: Grid) -> list[list[Any]]:
    """What a sheet holds after a push of ``grid``: empty cells are blank, trailing blanks are not stored."""
    rows = [["" if v is None else v for v in row] for row in grid.values]
    for row in rows:
        while row and row[-1] == "":
            row.pop()
    while rows and not rows[-1]:
        rows.pop()
    return rows


async def test_a_push_writes_the_grid_in_one_values_call_and_one_format_call(
    http: httpx.AsyncClient, sandbox_url: str, google: Google
) -> None:
    account = await google.account()
    sid = await google.spreadsheet([account["client_email"]], sheets=["Остатки"])
    grid = await to_grid(report())
    result = await client(http, sandbox_url, account).push(sid, grid)

    state = await google.read(sid)
    sheet = state["sheets"][0]
    assert sheet["values"] == trimmed(grid)  # the stand-in's grid equals the report, cell for cell
    assert state["calls"] == {"get": 1, "batchUpdate": 1, "values.batchUpdate": 1}
    assert state["valueBatches"] == [{"valueInputOption": "RAW", "ranges": ["'Остатки'!A1"]}]
    props = sheet["gridProperties"]
    assert (props["rowCount"], props["columnCount"]) == (len(grid.values), 7)
    assert (props["frozenRowCount"], props["frozenColumnCount"]) == (2, 2)
    merges = {
        (m["startRowIndex"], m["endRowIndex"], m["startColumnIndex"], m["endColumnIndex"]) for m in sheet["merges"]
    }
    assert merges == {(0, 2, 0, 1), (0, 2, 1, 2), (0, 2, 2, 3), (0, 1, 3, 6), (0, 2, 6, 7)}
    assert sheet["basicFilter"]["range"]["startRowIndex"] == 1 and sheet["basicFilter"]["range"]["endRowIndex"] == 6
    highlighted = [
        (r["repeatCell"]["range"]["startRowIndex"], r["repeatCell"]["range"]["startColumnIndex"])
        for r in state["requests"]
        if "repeatCell" in r and "backgroundColor" in r["repeatCell"]["cell"]["userEnteredFormat"]
        and r["repeatCell"]["fields"] == "userEnteredFormat.backgroundColor"
    ]  # fmt: skip
    assert sorted(highlighted) == [(2, 3), (3, 3)]
    assert (result.rows, result.columns, result.sheet_title, result.marks_dropped) == (7, 7, "Остатки", 0)

    back = await client(http, sandbox_url, account).values_get(sid, "Остатки!A3:C4")
    assert back.values == [["Brand 0", "241775342", 0], ["Brand 1", "241775343", 3]]


async def test_a_shorter_report_leaves_no_stale_rows_and_a_missing_sheet_is_added(
    http: httpx.AsyncClient, sandbox_url: str, google: Google
) -> None:
    account = await google.account()
    sid = await google.spreadsheet([account["client_email"]])
    sheets = client(http, sandbox_url, account)
    await sheets.push(sid, await to_grid(report(30)))
    short = await to_grid(report(2))
    result = await sheets.push(sid, short)
    state = await google.read(sid)
    assert [s["title"] for s in state["sheets"]] == ["Лист1", "Остатки"]
    assert state["sheets"][1]["values"] == trimmed(short)
    assert state["sheets"][1]["gridProperties"]["rowCount"] == len(short.values) == result.rows


async def test_the_token_is_cached_until_it_expires(http: httpx.AsyncClient, sandbox_url: str, google: Google) -> None:
    account = await google.account()
    sid = await google.spreadsheet([account["client_email"]])
    tokens = TokenCache()
    for _ in range(3):
        await client(http, sandbox_url, account, tokens=tokens).push(sid, await to_grid(report()))
    assert await google.tokens_issued(account["client_email"]) == 1
    # a token the server no longer accepts (401) is replaced once, transparently
    await http.post(f"{sandbox_url}/control/google/service-accounts/{account['client_email']}/expire-tokens")
    await client(http, sandbox_url, account, tokens=tokens).push(sid, await to_grid(report()))
    assert await google.tokens_issued(account["client_email"]) == 2


async def test_429_and_5xx_are_retried_then_reported(http: httpx.AsyncClient, sandbox_url: str, google: Google) -> None:
    account = await google.account()
    sid = await google.spreadsheet([account["client_email"]], sheets=["Остатки"])
    await google.faults(sid, 429, 503)
    await client(http, sandbox_url, account).push(sid, await to_grid(report()))
    state = await google.read(sid)
    assert state["calls"]["get"] == 3 and state["sheets"][0]["values"] == trimmed(await to_grid(report()))
    await google.faults(sid, 503, 503, 503)
    with pytest.raises(SheetsUnavailable) as caught:
        await client(http, sandbox_url, account).push(sid, await to_grid(report()))
    assert caught.value.status == 503


async def test_a_revoked_key_is_a_typed_error(http: httpx.AsyncClient, sandbox_url: str, google: Google) -> None:
    account = await google.account()
    sid = await google.spreadsheet([account["client_email"]])
    tokens = TokenCache()
    await client(http, sandbox_url, account, tokens=tokens).push(sid, await to_grid(report()))
    revoked = await http.post(f"{sandbox_url}/control/google/keys/{account['private_key_id']}/revoke")
    assert revoked.status_code == 200
    with pytest.raises(SheetsGrantRevoked) as caught:
        await client(http, sandbox_url, account, tokens=tokens).push(sid, await to_grid(report()))
    assert "Invalid JWT Signature" in str(caught.value)
    assert account["private_key"].split("\n")[1] not in str(caught.value)


async def test_sharing_and_existence(http: httpx.AsyncClient, sandbox_url: str, google: Google) -> None:
    account = await google.account()
    not_shared = await google.spreadsheet(["someone-else@example.iam.gserviceaccount.com"])
    with pytest.raises(SheetsPermissionDenied):
        await client(http, sandbox_url, account).push(not_shared, await to_grid(report()))
    with pytest.raises(SheetsNotFound):
        await client(http, sandbox_url, account).push("no-such-spreadsheet", await to_grid(report()))


def test_service_account_json_is_checked_and_never_printed() -> None:
    with pytest.raises(SheetsCredentialsError, match="not JSON"):
        parse_service_account(b"{not json")
    with pytest.raises(SheetsCredentialsError, match="client_email"):
        parse_service_account(b'{"type": "service_account", "private_key_id": "k", "private_key": "x"}')
    with pytest.raises(SheetsCredentialsError, match="cannot be read"):
        parse_service_account(b'{"client_email": "a@b", "private_key_id": "k", "private_key": "-----BEGIN"}')


async def test_account_repr_hides_the_key(google: Google) -> None:
    account = await google.account()
    parsed, _key = parse_service_account(httpx.Response(200, json=account).content)
    assert "PRIVATE" not in repr(parsed) and account["client_email"] in repr(parsed)


def test_settings_name_the_sheets_endpoints() -> None:
    settings = load_settings(
        {"STOCK_TRACKER_ENV": "test", "STOCK_TRACKER_SHEETS_API_BASE": "http://127.0.0.1:9/sandbox/google/sheets"}
    )
    assert settings.sheets_api_base.endswith("/google/sheets")
    assert settings.sheets_token_url == "https://oauth2.googleapis.com/token"
