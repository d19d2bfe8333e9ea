"""The outbox: a job enqueued only if the transaction committed, and delivered exactly once even when the
first enqueue fails or the process dies between commit and enqueue."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid

from arq.connections import ArqRedis
from arq.worker import Worker
from sqlalchemy import func, select

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models import AuditEvent, OutboxMessage
from app.db.outbox import add_job, relay, take_pending
from app.domain.accounts.jobs import source_id_for
from app.lib.redis import arq_client
from app.worker.settings import build_worker_settings, outbox_sweep
from tests.conftest import unique_email


async def _run_worker(settings) -> None:
    kwargs = build_worker_settings(settings, serve_metrics=False)
    kwargs.update(burst=True, handle_signals=False, poll_delay=0.05, cron_jobs=[])
    worker = Worker(**kwargs)
    try:
        await worker.main()
    finally:
        await worker.close()


async def _audit_count(sm, tenant_id: uuid.UUID, job_id: str) -> int:
    async with session_scope(sm, tenant_id) as s:
        stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.source_id == source_id_for(job_id))
        return int((await s.execute(stmt)).scalar_one())


async def _outbox_row(sm, job_id: str) -> OutboxMessage:
    async with session_scope(sm) as s:
        return (await s.execute(select(OutboxMessage).where(OutboxMessage.job_id == job_id))).scalar_one()


async def test_registration_job_runs_once_via_relay(client, settings, redis):
    resp = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": "correct horse battery", "organization_name": "Relay"},
    )
    tid = uuid.UUID(resp.json()["tenant"]["id"])
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        msg = await _outbox_row(sm, f"audit:tenant.registered:{tid}")
        assert msg.enqueued_at is not None  # relayed right after commit
        await _run_worker(settings)
        assert await _audit_count(sm, tid, msg.job_id) == 1
    finally:
        await engine.dispose()


async def test_first_enqueue_fails_then_sweep_delivers_once(settings, redis):
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    dead = ArqRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        tid = await _new_tenant(sm)
        job_id = f"audit:test:{uuid.uuid4()}"
        async with session_scope(sm, tid) as s:
            add_job(s, "audit.record", job_id, tenant_id=tid, action="test.event", data={})
            pending = take_pending(s) or [m.id for m in s.new if isinstance(m, OutboxMessage)]
        assert await relay(sm, dead, pending) == 0  # Redis unreachable at commit time
        msg = await _outbox_row(sm, job_id)
        assert msg.enqueued_at is None and msg.attempts == 1
        await _age(sm, msg.id)
        live = arq_client(settings.redis_url, settings.queue_name)
        ctx = {"sessionmaker": sm, "redis": live}
        assert await outbox_sweep(ctx) >= 1
        assert await outbox_sweep(ctx) == 0  # a second sweep finds nothing
        await _run_worker(settings)
        await _run_worker(settings)
        assert await _audit_count(sm, tid, msg.job_id) == 1
        await live.aclose()
    finally:
        await dead.aclose()
        await engine.dispose()


async def test_process_killed_between_commit_and_enqueue(settings, database, redis):
    """A real process commits an outbox row and is SIGKILLed before it can enqueue; the sweep recovers."""
    job_id = f"audit:killed:{uuid.uuid4()}"
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        tid = await _new_tenant(sm)
        script = textwrap.dedent(
            f"""
            import asyncio, os, signal, uuid
            from app.db.engine import create_engine, create_sessionmaker, session_scope
            from app.db.outbox import add_job
            from app.config import Settings
            async def main():
                settings = Settings(database_url={settings.database_url!r}, redis_url="unused")
                sm = create_sessionmaker(create_engine(settings))
                tid = uuid.UUID({str(tid)!r})
                async with session_scope(sm, tid) as s:
                    add_job(s, "audit.record", {job_id!r}, tenant_id=tid, action="test.killed", data={{}})
                os.kill(os.getpid(), signal.SIGKILL)  # dies after commit, before any relay
            asyncio.run(main())
            """
        )
        proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), timeout=60, check=False)
        assert proc.returncode == -9
        msg = await _outbox_row(sm, job_id)
        assert msg.enqueued_at is None
        await _age(sm, msg.id)
        live = arq_client(settings.redis_url, settings.queue_name)
        try:
            assert await outbox_sweep({"sessionmaker": sm, "redis": live}) >= 1
        finally:
            await live.aclose()
        await _run_worker(settings)
        assert await _audit_count(sm, tid, msg.job_id) == 1
    finally:
        await engine.dispose()


async def test_rolled_back_transaction_enqueues_nothing(settings, redis):
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    job_id = f"audit:rollback:{uuid.uuid4()}"
    try:
        tid = await _new_tenant(sm)
        try:
            async with session_scope(sm, tid) as s:
                add_job(s, "audit.record", job_id, tenant_id=tid, action="never", data={})
                raise RuntimeError("the request failed")
        except RuntimeError:
            pass
        async with session_scope(sm) as s:
            n = (
                await s.execute(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.job_id == job_id))
            ).scalar_one()
        assert n == 0
    finally:
        await engine.dispose()


async def _new_tenant(sm) -> uuid.UUID:
    from app.db.engine import set_tenant
    from app.db.models import Tenant
    from app.lib.ids import uuid7

    tid = uuid7()
    async with session_scope(sm) as s:
        await set_tenant(s, tid)
        s.add(Tenant(id=tid, name="Outbox test"))
    return tid


async def _age(sm, msg_id: uuid.UUID) -> None:
    """Make a row look older than the sweep's grace period (the sweep leaves fresh rows to the relay)."""
    from datetime import timedelta

    from sqlalchemy import update

    async with session_scope(sm) as s:
        await s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(created_at=OutboxMessage.created_at - timedelta(minutes=1))
        )
    await asyncio.sleep(0)
