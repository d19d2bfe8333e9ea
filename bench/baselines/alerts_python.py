"""The baseline the set-based evaluation replaced (issue 13 §2): the per-product Python evaluation as it was
at a87c2e4 (app/domain/alerts/evaluation.py and the StockReader of repositories.py), kept here only so that
``bench/alerts.py`` can run both in the same run. Not imported by the application.

Evaluating the rules over a connection's synced stock after a sync, opening/escalating/resolving alerts.

Idempotent twice over: the evaluation of a run is claimed once (``alert_evaluations``), and an alert is
opened only where no alert is open for its subject (a partial unique index), so neither a second job for
the same run nor a concurrent one for another run can open a duplicate. Evaluations of one connection
also take a transaction-scoped advisory lock, so they apply one after another.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Product, StockLevel, SyncRun, Warehouse
from app.db.models.notifications import Alert, AlertEvaluation
from app.domain.alerts.repositories import AlertRepository, AlertRuleRepository, EvaluationRepository
from app.domain.alerts.rules import Rule, classify, decide, deployment_default, rule_from_row
from app.domain.events.metrics import alert_instruments
from app.domain.events.services import FanoutLookups, Published, publish_event
from app.domain.events.types import STOCK_LOW, STOCK_OUT, STOCK_RESTORED
from app.domain.reports.services import CoverService
from app.lib.clock import utcnow
from app.lib.ids import uuid7

log = structlog.get_logger(__name__)
EVALUATE_JOB = "alerts.evaluate"


class StockReader:
    """The synced rows an evaluation reads (no marketplace calls): totals per product, cells per place."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def run_status(self, run_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        row = (
            await self.session.execute(
                select(SyncRun.connection_id, SyncRun.status).where(
                    SyncRun.tenant_id == self.tenant_id, SyncRun.id == run_id
                )
            )
        ).first()
        return (row[0], row[1].value) if row else None

    async def product_totals(self, connection_id: uuid.UUID) -> list[Any]:
        """Products with at least one stock row (never-stocked products raise nothing) and their totals."""
        totals = (
            select(StockLevel.product_id, func.sum(StockLevel.quantity).label("total"))
            .where(StockLevel.tenant_id == self.tenant_id, StockLevel.connection_id == connection_id)
            .group_by(StockLevel.product_id)
            .subquery()
        )
        stmt = select(
            Product.id,
            Product.connection_id,
            Product.external_id,
            Product.vendor_code,
            Product.title,
            Product.marketplace,
            totals.c.total,
        ).join(totals, totals.c.product_id == Product.id)
        return list((await self.session.execute(stmt.where(Product.tenant_id == self.tenant_id))).all())

    async def cells(self, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
        if not pairs:
            return {}
        products = sorted({p for p, _ in pairs})
        stmt = (
            select(StockLevel.product_id, StockLevel.warehouse_id, func.sum(StockLevel.quantity))
            .where(StockLevel.tenant_id == self.tenant_id, StockLevel.product_id.in_(products))
            .group_by(StockLevel.product_id, StockLevel.warehouse_id)
        )
        wanted = set(pairs)
        return {(r[0], r[1]): int(r[2]) for r in (await self.session.execute(stmt)).all() if (r[0], r[1]) in wanted}

    async def warehouse_names(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        stmt = select(Warehouse.id, Warehouse.name).where(Warehouse.tenant_id == self.tenant_id, Warehouse.id.in_(ids))
        return {r[0]: r[1] for r in (await self.session.execute(stmt)).all()}


@dataclass
class Subject:
    key: str
    product: Any
    warehouse_id: uuid.UUID | None
    rule: Rule
    quantity: int
    cover: float | None = None


@dataclass
class Outcome:
    evaluated: bool = True
    subjects: int = 0
    opened: int = 0
    escalated: int = 0
    resolved: int = 0
    events: list[str] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "subjects": self.subjects,
            "opened": self.opened,
            "escalated": self.escalated,
            "resolved": self.resolved,
        }


def subject_key(product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> str:
    return f"p:{product_id}" if warehouse_id is None else f"p:{product_id}:w:{warehouse_id}"


class AlertEvaluator:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, low_stock_units: int) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.low_stock_units = low_stock_units
        self.stock = StockReader(session, tenant_id)
        self.alerts = AlertRepository(session, tenant_id)
        # Recipients are read once per evaluation, however many alerts it opens (a first sync opens hundreds).
        self.lookups = FanoutLookups(session, tenant_id)

    async def evaluate(self, connection_id: uuid.UUID, run_id: uuid.UUID) -> Outcome:
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"alerts:{connection_id}", 0)))
        )
        run = await self.stock.run_status(run_id)
        if run is None or run[0] != connection_id or run[1] not in ("succeeded", "partially_failed"):
            log.info("alerts.evaluate.skipped", run_id=str(run_id), reason="run not found or not successful")
            return Outcome(evaluated=False)
        if not await EvaluationRepository(self.session, self.tenant_id).start(run_id, connection_id):
            return Outcome(evaluated=False)
        subjects = await self._subjects(connection_id)
        outcome = Outcome(subjects=len(subjects))
        open_alerts = {a.subject_key: a for a in await self.alerts.open_for_connection(connection_id)}
        names = await self.stock.warehouse_names(sorted({s.warehouse_id for s in subjects if s.warehouse_id}))
        now = utcnow()
        for subj in subjects:
            alert = open_alerts.pop(subj.key, None)
            state = classify(subj.rule, subj.quantity, subj.cover)
            action = decide(alert.level if alert else None, state)
            if action == "open":
                await self._open(subj, state, run_id, now, names, outcome)
            elif alert is not None and action == "escalate":
                await self._transition(alert, subj, run_id, now, names, outcome, escalate=True)
            elif alert is not None and action == "resolve":
                await self._transition(alert, subj, run_id, now, names, outcome, escalate=False)
            elif alert is not None:
                alert.last_quantity, alert.last_days_of_cover = subj.quantity, subj.cover
        # Open alerts nobody evaluates any more (the product was muted, an override removed): close quietly.
        for alert in open_alerts.values():
            alert.status, alert.resolved_at, alert.resolved_run_id = "resolved", now, run_id
            alert.resolution = "rule_changed"
        await self.session.flush()
        await self.session.execute(
            update(AlertEvaluation)
            .where(AlertEvaluation.tenant_id == self.tenant_id, AlertEvaluation.run_id == run_id)
            .values(counts=outcome.counts())
        )
        return outcome

    async def _rules(
        self, connection_id: uuid.UUID
    ) -> tuple[Rule, dict[uuid.UUID, Rule], dict[uuid.UUID, list[tuple[Rule, uuid.UUID]]]]:
        """The default, product overrides, and product × warehouse overrides of this connection's products."""
        repo = AlertRuleRepository(self.session, self.tenant_id)
        row = await repo.default()
        default = rule_from_row(row) if row is not None else deployment_default(self.low_stock_units)
        per_product: dict[uuid.UUID, Rule] = {}
        per_place: dict[uuid.UUID, list[tuple[Rule, uuid.UUID]]] = defaultdict(list)
        for r in await repo.overrides_for_connection(connection_id):
            assert r.product_id is not None
            if r.warehouse_id is None:
                per_product[r.product_id] = rule_from_row(r)
            else:
                per_place[r.product_id].append((rule_from_row(r), r.warehouse_id))
        return default, per_product, per_place

    async def _subjects(self, connection_id: uuid.UUID) -> list[Subject]:
        default, per_product, per_place = await self._rules(connection_id)
        products = await self.stock.product_totals(connection_id)
        subjects: list[Subject] = []
        place_pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
        for p in products:
            rule = per_product.get(p.id, default)
            if rule.enabled:
                subjects.append(Subject(subject_key(p.id, None), p, None, rule, int(p.total)))
            for place_rule, wid in per_place.get(p.id, []):
                place_pairs.append((p.id, wid))
                if place_rule.enabled:
                    subjects.append(Subject(subject_key(p.id, wid), p, wid, place_rule, 0))
        cells = await self.stock.cells(place_pairs)
        for s in subjects:
            if s.warehouse_id is not None:
                s.quantity = cells.get((s.product.id, s.warehouse_id), 0)
        await self._cover(subjects)
        return subjects

    async def _cover(self, subjects: list[Subject]) -> None:
        """Days of cover by orders (the reports' CoverService), only where a rule asks for it."""
        by_window: dict[int, list[Subject]] = defaultdict(list)
        for s in subjects:
            if s.rule.uses_cover:
                by_window[s.rule.cover_window_days].append(s)
        cover_service = CoverService(self.session, self.tenant_id)
        for days, group in by_window.items():
            products = list({s.product.id: s.product for s in group}.values())
            _, flows = await cover_service.method_and_flows(products, days, False)
            per_product: dict[uuid.UUID, int] = defaultdict(int)
            per_place: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
            for (pid, _vid, wid), n in flows.items():
                per_product[pid] += n
                per_place[(pid, wid)] += n
            for s in group:
                sold = (
                    per_product[s.product.id] if s.warehouse_id is None else per_place[(s.product.id, s.warehouse_id)]
                )
                velocity = sold / days
                s.cover = round(max(s.quantity, 0) / velocity, 1) if velocity > 0 else None

    def _data(
        self, subj: Subject, alert_id: uuid.UUID, level: str, run_id: uuid.UUID, names: dict[uuid.UUID, str]
    ) -> dict[str, Any]:
        p = subj.product
        return {
            "alert_id": str(alert_id),
            "level": level,
            "connection_id": str(p.connection_id),
            "sync_run_id": str(run_id),
            "product": {
                "id": str(p.id),
                "external_id": p.external_id,
                "vendor_code": p.vendor_code,
                "title": p.title,
                "marketplace": p.marketplace.value,
            },
            "warehouse": (
                {"id": str(subj.warehouse_id), "name": names.get(subj.warehouse_id)} if subj.warehouse_id else None
            ),
            "quantity": subj.quantity,
            "days_of_cover": subj.cover,
            "threshold": subj.rule.snapshot(),
        }

    async def _open(
        self, subj: Subject, state: str, run_id: uuid.UUID, now: datetime, names: dict[uuid.UUID, str], outcome: Outcome
    ) -> None:
        alert_id = uuid7()
        opened = await self.alerts.open_(
            {
                "id": alert_id,
                "connection_id": subj.product.connection_id,
                "product_id": subj.product.id,
                "warehouse_id": subj.warehouse_id,
                "subject_key": subj.key,
                "status": "open",
                "level": state,
                "rule_scope": subj.rule.scope,
                "threshold": subj.rule.snapshot(),
                "opened_at": now,
                "opened_run_id": run_id,
                "quantity_at_open": subj.quantity,
                "days_of_cover_at_open": subj.cover,
                "last_quantity": subj.quantity,
                "last_days_of_cover": subj.cover,
            }
        )
        if not opened:
            return
        event_type = STOCK_OUT if state == "out" else STOCK_LOW
        data = self._data(subj, alert_id, state, run_id, names)
        await self._emit(event_type, data, f"{event_type}:{alert_id}", now, outcome)
        outcome.opened += 1
        outcome.events.append(event_type)

    async def _transition(
        self,
        alert: Alert,
        subj: Subject,
        run_id: uuid.UUID,
        now: datetime,
        names: dict[uuid.UUID, str],
        outcome: Outcome,
        *,
        escalate: bool,
    ) -> None:
        alert.last_quantity, alert.last_days_of_cover = subj.quantity, subj.cover
        if escalate:
            alert.level = "out"
            event_type = STOCK_OUT
            outcome.escalated += 1
        else:
            alert.status, alert.resolved_at, alert.resolved_run_id, alert.resolution = (
                "resolved",
                now,
                run_id,
                "restored",
            )
            event_type = STOCK_RESTORED
            outcome.resolved += 1
        data = self._data(subj, alert.id, alert.level, run_id, names)
        data["opened_at"] = alert.opened_at.isoformat()
        await self._emit(event_type, data, f"{event_type}:{alert.id}", now, outcome)
        outcome.events.append(event_type)

    async def _emit(self, event_type: str, data: dict[str, Any], key: str, now: datetime, outcome: Outcome) -> None:
        published = await publish_event(
            self.session, self.tenant_id, event_type, data, key=key, occurred_at=now, lookups=self.lookups
        )
        if published is not None:
            outcome.published.append(published)
        alert_instruments().alerts_raised.add(1, {"type": event_type})
