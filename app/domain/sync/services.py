"""One sync of one connection: lock, fetch stage by stage, normalise, write one snapshot, record the run."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models import Connection, ConnectionStatus, Product, SyncRun, SyncStatus, Variant, Warehouse
from app.db.outbox import JobQueue, add_job, unit_of_work
from app.domain.connections.gateway import MarketplaceGateway
from app.domain.connections.services import decrypt_credentials
from app.domain.events.services import record_event
from app.domain.sync import fetch_ozon, fetch_wildberries
from app.domain.sync.model import Snapshot, WarehouseItem
from app.domain.sync.normalize import normalize
from app.domain.sync.writer import SnapshotWriter, WriteCounts
from app.integrations.marketplace import (
    MarketplaceAuthError,
    MarketplaceBadResponse,
    MarketplaceRateLimited,
    MarketplaceUnavailable,
)
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher
from app.observability.metrics import instruments

log = structlog.get_logger(__name__)
RUN_NAMESPACE = uuid.UUID("2b0f7a3c-9c1e-4d55-8a0e-6f1c3b2d4e5f")


class SyncRescheduled(Exception):
    """The marketplace asked us to wait (429) or is briefly down: run again after ``defer`` seconds."""

    def __init__(self, defer: float, reason: str) -> None:
        super().__init__(reason)
        self.defer = defer
        self.reason = reason


def run_id_for(job_id: str) -> uuid.UUID:
    """Scheduled runs get their id from the job id, so a re-run of the same job records the same run."""
    return uuid.uuid5(RUN_NAMESPACE, job_id)


class SyncService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: MarketplaceGateway,
        cipher: CredentialCipher,
        queue: JobQueue | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.cipher = cipher
        self.queue = queue

    async def run(
        self, tenant_id: uuid.UUID, connection_id: uuid.UUID, run_id: uuid.UUID, trigger: str, job_id: str | None
    ) -> SyncStatus | None:
        started = time.perf_counter()
        async with session_scope(self.sessionmaker, tenant_id) as s:
            conn = (await s.execute(select(Connection).where(Connection.id == connection_id))).scalar_one_or_none()
            if conn is None:
                return None  # deleted since it was queued
            await s.execute(
                insert(SyncRun)
                .values(
                    id=run_id,
                    tenant_id=tenant_id,
                    connection_id=connection_id,
                    trigger=trigger,
                    status=SyncStatus.QUEUED,
                    job_id=job_id,
                    counts={},
                    stages={},
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            if conn.status in (ConnectionStatus.INVALID, ConnectionStatus.DISABLED):
                await self._finish(
                    s,
                    run_id,
                    SyncStatus.FAILED,
                    {},
                    {},
                    "connection_invalid",
                    f"The connection is {conn.status.value}: {conn.status_reason or ''}".strip(),
                )
                return SyncStatus.FAILED
            await s.execute(
                update(SyncRun)
                .where(SyncRun.id == run_id)
                .values(status=SyncStatus.RUNNING, started_at=utcnow(), attempts=SyncRun.attempts + 1)
            )
            marketplace = conn.marketplace.value
            credentials = decrypt_credentials(self.cipher, conn.credentials_encrypted)
            cursor = dict(conn.sync_cursor or {})
            variants = [
                (p, v)
                for p, v in (
                    await s.execute(
                        select(Product.external_id, Variant.external_id)
                        .join(Product, Product.id == Variant.product_id)
                        .where(Variant.connection_id == connection_id)
                    )
                ).all()
            ]
            known_warehouses = {
                name: ext
                for ext, name in (
                    await s.execute(
                        select(Warehouse.external_id, Warehouse.name).where(Warehouse.connection_id == connection_id)
                    )
                ).all()
            }

        now = utcnow()
        snapshot = Snapshot()
        stages: dict[str, Any] = {}
        try:
            await self._fetch(marketplace, connection_id, credentials, cursor, variants, snapshot, stages, now)
        except MarketplaceAuthError as exc:
            async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
                await s.execute(
                    update(Connection)
                    .where(Connection.id == connection_id)
                    .values(
                        status=ConnectionStatus.INVALID,
                        status_reason=f"{exc.status}: {exc}",
                        last_checked_at=utcnow(),
                        last_sync_at=utcnow(),
                        last_sync_status="failed",
                    )
                )
                await self._finish(s, run_id, SyncStatus.FAILED, {}, stages, "marketplace_auth", str(exc))
                record_event(
                    s,
                    tenant_id,
                    "connection.invalid",
                    {
                        "connection_id": str(connection_id),
                        "marketplace": marketplace,
                        "status": exc.status,
                        "reason": str(exc)[:500],
                    },
                    key=f"connection.invalid:{connection_id}:{run_id}",
                )
                _sync_event(s, tenant_id, connection_id, run_id, "failed", {}, "marketplace_auth")
            self._observe("failed", started)
            return SyncStatus.FAILED
        except MarketplaceRateLimited as exc:
            await self._requeue(tenant_id, run_id, stages, f"rate limited by the marketplace ({exc})")
            raise SyncRescheduled(exc.retry_after, "marketplace rate limit") from exc

        normalize(snapshot)
        _resolve_order_warehouses(snapshot, known_warehouses)
        counts = WriteCounts()
        t0 = time.perf_counter()
        async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
            writer = SnapshotWriter(s, tenant_id, connection_id, marketplace)
            if snapshot.catalog:
                counts.products, counts.variants = await writer.write_catalog(snapshot.catalog)
            await writer.ensure_stub_variants(snapshot.stock)
            await writer.write_warehouses(snapshot)
            counts.warehouses = len(snapshot.warehouses)
            stages["write_catalog"] = round(time.perf_counter() - t0, 3)
            t1 = time.perf_counter()
            await writer.write_stock(snapshot, run_id, now, counts)
            stages["write_stock"] = round(time.perf_counter() - t1, 3)
            if snapshot.orders is not None:
                t1 = time.perf_counter()
                await writer.write_orders(snapshot.orders, counts)
                stages["write_orders"] = round(time.perf_counter() - t1, 3)
            values: dict[str, Any] = {"last_sync_at": utcnow(), "last_success_at": now}
            # Each cursor advances only when its whole stage succeeded; a failed one keeps its old position.
            new_cursor = dict(cursor)
            if snapshot.catalogue_complete and snapshot.catalogue_cursor:
                new_cursor["cards"] = snapshot.catalogue_cursor
            if snapshot.orders is not None and snapshot.orders_cursor:
                new_cursor["orders_since"] = snapshot.orders_cursor
            values["sync_cursor"] = new_cursor or None
            failed = bool(snapshot.errors)
            status = SyncStatus.PARTIALLY_FAILED if failed else SyncStatus.SUCCEEDED
            values["last_sync_status"] = status.value
            if not failed:
                values.update(status=ConnectionStatus.ACTIVE)
            await s.execute(update(Connection).where(Connection.id == connection_id).values(**values))
            stages["write"] = round(time.perf_counter() - t0, 3)
            counts_out = {k: v for k, v in asdict(counts).items() if k != "extra"}
            counts_out["calls"] = snapshot.calls
            await self._finish(
                s,
                run_id,
                status,
                counts_out,
                stages,
                "partial" if failed else None,
                "; ".join(snapshot.errors)[:2000] or None,
            )
            # Alerts are evaluated from the rows just written, in a job of their own (no marketplace calls);
            # both the job id and the event key derive from the run, so a rerun adds nothing.
            add_job(
                s,
                "alerts.evaluate",
                f"alerts:{run_id}",
                tenant_id=tenant_id,
                connection_id=str(connection_id),
                run_id=str(run_id),
            )
            _sync_event(s, tenant_id, connection_id, run_id, status.value, counts_out, None)
        instruments().rows_upserted.add(counts.changes + counts.zeroed)
        instruments().history_points.add(counts.history_points)
        self._observe(status.value, started)
        log.info("sync.run.finished", connection_id=str(connection_id), status=status.value, **counts_out)
        return status

    async def _fetch(
        self,
        marketplace: str,
        connection_id: uuid.UUID,
        credentials: dict[str, str],
        cursor: dict[str, Any],
        variants: list[tuple[str, str]],
        snapshot: Snapshot,
        stages: dict[str, Any],
        now: datetime,
    ) -> None:
        async def stage(name: str, coro: Any, *, essential: bool = False) -> None:
            t0 = time.perf_counter()
            try:
                await coro
                stages[name] = round(time.perf_counter() - t0, 3)
            except (MarketplaceUnavailable, MarketplaceBadResponse) as exc:
                stages[name] = f"failed: {exc}"
                snapshot.errors.append(f"{name}: {exc}")
                if essential:
                    raise

        if marketplace == "wildberries":
            wb = self.gateway.wildberries(connection_id, credentials)
            await stage("catalogue", fetch_wildberries.fetch_catalog(wb, cursor.get("cards"), snapshot))
            known = {v for _, v in variants}
            all_variants = variants + [
                (c.external_id, v.external_id)
                for c in snapshot.catalog
                for v in c.variants
                if v.external_id not in known
            ]
            await stage("fbo_stock", fetch_wildberries.fetch_fbo(wb, snapshot))
            await stage("fbs_stock", fetch_wildberries.fetch_fbs(wb, snapshot, all_variants))
            await stage("orders", fetch_wildberries.fetch_orders(wb, snapshot, now, cursor.get("orders_since")))
        else:
            oz = self.gateway.ozon(connection_id, credentials)
            await stage("catalogue", fetch_ozon.fetch_catalog(oz, snapshot))
            await stage("fbo_stock", fetch_ozon.fetch_fbo(oz, snapshot))
            await stage("fbs_stock", fetch_ozon.fetch_fbs(oz, snapshot))
        if len(snapshot.errors) == len([k for k in stages if k != "write"]) and snapshot.errors:
            # Nothing at all answered: this is an outage, not a partial result — retry later.
            raise MarketplaceUnavailable(
                "every stage failed: " + "; ".join(snapshot.errors), marketplace=marketplace, endpoint="sync"
            )

    async def _requeue(self, tenant_id: uuid.UUID, run_id: uuid.UUID, stages: dict[str, Any], reason: str) -> None:
        async with session_scope(self.sessionmaker, tenant_id) as s:
            await s.execute(
                update(SyncRun)
                .where(SyncRun.id == run_id)
                .values(status=SyncStatus.QUEUED, error=reason, stages=stages)
            )

    async def _finish(
        self,
        s: AsyncSession,
        run_id: uuid.UUID,
        status: SyncStatus,
        counts: dict[str, Any],
        stages: dict[str, Any],
        code: str | None,
        error: str | None,
    ) -> None:
        await s.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(status=status, finished_at=utcnow(), counts=counts, stages=stages, error_code=code, error=error)
        )

    def _observe(self, outcome: str, started: float) -> None:
        instruments().sync_runs.add(1, {"outcome": outcome})
        instruments().sync_duration.record(time.perf_counter() - started, {"outcome": outcome})

    async def fail(self, tenant_id: uuid.UUID, run_id: uuid.UUID, code: str, error: str) -> None:
        async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
            await self._finish(s, run_id, SyncStatus.FAILED, {}, {}, code, error)
            connection_id = (
                await s.execute(select(SyncRun.connection_id).where(SyncRun.id == run_id))
            ).scalar_one_or_none()
            if connection_id is not None:
                _sync_event(s, tenant_id, connection_id, run_id, "failed", {}, code)
            await s.execute(
                update(Connection)
                .where(Connection.id == select(SyncRun.connection_id).where(SyncRun.id == run_id).scalar_subquery())
                .values(last_sync_at=utcnow(), last_sync_status="failed")
            )
        self._observe("failed", time.perf_counter())


def _sync_event(
    s: AsyncSession,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    run_id: uuid.UUID,
    status: str,
    counts: dict[str, Any],
    error_code: str | None,
) -> None:
    """``sync.succeeded`` (also for a partial result: the data written is good) or ``sync.failed``."""
    kind = "sync.failed" if status == "failed" else "sync.succeeded"
    record_event(
        s,
        tenant_id,
        kind,
        {
            "run_id": str(run_id),
            "connection_id": str(connection_id),
            "status": status,
            "counts": counts,
            "error_code": error_code,
        },
        key=f"{kind}:{run_id}",
    )


def _resolve_order_warehouses(snapshot: Snapshot, known: dict[str, str]) -> None:
    """Orders name their warehouse but carry no id: match the exact trimmed name (rule 4), else add a
    name-keyed warehouse whose kind comes from the order's own type field — the warehouse set of a product
    is the union of its stock and order sources (rule 3)."""
    if not snapshot.orders:
        return
    by_name = dict(known)
    by_name.update({w.name: w.external_id for w in snapshot.warehouses})
    for order in snapshot.orders:
        name = order.warehouse_name
        if not name:
            continue
        ext = by_name.get(name)
        if ext is None and order.warehouse_kind:
            ext = "name:" + name
            snapshot.warehouses.append(WarehouseItem(ext, name, order.warehouse_kind, None))
            by_name[name] = ext
        order.warehouse_external_id = ext
