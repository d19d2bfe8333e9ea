"""Tenant isolation: through the API, in the repositories, and in PostgreSQL row-level security."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy import select, text

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models import Membership, Role
from app.domain.accounts.repositories import MembershipRepository
from tests.conftest import _asyncpg_kwargs
from tests.helpers import add_member, register


async def test_other_tenants_ids_are_404_through_the_api(client):
    a = await register(client, "A")
    b = await register(client, "B")
    a_member = await add_member(client, a)
    uid = a_member["user"]["id"]
    assert (
        await client.patch(f"/api/v1/members/{uid}", json={"role": "admin"}, headers=b["headers"])
    ).status_code == 404
    assert (await client.delete(f"/api/v1/members/{uid}", headers=b["headers"])).status_code == 404
    listing = (await client.get("/api/v1/members", headers=b["headers"])).json()
    assert [m["email"] for m in listing["items"]] == [b["email"]]
    # Logging in to a tenant you do not belong to is indistinguishable from bad credentials.
    resp = await client.post(
        "/api/v1/auth/login",
        json={"email": b["email"], "password": "correct horse battery", "tenant_id": a["tenant"]["id"]},
    )
    assert resp.status_code == 401


async def test_repository_scopes_reads_updates_and_bulk_deletes(client, settings):
    a = await register(client, "A")
    b = await register(client, "B")
    a_tid, b_tid = uuid.UUID(a["tenant"]["id"]), uuid.UUID(b["tenant"]["id"])
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    sm = create_sessionmaker(engine)
    try:
        async with session_scope(sm, a_tid) as s:
            a_rows = await MembershipRepository(s, a_tid).list()
            assert len(a_rows) == 1
            a_id = a_rows[0].id
        # Tenant B's repository, even with tenant A's RLS context set, cannot see or touch A's row:
        # the repository filter alone holds the wall.
        async with session_scope(sm, a_tid) as s:
            repo_b = MembershipRepository(s, b_tid)
            assert await repo_b.get(a_id) is None
            assert await repo_b.update_where({"role": Role.MEMBER}, Membership.id == a_id) == 0
            assert await repo_b.delete_where() == 0  # bulk delete over "everything" of B under A's context
        async with session_scope(sm, a_tid) as s:
            row = await MembershipRepository(s, a_tid).get(a_id)
            assert row is not None and row.role == Role.OWNER
        # And with B's context, A's row is invisible to any statement at all (RLS).
        async with session_scope(sm, b_tid) as s:
            rows = (await s.execute(select(Membership).where(Membership.id == a_id))).scalars().all()
            assert rows == []
    finally:
        await engine.dispose()


async def test_no_tenant_context_sees_no_rows(client, database):
    await register(client, "A")
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        assert await conn.fetchval("SELECT count(*) FROM memberships") == 0
        assert await conn.fetchval("SELECT count(*) FROM tenants") == 0
        assert await conn.fetchval("SELECT count(*) FROM refresh_tokens") == 0
        owner = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
        try:
            assert await owner.fetchval("SELECT count(*) FROM memberships") > 0
        finally:
            await owner.close()
    finally:
        await conn.close()


async def test_app_role_is_not_owner_and_cannot_bypass(database):
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert role["rolsuper"] is False and role["rolbypassrls"] is False
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
        )
        assert owned == 0
        forced = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY($1::text[])",
            ["tenants", "memberships", "refresh_tokens", "audit_events"],
        )
        assert len(forced) == 4 and all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in forced)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE memberships DISABLE ROW LEVEL SECURITY")
    finally:
        await conn.close()


async def test_every_tenant_table_has_forced_rls(database):
    from app.db.base import tenant_tables

    conn = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS n "
            "FROM pg_class c WHERE c.relname = ANY($1::text[])",
            tenant_tables(),
        )
        assert {r["relname"] for r in rows} == set(tenant_tables())
        assert all(r["relforcerowsecurity"] and r["n"] == 1 for r in rows)
    finally:
        await conn.close()


async def test_pooled_connection_never_carries_a_tenant(client, settings):
    a = await register(client, "A")
    tid = uuid.UUID(a["tenant"]["id"])
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    sm = create_sessionmaker(engine)
    try:
        async with session_scope(sm, tid) as s:
            assert len((await s.execute(select(Membership))).scalars().all()) == 1
            pid1 = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with session_scope(sm) as s:  # same pooled connection, no tenant
            pid2 = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert pid1 == pid2
            assert (await s.execute(text("SELECT current_setting('app.tenant_id', true)"))).scalar_one() in (
                "",
                None,
            )
            assert (await s.execute(select(Membership))).scalars().all() == []
    finally:
        await engine.dispose()


async def test_with_check_refuses_writing_into_another_tenant(client, settings):
    a = await register(client, "A")
    b = await register(client, "B")
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    sm = create_sessionmaker(engine)
    try:
        with pytest.raises(Exception, match="row-level security"):
            async with session_scope(sm, uuid.UUID(a["tenant"]["id"])) as s:
                s.add(
                    Membership(
                        tenant_id=uuid.UUID(b["tenant"]["id"]),
                        user_id=uuid.UUID(a["user"]["id"]),
                        role=Role.ADMIN,
                    )
                )
                await s.flush()
    finally:
        await engine.dispose()
