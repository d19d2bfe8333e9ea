"""Shared by the contract suites: the real app on a loopback port, and a tenant seeded over HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from app.config import Settings
from tests.conftest import unique_email
from tests.helpers import PASSWORD
from tests.sandbox_server import free_port
from tests.sync_support import Seller, make_seller, run_worker


@contextlib.contextmanager
def serve_api(settings: Settings, app: Any = None) -> Iterator[str]:
    """``create_app(settings)`` (or ``app``) under uvicorn (lifespan on) in a thread; yields its base URL.
    uvicorn trusts X-Forwarded-For from 127.0.0.1 (its default), so a test can play several clients."""
    from app.server.app import create_app

    port = free_port()
    config = uvicorn.Config(
        app or create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def service_account_key() -> dict[str, str]:
    """A well-formed Google service-account key file (a fresh RSA key; it opens no real account)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "seeded",
        "private_key_id": "seeded-key",
        "private_key": pem,
        "client_email": "seeded@seeded.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


async def seed_tenant(
    http: httpx.AsyncClient,
    settings: Settings,
    sandbox_url: str,
    *,
    products: int = 5,
    seed: int = 31,
    extras: bool = False,
) -> dict[str, Any]:
    """An organization with a synced marketplace connection, a member, an API key: an id of every kind.

    ``extras`` also makes what other areas own, where their API can make it: a default alert rule that
    every product breaks (so the sync raises alerts) and a webhook endpoint with a test delivery (the
    server's settings must allow 127.0.0.0/8 as a webhook target).
    """
    email = unique_email("seed")
    reg = await http.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "organization_name": "Seeded"}
    )
    assert reg.status_code == 201, reg.text
    body = reg.json()
    headers = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
    if extras:
        rule = await http.put(
            "/api/v1/alert-rules/default", json={"enabled": True, "units_below": 10_000_000}, headers=headers
        )
        assert rule.status_code == 200, rule.text
    seller: Seller = make_seller(sandbox_url, "wildberries", products=products, warehouses=1, seed=seed)
    conn = await http.post(
        "/api/v1/connections",
        json={"marketplace": "wildberries", "name": "Seeded shop", "credentials": seller.credentials},
        headers=headers,
    )
    assert conn.status_code == 201, conn.text
    run = await http.post(f"/api/v1/connections/{conn.json()['id']}/syncs", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker(settings)
    finished = (await http.get(f"/api/v1/syncs/{run.json()['id']}", headers=headers)).json()
    assert finished["status"] == "succeeded", finished
    page = (await http.get("/api/v1/products", params={"limit": 1}, headers=headers)).json()
    product = await http.get(f"/api/v1/products/{page['items'][0]['id']}", headers=headers)
    variant = product.json()["variants"][0]
    warehouse = variant["stock"][0]["warehouse_id"] if variant["stock"] else None
    member_email = unique_email("member")
    other = await http.post(
        "/api/v1/auth/register", json={"email": member_email, "password": PASSWORD, "organization_name": "Member's"}
    )
    assert other.status_code == 201, other.text
    invitation = await http.post("/api/v1/invitations", json={"email": member_email, "role": "member"}, headers=headers)
    assert invitation.status_code == 201, invitation.text
    other_headers = {"Authorization": f"Bearer {other.json()['tokens']['access_token']}"}
    added = await http.post(
        "/api/v1/invitations/accept", json={"token": invitation.json()["token"]}, headers=other_headers
    )
    assert added.status_code == 200, added.text
    pending = await http.post(
        "/api/v1/invitations", json={"email": unique_email("invitee"), "role": "member"}, headers=headers
    )
    assert pending.status_code == 201, pending.text
    key = await http.post("/api/v1/api-keys", json={"name": "seeded", "scopes": ["read", "write"]}, headers=headers)
    assert key.status_code == 201, key.text
    ids: dict[str, Any] = {
        "connection_id": conn.json()["id"],
        "run_id": run.json()["id"],
        "product_id": page["items"][0]["id"],
        "variant_id": variant["id"],
        "warehouse_id": warehouse,
        "user_id": added.json()["user"]["id"],
        "invitation_id": pending.json()["id"],
        "key_id": key.json()["id"],
    }
    if extras:
        await run_worker(settings)  # whatever the sync left queued (alert evaluation, events)
        alerts = (await http.get("/api/v1/alerts", headers=headers)).json()
        if alerts.get("items"):
            ids["alert_id"] = alerts["items"][0]["id"]
        endpoint = await http.post(
            "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
        )
        assert endpoint.status_code == 201, endpoint.text
        ids["endpoint_id"] = endpoint.json()["id"]
        sent = await http.post(f"/api/v1/webhook-endpoints/{ids['endpoint_id']}/test", headers=headers)
        assert sent.status_code < 300, sent.text
        deliveries = (
            await http.get(f"/api/v1/webhook-endpoints/{ids['endpoint_id']}/deliveries", headers=headers)
        ).json()
        if deliveries.get("items"):
            ids["delivery_id"] = deliveries["items"][0]["id"]
        # The reports area: a Google Sheets link and a reconciliation of the seller's own cabinet export.
        link = await http.post(
            "/api/v1/reports/sheets",
            json={"spreadsheet_id": "seeded", "service_account": service_account_key()},
            headers=headers,
        )
        assert link.status_code == 201, link.text
        ids["sheet_link_id"] = link.json()["id"]
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=60) as sandbox:
            export = await sandbox.get(f"/control/sellers/{seller.id}/cabinet-export", params={"format": "csv"})
        assert export.status_code == 200, export.text
        made = await http.post(
            "/api/v1/reconciliations", files={"file": ("export.csv", export.content, "text/csv")}, headers=headers
        )
        assert made.status_code == 201, made.text
        ids["reconciliation_id"] = made.json()["id"]
    return {
        "ids": ids,
        "email": email,
        "headers": headers,
        "tenant_id": body["tenant"]["id"],
        "user_id": body["user"]["id"],
        "seller": seller,
        "key": key.json()["key"],
    }
