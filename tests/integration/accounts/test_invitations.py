"""Members join only by invitation and acceptance (issue 14 §2, SPEC §10); sign-up is open, invite-only or
closed (STOCK_TRACKER_SIGNUP)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models import Invitation
from app.domain.accounts.repositories import InvitationRepository
from app.lib.clock import utcnow
from app.server.app import create_app
from tests.conftest import unique_email
from tests.helpers import PASSWORD, invite, register


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def accept(client, token: str, headers: dict[str, str]):
    return await client.post("/api/v1/invitations/accept", json={"token": token}, headers=headers)


async def test_invite_then_accept(client):
    owner = await register(client)
    invitee = await register(client, "Invitee's own")
    resp = await client.post(
        "/api/v1/invitations", json={"email": invitee["email"].upper(), "role": "admin"}, headers=owner["headers"]
    )
    assert resp.status_code == 201, resp.text
    invitation = resp.json()
    assert {"id", "email", "role", "expires_at", "token"} <= set(invitation)
    assert invitation["email"] == invitee["email"] and invitation["role"] == "admin"
    # Nobody is a member before accepting.
    emails = [m["email"] for m in (await client.get("/api/v1/members", headers=owner["headers"])).json()["items"]]
    assert emails == [owner["email"]]
    listed = (await client.get("/api/v1/invitations", headers=owner["headers"])).json()["items"]
    assert [i["id"] for i in listed] == [invitation["id"]] and "token" not in listed[0]
    joined = await accept(client, invitation["token"], invitee["headers"])
    assert joined.status_code == 200, joined.text
    body = joined.json()
    assert body["tenant"]["id"] == owner["tenant"]["id"] and body["role"] == "admin"
    me = (await client.get("/api/v1/me", headers=bearer(body["tokens"]["access_token"]))).json()
    assert me["tenant"]["id"] == owner["tenant"]["id"] and me["role"] == "admin"
    # One-time: the token does not work twice; the invitation is no longer open.
    again = await accept(client, invitation["token"], invitee["headers"])
    assert again.status_code == 404 and again.json()["code"] == "invitation_invalid"
    assert (await client.get("/api/v1/invitations", headers=owner["headers"])).json()["items"] == []
    # The invitee's own organization is still theirs.
    assert (await client.get("/api/v1/me", headers=invitee["headers"])).json()["tenant"]["id"] == invitee["tenant"][
        "id"
    ]


async def test_only_the_invited_address_can_accept(client):
    owner = await register(client)
    invitee, stranger = await register(client), await register(client)
    invitation = await invite(client, owner, invitee["email"])
    refused = await accept(client, invitation["token"], stranger["headers"])
    assert refused.status_code == 403 and refused.json()["code"] == "invitation_email_mismatch"
    assert (await accept(client, invitation["token"], invitee["headers"])).status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3] + "xyz",  # wrong secret
        lambda t: "inv1." + uuid.uuid4().hex + t[37:],  # another tenant
        lambda t: "garbage",
    ],
)
async def test_a_wrong_token_is_404(client, mangle):
    owner = await register(client)
    invitee = await register(client)
    invitation = await invite(client, owner, invitee["email"])
    resp = await accept(client, mangle(invitation["token"]), invitee["headers"])
    assert resp.status_code == 404 and resp.json()["code"] == "invitation_invalid"


async def test_withdrawn_expired_and_replaced_invitations_do_not_work(client, settings):
    owner = await register(client)
    invitee = await register(client)
    first = await invite(client, owner, invitee["email"])
    second = await invite(client, owner, invitee["email"])  # inviting again replaces the first
    assert (await accept(client, first["token"], invitee["headers"])).status_code == 404
    assert (await client.delete(f"/api/v1/invitations/{second['id']}", headers=owner["headers"])).status_code == 204
    assert (await accept(client, second["token"], invitee["headers"])).status_code == 404
    third = await invite(client, owner, invitee["email"])
    engine = create_engine(settings)
    try:
        async with session_scope(create_sessionmaker(engine), uuid.UUID(owner["tenant"]["id"])) as s:
            await s.execute(
                update(Invitation)
                .where(Invitation.id == uuid.UUID(third["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        await engine.dispose()
    assert (await accept(client, third["token"], invitee["headers"])).status_code == 404


async def test_who_may_invite(client):
    owner = await register(client)
    admin_invite = await invite(client, owner, (admin := await register(client))["email"], "admin")
    admin_headers = bearer(
        (await accept(client, admin_invite["token"], admin["headers"])).json()["tokens"]["access_token"]
    )
    # An admin invites members and admins, not owners; a member invites nobody; an API key accepts nothing.
    assert (
        await client.post("/api/v1/invitations", json={"email": unique_email()}, headers=admin_headers)
    ).status_code == 201
    owner_grant = await client.post(
        "/api/v1/invitations", json={"email": unique_email(), "role": "owner"}, headers=admin_headers
    )
    assert owner_grant.status_code == 403
    member = await register(client)
    member_invite = await invite(client, owner, member["email"])
    member_headers = bearer(
        (await accept(client, member_invite["token"], member["headers"])).json()["tokens"]["access_token"]
    )
    assert (
        await client.post("/api/v1/invitations", json={"email": unique_email()}, headers=member_headers)
    ).status_code == 403
    key = (
        await client.post("/api/v1/api-keys", json={"name": "k", "scopes": ["read", "write"]}, headers=owner["headers"])
    ).json()
    pending = await invite(client, owner, unique_email())
    assert (await accept(client, pending["token"], bearer(key["key"]))).status_code == 403
    # Inviting a member again is a conflict; the old way of adding people without consent is gone.
    dup = await client.post("/api/v1/invitations", json={"email": member["email"]}, headers=owner["headers"])
    assert dup.status_code == 409 and dup.json()["code"] == "already_member"
    gone = await client.post("/api/v1/members", json={"email": member["email"]}, headers=owner["headers"])
    assert gone.status_code == 405


async def test_invitations_are_tenant_scoped(client, settings):
    a, b = await register(client), await register(client)
    invitation = await invite(client, a, unique_email())
    assert (await client.delete(f"/api/v1/invitations/{invitation['id']}", headers=b["headers"])).status_code == 404
    assert (await client.get("/api/v1/invitations", headers=b["headers"])).json()["items"] == []
    engine = create_engine(settings)
    try:
        b_id = uuid.UUID(b["tenant"]["id"])
        async with session_scope(create_sessionmaker(engine), b_id) as s:
            repo = InvitationRepository(s, b_id)
            assert await repo.get(uuid.UUID(invitation["id"])) is None
            assert await repo.update_where({"revoked_at": utcnow()}, Invitation.id == uuid.UUID(invitation["id"])) == 0
            assert await repo.delete(uuid.UUID(invitation["id"])) is False
    finally:
        await engine.dispose()
    assert [i["id"] for i in (await client.get("/api/v1/invitations", headers=a["headers"])).json()["items"]] == [
        invitation["id"]
    ]


# ---- sign-up modes ------------------------------------------------------------------------------------------


@pytest.fixture
def mode_app(settings):
    def build(mode: str) -> AsyncTestClient:
        return AsyncTestClient(app=create_app(msgspec.structs.replace(settings, signup=mode)))

    return build


async def test_invite_only_sign_up(client, mode_app):
    owner = await register(client)
    email = unique_email("invited")
    invitation = await invite(client, owner, email, "admin")
    async with mode_app("invite_only") as c:
        plain = await c.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD, "organization_name": "X"}
        )
        assert plain.status_code == 403 and plain.json()["code"] == "signup_closed"
        stranger = unique_email()
        wrong = await c.post(
            "/api/v1/auth/register",
            json={"email": stranger, "password": PASSWORD, "invitation_token": invitation["token"]},
        )
        assert wrong.status_code == 403 and wrong.json()["code"] == "invitation_email_mismatch"
        joined = await c.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "invitation_token": invitation["token"]},
        )
        assert joined.status_code == 201, joined.text
        body = joined.json()
        assert body["tenant"]["id"] == owner["tenant"]["id"] and body["role"] == "admin"
        assert (await c.get("/api/v1/me", headers=bearer(body["tokens"]["access_token"]))).json()["role"] == "admin"
    # The failed attempt left no account behind (it rolled back).
    assert (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).status_code == 200


async def test_closed_sign_up_still_lets_accounts_accept(client, mode_app):
    owner = await register(client)
    existing = await register(client)
    invitation = await invite(client, owner, existing["email"])
    newcomer = await invite(client, owner, (email := unique_email()))
    async with mode_app("closed") as c:
        refused = await c.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "invitation_token": newcomer["token"]},
        )
        assert refused.status_code == 403 and refused.json()["code"] == "signup_closed"
        assert (await accept(c, invitation["token"], existing["headers"])).status_code == 200


async def test_open_sign_up_without_an_organization_name(client):
    resp = await client.post("/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD})
    assert resp.status_code == 201 and resp.json()["tenant"]["name"] == "My organization"
