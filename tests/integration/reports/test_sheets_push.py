"""Google Sheets links end to end, against the sandbox's Sheets stand-in over real HTTP: the key file is
encrypted at rest and never shown, a successful sync writes the report in one values call and one format
call, the stand-in's grid equals the report, a push on demand, Sheets' 5xx retried, a revoked key or an
unshared sheet marks the link invalid and tells the owner (``sheet_link.invalid``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.models.notifications import Event
from app.db.models.reports import SheetLink
from app.server.app import create_app
from tests.conftest import make_settings
from tests.fakes import drain, tenant_session
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

MARKETPLACE_LABEL = {"wildberries": "Wildberries", "ozon": "Ozon"}


@pytest.fixture(scope="module")
def st(database, redis_url, marketplace_sandbox):
    return make_settings(
        database,
        redis_url,
        wb_base_url=f"{marketplace_sandbox}/wb",
        ozon_base_url=f"{marketplace_sandbox}/ozon",
        sheets_api_base=f"{marketplace_sandbox}/google/sheets",
        sheets_token_url=f"{marketplace_sandbox}/google/oauth2/token",
    )


@pytest.fixture(scope="module")
async def api(st, redis):
    async with AsyncTestClient(app=create_app(st), base_url="http://testserver.local") as client:
        yield client


class Google:
    def __init__(self, base: str) -> None:
        self.base = base

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        with httpx.Client(base_url=self.base, timeout=30) as h:
            resp = h.request(method, path, **kw)
            assert resp.status_code < 300, resp.text
            return resp.json()

    def account(self) -> dict[str, Any]:
        return dict(self._call("POST", "/control/google/service-accounts", json={}))

    def spreadsheet(self, editors: list[str]) -> str:
        return str(self._call("POST", "/control/google/spreadsheets", json={"editors": editors})["spreadsheetId"])

    def read(self, spreadsheet_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/control/google/spreadsheets/{spreadsheet_id}"))

    def faults(self, spreadsheet_id: str, *statuses: int) -> None:
        self._call("PUT", f"/control/google/spreadsheets/{spreadsheet_id}/faults", json={"statuses": list(statuses)})

    def revoke(self, key_id: str) -> None:
        self._call("POST", f"/control/google/keys/{key_id}/revoke")


@pytest.fixture(scope="module")
def google(marketplace_sandbox) -> Google:
    return Google(marketplace_sandbox)


def expected_grid(report: dict[str, Any]) -> list[list[Any]]:
    """The report as the sheet must hold it: two header rows, the rows, the totals (blanks as "")."""
    names = [w["name"] for w in report["warehouses"]]
    product = ["Маркетплейс", "Бренд", "Предмет", "Артикул продавца", "Артикул МП", "Название"]
    totals = ["В пути к клиенту", "В пути от клиента", "Заказы за 30 дн", "Остаток", "Дней запаса"]
    top: list[Any] = product + totals
    for name in names:
        top += [name, "", ""]
    bottom = [""] * len(top[: len(product) + 5]) + ["Остаток", "Заказы", "Дней"] * len(names)
    rows = []
    ids = [w["warehouse_id"] for w in report["warehouses"]]
    for r in report["rows"]:
        row = [MARKETPLACE_LABEL[r["marketplace"]], r["brand"], r["subject"], r["vendor_code"], r["external_id"],
               r["title"], r["in_way_to_client"], r["in_way_from_client"], r["orders"], r["total_stock"],
               r["days_of_cover"]]  # fmt: skip
        cells = {c["warehouse_id"]: c for c in r["warehouses"]}
        for wid in ids:
            c = cells.get(wid)
            row += [c["stock"], c["orders"], c["days_of_cover"]] if c else [None, None, None]
        rows.append(["" if v is None else v for v in row])
    out = [top, bottom, *rows]
    for row in out:
        while row and row[-1] == "":
            row.pop()
    return out


async def link_row(st, tenant: str, link_id: str) -> SheetLink:
    async with tenant_session(st, tenant) as s:
        return (await s.execute(select(SheetLink).where(SheetLink.id == link_id))).scalar_one()


async def test_a_sync_writes_the_report_to_the_linked_sheet(api, st, google, marketplace_sandbox):
    owner = await register(api)
    h = owner["headers"]
    account = google.account()
    sid = google.spreadsheet([account["client_email"]])
    created = await api.post(
        "/api/v1/reports/sheets",
        json={"spreadsheet_id": sid, "sheet_name": "Остатки", "service_account": account, "lang": "ru"},
        headers=h,
    )
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["client_email"] == account["client_email"] and link["status"] == "active"
    assert "private_key" not in created.text and "service_account" not in link
    # Encrypted at rest: the stored bytes are not the key file.
    stored = await link_row(st, owner["tenant"]["id"], link["id"])
    assert account["private_key"].encode()[:40] not in stored.credentials_encrypted
    seller = make_seller(marketplace_sandbox, "wildberries", products=9, warehouses=2, seed=53)
    try:
        conn = await connect(api, h, seller)
        run = await sync_now(api, st, h, conn["id"])
        assert run["status"] == "succeeded"
        await drain(st)  # the push job the sync asked for
        report = (await api.get("/api/v1/reports/stock", params={"limit": 1000}, headers=h)).json()
        state = google.read(sid)
        sheet = next(s for s in state["sheets"] if s["title"] == "Остатки")
        assert sheet["values"][:-1] == expected_grid(report)  # the stand-in's grid equals the report
        assert sheet["values"][-1][0] == "Итого"
        assert state["calls"]["values.batchUpdate"] == 1 and state["calls"]["batchUpdate"] == 1
        assert (sheet["gridProperties"]["frozenRowCount"], sheet["gridProperties"]["frozenColumnCount"]) == (2, 5)
        got = (await api.get(f"/api/v1/reports/sheets/{link['id']}", headers=h)).json()
        assert got["last_push_status"] == "pushed" and got["last_push_rows"] == len(report["rows"]) + 3
        # On demand, through Sheets' own 503 (retried by the client).
        google.faults(sid, 503)
        pushed = await api.post(f"/api/v1/reports/sheets/{link['id']}/push", headers=h)
        assert pushed.status_code == 202 and pushed.json()["sheet_link_id"] == link["id"]
        await drain(st)
        state = google.read(sid)
        assert state["calls"]["values.batchUpdate"] == 2
        assert (await api.get(f"/api/v1/reports/sheets/{link['id']}", headers=h)).json()["last_push_status"] == "pushed"
    finally:
        seller.delete()


async def test_a_revoked_key_or_an_unshared_sheet_invalidates_the_link_and_tells_the_owner(
    api, st, google, marketplace_sandbox
):
    owner = await register(api)
    h = owner["headers"]
    tenant = owner["tenant"]["id"]
    account = google.account()
    sid = google.spreadsheet([account["client_email"]])
    link = (
        await api.post("/api/v1/reports/sheets", json={"spreadsheet_id": sid, "service_account": account}, headers=h)
    ).json()
    assert (await api.post(f"/api/v1/reports/sheets/{link['id']}/push", headers=h)).status_code == 202
    await drain(st)
    assert (await api.get(f"/api/v1/reports/sheets/{link['id']}", headers=h)).json()["last_push_status"] == "pushed"
    google.revoke(account["private_key_id"])
    await api.post(f"/api/v1/reports/sheets/{link['id']}/push", headers=h)
    await drain(st)
    got = (await api.get(f"/api/v1/reports/sheets/{link['id']}", headers=h)).json()
    assert got["status"] == "invalid" and got["last_push_status"] == "invalid"
    assert "Invalid JWT Signature" in got["status_reason"] and account["private_key"][40:80] not in got["status_reason"]
    async with tenant_session(st, tenant) as s:
        events = (await s.execute(select(Event).where(Event.type == "sheet_link.invalid"))).scalars().all()
    assert [e.data["sheet_link_id"] for e in events] == [link["id"]]
    # An invalid link is not pushed after syncs; a new key brings it back.
    fresh = google.account()
    not_shared = await api.patch(f"/api/v1/reports/sheets/{link['id']}", json={"service_account": fresh}, headers=h)
    assert not_shared.json()["status"] == "active" and not_shared.json()["client_email"] == fresh["client_email"]
    await api.post(f"/api/v1/reports/sheets/{link['id']}/push", headers=h)
    await drain(st)
    got = (await api.get(f"/api/v1/reports/sheets/{link['id']}", headers=h)).json()
    assert got["status"] == "invalid" and "403" in got["status_reason"]  # the sheet is not shared with it
    async with tenant_session(st, tenant) as s:
        assert len((await s.execute(select(Event).where(Event.type == "sheet_link.invalid"))).scalars().all()) == 2


async def test_links_are_checked_listed_and_deleted(api, google):
    owner = await register(api)
    h = owner["headers"]
    bad = await api.post(
        "/api/v1/reports/sheets", json={"spreadsheet_id": "abc", "service_account": {"type": "service_account"}},
        headers=h,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_service_account"
    assert bad.json()["errors"][0]["field"] == "service_account"
    account = google.account()
    made = await api.post(
        "/api/v1/reports/sheets", json={"spreadsheet_id": "sheet_1", "service_account": account, "per": "size"},
        headers=h,
    )  # fmt: skip
    assert made.status_code == 201
    listed = (await api.get("/api/v1/reports/sheets", headers=h)).json()["items"]
    assert [i["id"] for i in listed] == [made.json()["id"]]
    other = await register(api, "Other")
    assert (await api.get(f"/api/v1/reports/sheets/{made.json()['id']}", headers=other["headers"])).status_code == 404
    assert (await api.delete(f"/api/v1/reports/sheets/{made.json()['id']}", headers=h)).status_code == 204
    assert (await api.get("/api/v1/reports/sheets", headers=h)).json()["items"] == []
