"""The report in Telegram and the daily report: `/report` answers with the XLSX document; at the
organization's report time (its time zone) every linked chat gets the XLSX once, and a `report.ready`
webhook carries a signed, expiring download link that opens without a login and refuses tampering."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from litestar.testing import AsyncTestClient

from app.domain.reports.jobs import daily_report, daily_reports_cron
from app.domain.reports.services import ReportLink, link_key, sign
from app.server.app import create_app
from tests.fakes import FakeDNS, alert_settings, drain, worker_context
from tests.fakes.receiver import Receiver
from tests.fakes.telegram import FakeTelegram, link_chat, new_chat_id, next_update_id, post_update, update
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def telegram_api():
    with FakeTelegram().serve() as fake:
        yield fake


@pytest.fixture(scope="module")
def receiver():
    with Receiver().serve() as r:
        yield r


@pytest.fixture(scope="module")
def dns():
    return FakeDNS()


@pytest.fixture(scope="module")
def st(database, redis_url, marketplace_sandbox, telegram_api):
    return alert_settings(database, redis_url, marketplace_sandbox, telegram_api.url)


@pytest.fixture(scope="module")
async def api(st, dns, redis):
    app = create_app(st)
    app.state.resolver = dns
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client


@pytest.fixture(scope="module")
async def shop(api, st, marketplace_sandbox):
    owner = await register(api, "Daily")
    seller = make_seller(marketplace_sandbox, "wildberries", products=7, warehouses=1, seed=59)
    conn = await connect(api, owner["headers"], seller)
    assert (await sync_now(api, st, owner["headers"], conn["id"]))["status"] == "succeeded"
    yield owner
    seller.delete()


def rows_of(content: bytes) -> list[list]:
    ws = openpyxl.load_workbook(io.BytesIO(content))["Остатки"]
    return [list(r) for r in ws.iter_rows(values_only=True)]


async def test_report_command_sends_the_xlsx_document(api, st, telegram_api, shop):
    chat = new_chat_id()
    await link_chat(api, shop["headers"], st, telegram_api, chat)
    resp = await post_update(api, update(next_update_id(), chat, "/report"))
    assert resp.status_code == 200
    await drain(st)
    documents = telegram_api.sent(chat, method="sendDocument")
    assert len(documents) == 1
    doc = documents[0]
    assert doc.files is not None and doc.files["document"][:2] == b"PK"
    assert "Остатки" in doc.text  # the caption, in the organization's language
    grid = rows_of(doc.files["document"])
    report = (await api.get("/api/v1/reports/stock", params={"limit": 1000}, headers=shop["headers"])).json()
    assert [r[4] for r in grid[3:-1]] == [r["external_id"] for r in report["rows"]]
    # An organization without stock gets a sentence, not an empty file.
    empty = await register(api, "Empty")
    other_chat = new_chat_id()
    await link_chat(api, empty["headers"], st, telegram_api, other_chat)
    await post_update(api, update(next_update_id(), other_chat, "/report"))
    await drain(st)
    assert "No stock yet" in telegram_api.sent(other_chat)[-1].text
    assert not telegram_api.sent(other_chat, method="sendDocument")


async def test_the_daily_report_reaches_every_chat_once_and_the_webhook_with_a_signed_link(
    api, st, dns, telegram_api, receiver, shop
):
    h = shop["headers"]
    chats = [new_chat_id(), new_chat_id()]
    for chat in chats:
        await link_chat(api, h, st, telegram_api, chat)
    endpoint = await api.post(
        "/api/v1/webhook-endpoints", json={"url": receiver.url("/daily"), "event_types": ["report.ready"]}, headers=h
    )
    assert endpoint.status_code == 201, endpoint.text
    local = datetime.now(ZoneInfo("Europe/Moscow"))
    if local.hour < 23:  # not due before its time
        later = await api.patch("/api/v1/reports/settings", json={"daily_report_time": "23:59"}, headers=h)
        assert later.status_code == 200
        async with worker_context(st, dns) as ctx:
            await daily_reports_cron(ctx)
        await drain(st, dns)
        assert not any(telegram_api.sent(c, method="sendDocument") for c in chats)
    settings = await api.patch("/api/v1/reports/settings", json={"daily_report_time": "00:00"}, headers=h)
    assert settings.json()["daily_report_time"] == "00:00" and settings.json()["timezone"] == "Europe/Moscow"
    async with worker_context(st, dns) as ctx:
        assert await daily_reports_cron(ctx) >= 1
    await drain(st, dns)
    for chat in chats:
        docs = telegram_api.sent(chat, method="sendDocument")
        assert len(docs) == 1 and docs[0].files is not None and docs[0].files["document"][:2] == b"PK"
    # Once a day: another tick, or the job run again, sends nothing more.
    async with worker_context(st, dns) as ctx:
        await daily_reports_cron(ctx)
        assert await daily_report(ctx, tenant_id=shop["tenant"]["id"], local_date=local.date().isoformat()) == (
            "already_sent"
        )
    await drain(st, dns)
    assert all(len(telegram_api.sent(c, method="sendDocument")) == 1 for c in chats)
    got = (await api.get("/api/v1/reports/settings", headers=h)).json()
    assert got["last_daily_report_on"] == local.date().isoformat()
    # The webhook: report.ready with a link that downloads the XLSX without a login.
    delivered = receiver.wait_for("/daily", 1)
    assert len(delivered) == 1
    event = delivered[0].json()
    assert event["type"] == "report.ready"
    data = event["data"]
    assert data["format"] == "xlsx" and data["date"] == local.date().isoformat()
    assert datetime.fromisoformat(data["expires_at"]) > datetime.now(UTC) + timedelta(days=6)
    url = data["download_url"]
    assert url.startswith("http://testserver.local/api/v1/reports/download?token=")
    path = url.removeprefix("http://testserver.local")
    download = await api.get(path)  # no Authorization header
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == XLSX and download.headers["cache-control"] == "private, no-store"
    assert rows_of(download.content)[1][:2] == ["Маркетплейс", "Бренд"]
    token = path.split("token=", 1)[1]
    body, _, signature = token.partition(".")
    tampered = await api.get(f"/api/v1/reports/download?token={body}.{signature[:-2]}AA")
    assert tampered.status_code == 403 and tampered.json()["code"] == "report_link_invalid"
    other = ReportLink(tenant=uuid.uuid4(), expires=int((datetime.now(UTC) + timedelta(days=1)).timestamp()))
    forged = sign(b"not the server's key", other)
    assert (await api.get(f"/api/v1/reports/download?token={forged}")).status_code == 403
    key = link_key(st.jwt_secret)
    expired = ReportLink(tenant=uuid.UUID(shop["tenant"]["id"]), expires=int(datetime.now(UTC).timestamp()) - 1)
    gone = await api.get(f"/api/v1/reports/download?token={sign(key, expired)}")
    assert gone.status_code == 403 and "expired" in gone.json()["detail"]
    assert (await api.get("/api/v1/reports/download?token=short")).status_code in (400, 422)
