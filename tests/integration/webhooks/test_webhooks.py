"""Outgoing webhooks over real HTTP to a local receiver: signing (checked by `standardwebhooks`), retries with
fresh signatures, no retry on 4xx, redirects not followed, manual retry, recover, rotation, the SSRF guard
(at creation and at send time, DNS rebinding included), disabling a dead endpoint, tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from app.db.models.notifications import WebhookDelivery, WebhookEndpoint
from app.domain.webhooks.jobs import webhook_retry_sweep
from app.integrations.webhook_sender import send
from app.server.app import create_app
from tests.fakes import FakeDNS, alert_settings, drain, free_port, tenant_session, worker_context
from tests.fakes.receiver import Receiver, Reply
from tests.fakes.telegram import FakeTelegram, link_chat, new_chat_id
from tests.helpers import add_member, register


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


async def make_endpoint(api, headers, url, **extra) -> dict:
    resp = await api.post("/api/v1/webhook-endpoints", json={"url": url, **extra}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def send_test(api, headers, endpoint_id) -> dict:
    resp = await api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test", headers=headers)
    assert resp.status_code == 202, resp.text
    return resp.json()


async def deliveries(api, headers, endpoint_id, **params) -> list[dict]:
    resp = await api.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


async def test_endpoint_crud_secret_shown_once_and_isolation(api):
    owner = await register(api)
    h = owner["headers"]
    created = await make_endpoint(
        api, h, "http://127.0.0.1:9/hook", event_types=["stock.low", "stock.out"], description="ERP"
    )
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    assert created["event_types"] == ["stock.low", "stock.out"]
    eid = created["id"]
    got = (await api.get(f"/api/v1/webhook-endpoints/{eid}", headers=h)).json()
    assert "secret" not in got and got["description"] == "ERP"
    patched = await api.patch(
        f"/api/v1/webhook-endpoints/{eid}", json={"description": "ERP v2", "event_types": []}, headers=h
    )
    assert patched.status_code == 200 and patched.json()["event_types"] == [] and "secret" not in patched.json()
    assert (await api.post(f"/api/v1/webhook-endpoints/{eid}/disable", headers=h)).json()["enabled"] is False
    assert (await api.post(f"/api/v1/webhook-endpoints/{eid}/test", headers=h)).status_code == 409
    assert (await api.post(f"/api/v1/webhook-endpoints/{eid}/enable", headers=h)).json()["enabled"] is True
    second = await make_endpoint(api, h, "http://127.0.0.1:9/other")
    page = (await api.get("/api/v1/webhook-endpoints", params={"limit": 1}, headers=h)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (await api.get("/api/v1/webhook-endpoints", params={"cursor": page["next_cursor"]}, headers=h)).json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {eid, second["id"]}
    # Another organization sees nothing, and its ids answer 404, never 403.
    other = await register(api, "Other")
    assert (await api.get(f"/api/v1/webhook-endpoints/{eid}", headers=other["headers"])).status_code == 404
    assert (await api.delete(f"/api/v1/webhook-endpoints/{eid}", headers=other["headers"])).status_code == 404
    assert (await api.get("/api/v1/webhook-endpoints", headers=other["headers"])).json()["items"] == []
    # Members read but do not change.
    member = await add_member(api, owner)
    assert (await api.get(f"/api/v1/webhook-endpoints/{eid}", headers=member["member_headers"])).status_code == 200
    denied = await api.post(
        "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=member["member_headers"]
    )
    assert denied.status_code == 403
    assert (await api.delete(f"/api/v1/webhook-endpoints/{eid}", headers=h)).status_code == 204
    assert (await api.get(f"/api/v1/webhook-endpoints/{eid}", headers=h)).status_code == 404
    bad = await api.post(
        "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x", "event_types": ["nope"]}, headers=h
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    types = (await api.get("/api/v1/webhook-event-types", headers=h)).json()["items"]
    assert {t["type"] for t in types} >= {"stock.low", "stock.restored", "connection.token_expiring"}


async def test_test_event_is_signed_per_standard_webhooks(api, st, receiver, dns):
    owner = await register(api)
    ep = await make_endpoint(api, owner["headers"], receiver.url("/signed"))
    sent = await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)
    [req] = receiver.wait_for("/signed", 1)
    body = verify(ep["secret"], req)
    assert body["id"] == sent["event_id"] == req.headers["webhook-id"]
    assert body["type"] == "webhook_endpoint.test" and body["tenant_id"] == owner["tenant"]["id"]
    assert set(body) == {"id", "type", "created_at", "tenant_id", "data"}
    [delivery] = await deliveries(api, owner["headers"], ep["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"][0]["status_code"] == 200
    assert delivery["attempts"][0]["response_excerpt"] == '{"ok":true}'


async def test_5xx_is_retried_with_a_fresh_timestamp_and_valid_signature(api, st, receiver, dns):
    owner = await register(api)
    ep = await make_endpoint(api, owner["headers"], receiver.url("/flaky"))
    receiver.script("/flaky", Reply(500, body=b"upstream down"), 200)
    await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)  # the 5 s retry is enqueued deferred: the burst worker waits for it
    first, second = receiver.wait_for("/flaky", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"]) + 4
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    verify(ep["secret"], first)
    verify(ep["secret"], second)
    assert first.body == second.body
    [delivery] = await deliveries(api, owner["headers"], ep["id"])
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 2
    newest, oldest = delivery["attempts"]
    assert (oldest["outcome"], oldest["status_code"], oldest["response_excerpt"]) == ("retry", 500, "upstream down")
    assert (newest["outcome"], newest["status_code"]) == ("success", 200)
    assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])


async def test_4xx_and_redirects_are_not_retried_then_manual_retry_and_recover(api, st, receiver, dns):
    owner = await register(api)
    h = owner["headers"]
    gone = await make_endpoint(api, h, receiver.url("/gone"))
    moved = await make_endpoint(api, h, receiver.url("/moved"))
    receiver.script("/gone", 410, 410)
    receiver.script("/moved", Reply(302, location=receiver.url("/elsewhere")))
    since = datetime.now(UTC) - timedelta(seconds=5)
    await send_test(api, h, gone["id"])
    await send_test(api, h, gone["id"])
    await send_test(api, h, moved["id"])
    await drain(st, dns)
    assert len(receiver.at("/gone")) == 2 and len(receiver.at("/moved")) == 1
    assert receiver.at("/elsewhere") == []
    failed = await deliveries(api, h, gone["id"], status="failed")
    assert len(failed) == 2 and all(d["attempt_count"] == 1 and d["next_attempt_at"] is None for d in failed)
    assert failed[0]["attempts"][0]["outcome"] == "failed" and failed[0]["last_status_code"] == 410
    [redirected] = await deliveries(api, h, moved["id"])
    assert redirected["status"] == "failed" and "redirect" in redirected["last_error"]
    # A manual retry makes one more attempt, signed afresh.
    retry = await api.post(f"/api/v1/webhook-deliveries/{redirected['id']}/retry", headers=h)
    assert retry.status_code == 202
    await drain(st, dns)
    [after] = await deliveries(api, h, moved["id"])
    assert after["status"] == "succeeded" and after["attempt_count"] == 2
    # Recover: everything that failed since T goes out again.
    rec = await api.post(
        f"/api/v1/webhook-endpoints/{gone['id']}/recover", json={"since": since.isoformat()}, headers=h
    )
    assert rec.status_code == 202 and rec.json() == {"deliveries": 2}
    await drain(st, dns)
    assert len(receiver.at("/gone")) == 4
    assert {d["status"] for d in await deliveries(api, h, gone["id"])} == {"succeeded"}
    naive = await api.post(
        f"/api/v1/webhook-endpoints/{gone['id']}/recover", json={"since": "2026-01-01T00:00:00"}, headers=h
    )
    assert naive.status_code == 422
    other = await register(api, "Other")
    assert (
        await api.post(f"/api/v1/webhook-deliveries/{redirected['id']}/retry", headers=other["headers"])
    ).status_code == 404


async def test_rotated_secret_signs_beside_the_old_one(api, st, receiver, dns):
    owner = await register(api)
    ep = await make_endpoint(api, owner["headers"], receiver.url("/rotate"))
    rotated = await api.post(f"/api/v1/webhook-endpoints/{ep['id']}/rotate-secret", headers=owner["headers"])
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != ep["secret"] and new_secret.startswith("whsec_")
    await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)
    [req] = receiver.wait_for("/rotate", 1)
    assert len(req.headers["webhook-signature"].split()) == 2
    verify(ep["secret"], req)
    verify(new_secret, req)
    got = (await api.get(f"/api/v1/webhook-endpoints/{ep['id']}", headers=owner["headers"])).json()
    assert got["previous_secret_expires_at"] is not None


UNSAFE_URLS = [
    "http://10.0.0.1/hook",
    "http://192.168.1.10:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[fd00::5]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://internal.example.test/hook",
    "http://mixed.example.test/hook",
    "ftp://127.0.0.1/hook",
    "http://user:secret@127.0.0.1/hook",
]


async def test_ssrf_guard_refuses_private_targets_at_creation(api, dns):
    dns.table["internal.example.test"] = ["10.20.30.40"]
    dns.table["mixed.example.test"] = ["93.184.216.34", "192.168.0.9"]
    owner = await register(api)
    for url in UNSAFE_URLS:
        resp = await api.post("/api/v1/webhook-endpoints", json={"url": url}, headers=owner["headers"])
        assert resp.status_code == 422, (url, resp.text)
        problem = resp.json()
        # ftp:// fails the schema's pattern already (validation_error); the rest fail the guard.
        assert problem["code"] in ("unsafe_webhook_url", "validation_error"), url
        assert problem["errors"][0]["field"] == "url", (url, problem)
    # A name that does not resolve (yet) is accepted: every send resolves and checks again.
    await make_endpoint(api, owner["headers"], "http://nxdomain.example.test/hook")
    ep = await make_endpoint(api, owner["headers"], "http://127.0.0.1:9/ok")
    moved = await api.patch(
        f"/api/v1/webhook-endpoints/{ep['id']}", json={"url": "http://10.1.1.1/x"}, headers=owner["headers"]
    )
    assert moved.status_code == 422
    urls = [e["url"] for e in (await api.get("/api/v1/webhook-endpoints", headers=owner["headers"])).json()["items"]]
    assert urls == ["http://nxdomain.example.test/hook", "http://127.0.0.1:9/ok"]


async def test_ssrf_guard_rechecks_at_send_time_dns_rebinding(api, st, receiver, dns):
    owner = await register(api)
    port = receiver.base.rsplit(":", 1)[1]
    # A name that resolves to a public address when the endpoint is created...
    dns.table["rebind.example.test"] = ["93.184.216.34"]
    ep = await make_endpoint(api, owner["headers"], f"http://rebind.example.test:{port}/rebind")
    # ...and to the metadata service / a private address when the delivery goes out.
    dns.table["rebind.example.test"] = ["169.254.169.254"]
    await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)
    dns.table["rebind.example.test"] = ["10.0.0.7"]
    await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)
    assert receiver.at("/rebind") == []
    items = await deliveries(api, owner["headers"], ep["id"])
    assert len(items) == 2 and {d["status"] for d in items} == {"failed"}
    errors = sorted(d["attempts"][0]["error"] for d in items)
    assert [d["attempts"][0]["outcome"] for d in items] == ["blocked", "blocked"]
    assert "metadata" in errors[0] and "private" in errors[1]


async def test_delivery_connects_to_the_vetted_address_and_keeps_the_name(api, st, receiver, dns):
    owner = await register(api)
    port = receiver.base.rsplit(":", 1)[1]
    dns.table["hooks.seller.test"] = ["127.0.0.1"]  # allowed in these tests (STOCK_TRACKER_WEBHOOK_ALLOWED_NETWORKS)
    ep = await make_endpoint(api, owner["headers"], f"http://hooks.seller.test:{port}/named?k=1")
    await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)
    [req] = receiver.wait_for("/named", 1)
    assert req.headers["host"] == f"hooks.seller.test:{port}"
    verify(ep["secret"], req)


async def test_connection_errors_and_timeouts_are_retryable(st):
    import httpx

    from app.lib.ssrf import parse_networks

    async with httpx.AsyncClient() as http:
        result = await send(
            http, FakeDNS(), parse_networks("127.0.0.0/8"), f"http://127.0.0.1:{free_port()}/x", {}, b"{}"
        )
    assert result.outcome == "retry" and "connection" in (result.error or "")


async def test_failing_endpoint_is_disabled_and_the_owner_told(api, st, receiver, dns, telegram_api):
    owner = await register(api)
    h = owner["headers"]
    chat = new_chat_id()
    await link_chat(api, h, st, telegram_api, chat)
    dead = await make_endpoint(api, h, receiver.url("/dead"))
    watcher = await make_endpoint(api, h, receiver.url("/watch"), event_types=["webhook_endpoint.disabled"])
    async with tenant_session(st, owner["tenant"]["id"]) as s:
        await s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(dead["id"]))
            .values(failing_since=datetime.now(UTC) - timedelta(days=6))
        )
    receiver.script("/dead", 410)
    await send_test(api, h, dead["id"])
    await drain(st, dns)
    got = (await api.get(f"/api/v1/webhook-endpoints/{dead['id']}", headers=h)).json()
    assert got["enabled"] is False and "failed for 6 days" in got["disabled_reason"]
    [notice] = receiver.wait_for("/watch", 1)
    body = verify(watcher["secret"], notice)
    assert body["type"] == "webhook_endpoint.disabled" and body["data"]["endpoint_id"] == dead["id"]
    messages = telegram_api.wait_sent(chat, 2)
    assert "was disabled" in messages[-1].text and "127.0.0.1" in messages[-1].text
    assert len(receiver.at("/dead")) == 1  # nothing more goes to a disabled endpoint


async def test_retry_sweep_enqueues_due_attempts_once(api, st, receiver, dns):
    owner = await register(api)
    ep = await make_endpoint(api, owner["headers"], receiver.url("/swept"))
    receiver.script("/swept", 410)
    await send_test(api, owner["headers"], ep["id"])
    await drain(st, dns)
    [delivery] = await deliveries(api, owner["headers"], ep["id"])
    # As if the attempt had been a retryable failure whose next attempt is now due.
    async with tenant_session(st, owner["tenant"]["id"]) as s:
        await s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == uuid.UUID(delivery["id"]))
            .values(status="pending", next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with worker_context(st, dns) as ctx:
        assert await webhook_retry_sweep(ctx) >= 1
        assert await webhook_retry_sweep(ctx) == 0  # a second sweep (or worker) enqueues the attempt once
    await drain(st, dns)
    assert len(receiver.wait_for("/swept", 2)) == 2
    [done] = await deliveries(api, owner["headers"], ep["id"])
    assert done["status"] == "succeeded" and done["attempt_count"] == 2
