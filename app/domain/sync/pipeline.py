"""The sync as a pipeline of stages: fetch → normalize → write → evaluate → publish.

Each stage is a small unit with a typed input and output that records its steps in the run's ``StageLog``
(time, counts, its own failure). ``SyncService`` runs them in order and owns the transactions: fetch and
normalize hold no database connection (marketplace calls can take minutes); write, evaluate and publish
share one transaction, so the snapshot, the alert evaluation it asks for, the events and the run's record
commit together or not at all — a failed write step means nothing of the write stage was kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SyncStatus
from app.db.outbox import add_job
from app.domain.billing.services import product_allowance
from app.domain.connections.services import MarketplaceGateway
from app.domain.events.services import record_event
from app.domain.reports.services import request_sheets_refresh
from app.domain.sync import fetch_ozon, fetch_ozon_orders, fetch_wildberries
from app.domain.sync.model import Snapshot
from app.domain.sync.normalize import normalize, resolve_order_warehouses
from app.domain.sync.records import Stage, StageLog, StageStatus
from app.domain.sync.writer import SnapshotWriter, WriteCounts
from app.integrations.marketplace import (
    MarketplaceBadResponse,
    MarketplaceRateLimited,
    MarketplaceUnavailable,
    MarketplaceWaitExhausted,
    WaitBudget,
)
from app.lib.clock import utcnow

ALERTS_JOB = "alerts.evaluate"
# One stocks-report window (WB: 1 request per 20.5 s): a step waits this long for its turn in place.
STEP_WAIT_S = 25.0
# Slow-budget steps (the WB orders feed allows about one request a minute): deferred to the next run when
# their budget is spent, never waited for — the stock is written now.
DEFERRABLE = frozenset({"orders"})


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """The connection as the run found it when it started: the input of every stage."""

    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    run_id: uuid.UUID
    marketplace: str
    credentials: dict[str, str] = field(repr=False)
    cursor: dict[str, Any]
    variants: list[tuple[str, str]]  # (product, variant) marketplace ids already stored
    warehouses: dict[str, str]  # stored warehouse name → marketplace id (order lines carry only a name)


@dataclass(slots=True)
class Written:
    """What the write stage did: its counts, how the run ends, and the connection's cursors after it."""

    counts: WriteCounts
    status: SyncStatus  # succeeded, or partially_failed when a source failed (the rest is written)
    cursor: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, as the run's record, its event and the connection's last status say it."""

    status: SyncStatus
    counts: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error: str | None = None


# What each fetch step adds to the snapshot, as its counts.
_FETCH_COUNTS = {
    "catalogue": ("products",),
    "fbo_stock": ("stock_rows", "warehouses"),
    "fbs_stock": ("stock_rows", "warehouses"),
    "orders": ("orders",),
}


def _sizes(snapshot: Snapshot) -> dict[str, int]:
    return {
        "products": len(snapshot.catalog),
        "stock_rows": len(snapshot.stock),
        "warehouses": len(snapshot.warehouses),
        "orders": len(snapshot.orders or ()),
        "errors": len(snapshot.errors),
    }


def _checkpoint(snapshot: Snapshot) -> Callable[[], None]:
    """A way back to the snapshot as it is now: a step deferred half-way (a 429 on its second page) leaves
    nothing behind, so the step can run again from its start without duplicating what it had read."""
    sizes = (len(snapshot.catalog), len(snapshot.warehouses), len(snapshot.stock), len(snapshot.errors))
    covered = (snapshot.covered_fbo, set(snapshot.covered_fbs))
    cursors = (snapshot.catalogue_cursor, snapshot.catalogue_complete, snapshot.orders, snapshot.orders_cursor)

    def restore() -> None:
        del snapshot.catalog[sizes[0] :], snapshot.warehouses[sizes[1] :]
        del snapshot.stock[sizes[2] :], snapshot.errors[sizes[3] :]
        snapshot.covered_fbo, snapshot.covered_fbs = covered[0], set(covered[1])
        snapshot.catalogue_cursor, snapshot.catalogue_complete, snapshot.orders, snapshot.orders_cursor = cursors

    return restore


class RunMustWait(Exception):
    """A step the run cannot do without (catalogue, stock) must wait longer than a step may sleep: the run
    waits (``waiting``, with ``resume_at``) and its next job takes up this step. ``snapshot`` is what the
    finished steps fetched, kept for that job."""

    def __init__(self, step: str, retry_after: float, reason: str, snapshot: Snapshot) -> None:
        super().__init__(reason)
        self.step = step
        self.retry_after = retry_after
        self.reason = reason
        self.snapshot = snapshot


class FetchStage:
    """Reads every source of the marketplace into one ``Snapshot``.

    A source that fails (5xx or timeout after the client's retries, an undecodable body) is recorded
    ``failed`` and the others still run; a refusal (401/403) ends the stage at once (the caller decides);
    when every source failed it is an outage, not a partial result: ``MarketplaceUnavailable``, retried later.

    Marketplace limits (issue 14 §1): a 429 or a spent budget is waited out inside the step (the same request
    again, ``WaitBudget``) when the wait is at most ``step_wait``; a slow-budget step (``DEFERRABLE``: the
    orders feed) never waits — it is marked ``deferred`` with ``resume_at`` and the next run does it, so the
    stock is written now; any other step that must wait longer raises ``RunMustWait``. A resumed run passes
    the snapshot and the records of its earlier job: finished steps are not fetched again.
    """

    def __init__(self, gateway: MarketplaceGateway, budget: WaitBudget | None = None, step_wait: float = STEP_WAIT_S):
        self.gateway = gateway
        self.budget = budget or WaitBudget(0.0)
        self.step_wait = step_wait

    async def run(self, target: SyncTarget, now: datetime, log: StageLog, snapshot: Snapshot | None = None) -> Snapshot:
        snapshot = snapshot if snapshot is not None else Snapshot()
        done = {name for name, r in log.of(Stage.FETCH).items() if r.status is not StageStatus.DEFERRED}
        if target.marketplace == "wildberries":
            wb = self.gateway.wildberries(target.connection_id, target.credentials)
            transport = wb.transport
        else:
            oz = self.gateway.ozon(target.connection_id, target.credentials)
            transport = oz.transport
        transport.budget = self.budget

        async def step(name: str, work: Callable[[], Awaitable[None]]) -> None:
            if name in done:  # fetched by an earlier job of this run
                return
            deferrable = name in DEFERRABLE
            self.budget.step_max = 0.0 if deferrable else self.step_wait
            before = _sizes(snapshot)
            restore = _checkpoint(snapshot)
            calls = transport.calls
            try:
                with log.step(name, Stage.FETCH) as record:
                    await work()
                    after = _sizes(snapshot)
                    record.counts = {k: after[k] - before[k] for k in _FETCH_COUNTS[name]}
                    if after["errors"] > before["errors"]:  # e.g. one seller warehouse of several failed
                        record.counts["errors"] = after["errors"] - before["errors"]
                        # a step that lost part of its source failed: it says so, with its errors
                        record.status = StageStatus.FAILED
                        record.error = "; ".join(snapshot.errors[before["errors"] :])[:500]
            except MarketplaceWaitExhausted:
                raise
            except MarketplaceRateLimited as exc:
                restore()  # the step runs again from its start: nothing it read half-way is kept
                record = log.records[name]
                record.status = StageStatus.DEFERRED
                record.resume_at = utcnow() + timedelta(seconds=exc.retry_after)
                if not deferrable:
                    raise RunMustWait(name, exc.retry_after, str(exc), snapshot) from exc
            except (MarketplaceUnavailable, MarketplaceBadResponse) as exc:
                snapshot.errors.append(f"{name}: {exc}")
            finally:
                log.calls += transport.calls - calls

        if target.marketplace == "wildberries":
            await step("catalogue", lambda: fetch_wildberries.fetch_catalog(wb, target.cursor.get("cards"), snapshot))
            known = {v for _, v in target.variants}

            def every_variant() -> list[tuple[str, str]]:
                return target.variants + [
                    (c.external_id, v.external_id)
                    for c in snapshot.catalog
                    for v in c.variants
                    if v.external_id not in known
                ]

            await step("fbo_stock", lambda: fetch_wildberries.fetch_fbo(wb, snapshot))
            await step("fbs_stock", lambda: fetch_wildberries.fetch_fbs(wb, snapshot, every_variant()))
            await step(
                "orders", lambda: fetch_wildberries.fetch_orders(wb, snapshot, now, target.cursor.get("orders_since"))
            )
        else:
            await step("catalogue", lambda: fetch_ozon.fetch_catalog(oz, snapshot))
            await step("fbo_stock", lambda: fetch_ozon.fetch_fbo(oz, snapshot))
            await step("fbs_stock", lambda: fetch_ozon.fetch_fbs(oz, snapshot))
            cursor = target.cursor.get("orders_since")
            await step("orders", lambda: fetch_ozon_orders.fetch_orders(oz, snapshot, now, cursor, target.variants))
        snapshot.calls = log.calls
        fetched = log.of(Stage.FETCH)
        if snapshot.errors and all(r.status is StageStatus.FAILED for r in fetched.values()):
            # Nothing at all answered: this is an outage, not a partial result — retry later.
            raise MarketplaceUnavailable(
                "every stage failed: " + "; ".join(snapshot.errors), marketplace=target.marketplace, endpoint="sync"
            )
        return snapshot


class NormalizeStage:
    """The data-correctness rules of SPEC §5 (``normalize``), and order lines matched to their warehouse."""

    def run(self, snapshot: Snapshot, target: SyncTarget, log: StageLog) -> Snapshot:
        with log.step("normalize", Stage.NORMALIZE) as record:
            reported = len(snapshot.stock)
            normalize(snapshot)
            resolve_order_warehouses(snapshot, target.warehouses)
            record.counts = {
                "stock_rows": len(snapshot.stock),
                "warehouses": len(snapshot.warehouses),
                "dropped_rows": reported - len(snapshot.stock),
            }
        return snapshot


class WriteStage:
    """Writes the snapshot in the caller's transaction: catalogue and warehouses, the stock snapshot with its
    history, the order lines — one step each. The plan's product limit decides first what is kept."""

    def __init__(self, *, billing_enabled: bool = False) -> None:
        self.billing_enabled = billing_enabled

    async def run(
        self, session: AsyncSession, target: SyncTarget, snapshot: Snapshot, now: datetime, log: StageLog
    ) -> Written:
        writer = SnapshotWriter(session, target.tenant_id, target.connection_id, target.marketplace)
        counts = WriteCounts()
        with log.step("write_catalog", Stage.WRITE) as record:
            allowance = await product_allowance(
                session,
                target.tenant_id,
                target.connection_id,
                snapshot_products(snapshot),
                billing_enabled=self.billing_enabled,
                now=now,
            )
            if allowance.kept is not None:
                keep_only(snapshot, allowance.kept)
                counts.products_left_out = allowance.left_out
                counts.extra["product_limit"] = allowance.report()
            if snapshot.catalog:
                counts.products, counts.variants = await writer.write_catalog(snapshot.catalog)
            await writer.ensure_stub_variants(snapshot.stock)
            await writer.write_warehouses(snapshot)
            counts.warehouses = len(snapshot.warehouses)
            record.counts = {"products": counts.products, "variants": counts.variants, "warehouses": counts.warehouses}
            if counts.products_left_out:
                record.counts["products_left_out"] = counts.products_left_out
        with log.step("write_stock", Stage.WRITE) as record:
            await writer.write_stock(snapshot, target.run_id, now, counts)
            record.counts = {
                "stock_rows": counts.stock_rows,
                "changes": counts.changes,
                "zeroed": counts.zeroed,
                "history_points": counts.history_points,
                "unmatched_stock_rows": counts.unmatched_stock_rows,
            }
        if snapshot.orders is not None:
            with log.step("write_orders", Stage.WRITE) as record:
                await writer.write_orders(snapshot.orders, counts)
                record.counts = {"orders": counts.orders, "orders_written": counts.orders_written}
        status = SyncStatus.PARTIALLY_FAILED if snapshot.errors else SyncStatus.SUCCEEDED
        return Written(counts, status, next_cursor(target.cursor, snapshot))


def snapshot_products(snapshot: Snapshot) -> set[str]:
    """Every product (marketplace id) the snapshot has anything about."""
    ids = {c.external_id for c in snapshot.catalog} | {r.product_external_id for r in snapshot.stock}
    return ids | (snapshot.orders.product_ids() if snapshot.orders is not None else set())


def keep_only(snapshot: Snapshot, kept: frozenset[str]) -> None:
    """Drop what the plan's product limit leaves out; the writer then zeroes absent stock of kept products
    only (a tracked product past the limit keeps its data as it was)."""
    catalog = [c for c in snapshot.catalog if c.external_id in kept]
    if len(catalog) < len(snapshot.catalog):
        # The catalogue's cursor must not move past cards that were not stored: when the limit allows more,
        # the next syncs read them again.
        snapshot.catalogue_complete = False
    snapshot.catalog = catalog
    snapshot.stock = [r for r in snapshot.stock if r.product_external_id in kept]
    if snapshot.orders is not None:
        snapshot.orders = snapshot.orders.only(kept)
    snapshot.limited_to = kept


def next_cursor(cursor: dict[str, Any], snapshot: Snapshot) -> dict[str, Any] | None:
    """Each cursor advances only when its whole stage succeeded; a failed one keeps its old position."""
    new = dict(cursor)
    if snapshot.catalogue_complete and snapshot.catalogue_cursor:
        new["cards"] = snapshot.catalogue_cursor
    if snapshot.orders is not None and snapshot.orders_cursor:
        new["orders_since"] = snapshot.orders_cursor
    return new or None


def outcome_of(written: Written, snapshot: Snapshot) -> RunOutcome:
    counts = {k: v for k, v in asdict(written.counts).items() if k != "extra"}
    counts.update(written.counts.extra)  # e.g. "product_limit": why products were left out
    counts["calls"] = snapshot.calls
    failed = written.status is SyncStatus.PARTIALLY_FAILED
    return RunOutcome(written.status, counts, "partial" if failed else None, "; ".join(snapshot.errors)[:2000] or None)


class EvaluateStage:
    """Alerts are evaluated from the rows just written, in a job of its own (no marketplace calls); both the
    job id and the event keys derive from the run, so a rerun adds nothing."""

    async def run(self, session: AsyncSession, target: SyncTarget, written: Written, log: StageLog) -> None:
        with log.step("evaluate", Stage.EVALUATE) as record:
            add_job(
                session,
                ALERTS_JOB,
                f"alerts:{target.run_id}",
                tenant_id=target.tenant_id,
                connection_id=str(target.connection_id),
                run_id=str(target.run_id),
            )
            # The tenant's Google Sheets get the fresh report (a job, only when a link wants this connection).
            await request_sheets_refresh(session, target.tenant_id, target.connection_id, target.run_id)
            record.counts = {"changed_rows": written.counts.history_points}


class PublishStage:
    """Tells the tenant how the run ended (``sync.succeeded`` / ``sync.failed``), once per run."""

    def run(self, session: AsyncSession, target: SyncTarget, outcome: RunOutcome, log: StageLog) -> None:
        with log.step("publish", Stage.PUBLISH) as record:
            record_sync_event(
                session,
                target.tenant_id,
                target.connection_id,
                target.run_id,
                outcome.status.value,
                outcome.counts,
                outcome.error_code,
            )
            record.counts = {"events": 1}


def record_sync_event(
    session: AsyncSession,
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
        session,
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
