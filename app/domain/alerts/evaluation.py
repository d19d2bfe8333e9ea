"""Evaluating the rules after a sync, set-based: one SQL statement judges the subjects and opens, escalates,
resolves and closes alerts (``transitions.py``); the events go out as one batch — or as one digest.

Idempotent twice over: the evaluation of a run is claimed once (``alert_evaluations``), and an alert is
opened only where no alert is open for its subject (a partial unique index), so neither a second job for
the same run nor a concurrent one for another run can open a duplicate. Evaluations of one connection
also take a transaction-scoped advisory lock, so they apply one after another.

Which subjects are judged: only the products the sync changed plus those with an open alert, unless the
rules changed since the connection's previous evaluation (their fingerprint), a rule uses days of cover
(which moves with orders, not with stock), or this is the baseline — then every product.

Silence: the baseline (the connection's first evaluation, or the first after ``alert_baseline_after_hours``
without one) opens alerts without an event each and sends one ``stock.digest``; so does a sync with more
transitions than the organization's ``max_alerts_per_sync``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, SyncRun
from app.db.models.notifications import AlertEvaluation
from app.domain.alerts.digest import digest_data
from app.domain.alerts.repositories import EvaluationRepository
from app.domain.alerts.rules import DEFAULT_MAX_ALERTS_PER_SYNC
from app.domain.alerts.transitions import Applied, Transition, TransitionRepository
from app.domain.events.services import (
    STOCK_DIGEST,
    STOCK_LOW,
    STOCK_OUT,
    STOCK_RESTORED,
    FanoutLookups,
    NewEvent,
    Published,
    alert_instruments,
    publish_events,
)
from app.domain.reports.services import CoverService
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)
EVALUATE_JOB = "alerts.evaluate"
_EVENT_TYPE = {"escalate": STOCK_OUT, "resolve": STOCK_RESTORED}


@dataclass
class Outcome:
    evaluated: bool = True
    mode: str = ""  # baseline | full | changed
    subjects: int = 0
    opened: int = 0
    escalated: int = 0
    resolved: int = 0
    closed: int = 0
    digest: str | None = None  # why one digest was sent instead of an event per alert
    events: list[str] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "subjects": self.subjects,
            "opened": self.opened,
            "escalated": self.escalated,
            "resolved": self.resolved,
            "closed": self.closed,
            "digest": self.digest,
        }


def subject_key(product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> str:
    return f"p:{product_id}" if warehouse_id is None else f"p:{product_id}:w:{warehouse_id}"


class AlertEvaluator:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        low_stock_units: int,
        *,
        baseline_after: timedelta = timedelta(hours=24),
        public_url: str = "",
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.low_stock_units = low_stock_units
        self.baseline_after = baseline_after
        self.public_url = public_url.rstrip("/")
        self.sql = TransitionRepository(session, tenant_id)

    async def evaluate(self, connection_id: uuid.UUID, run_id: uuid.UUID) -> Outcome:
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"alerts:{connection_id}", 0)))
        )
        run = await self._run(run_id)
        if run is None or run.connection_id != connection_id or run.status not in ("succeeded", "partially_failed"):
            log.info("alerts.evaluate.skipped", run_id=str(run_id), reason="run not found or not successful")
            return Outcome(evaluated=False)
        if not await EvaluationRepository(self.session, self.tenant_id).start(run_id, connection_id):
            return Outcome(evaluated=False)
        now = utcnow()
        previous = await self.sql.previous(connection_id, run_id)
        rules = await self.sql.rules_state(connection_id, self.low_stock_units)
        baseline = previous is None or previous[0] < now - self.baseline_after
        full = baseline or rules.uses_cover or previous is None or previous[1] != rules.fingerprint
        cover = await self._cover(connection_id) if rules.uses_cover else {}
        applied = await self.sql.apply(
            connection_id,
            run_id,
            now,
            self.low_stock_units,
            cover,
            # Every point of the run is younger than the run's row (a day's margin for clock skew).
            changed_since=None if full else run.created_at - timedelta(days=1),
        )
        outcome = self._outcome(applied, "baseline" if baseline else ("full" if full else "changed"))
        cap = DEFAULT_MAX_ALERTS_PER_SYNC if rules.max_alerts_per_sync is None else rules.max_alerts_per_sync
        if baseline:
            if any(t.action != "resolve" for t in applied.transitions):
                outcome.digest = "first_sync" if previous is None else "resumed"
        elif len(applied.transitions) > cap:
            outcome.digest = "flood"
        outcome.published = await self._publish(connection_id, run_id, now, applied, outcome)
        await self.session.execute(
            update(AlertEvaluation)
            .where(AlertEvaluation.tenant_id == self.tenant_id, AlertEvaluation.run_id == run_id)
            .values(counts=outcome.counts(), rules_fingerprint=rules.fingerprint)
        )
        return outcome

    async def _run(self, run_id: uuid.UUID) -> Any:
        row = (
            await self.session.execute(
                select(SyncRun.connection_id, SyncRun.status, SyncRun.created_at).where(
                    SyncRun.tenant_id == self.tenant_id, SyncRun.id == run_id
                )
            )
        ).first()
        return None if row is None else SimpleNamespace(connection_id=row[0], status=row[1].value, created_at=row[2])

    @staticmethod
    def _outcome(applied: Applied, mode: str) -> Outcome:
        actions = [t.action for t in applied.transitions]
        return Outcome(
            mode=mode,
            subjects=applied.subjects,
            opened=actions.count("open"),
            escalated=actions.count("escalate"),
            resolved=actions.count("resolve"),
            closed=applied.closed,
        )

    async def _cover(self, connection_id: uuid.UUID) -> dict[str, float]:
        """Days of cover by orders (the reports' CoverService), only for subjects whose rule asks for it."""
        subjects = await self.sql.cover_subjects(connection_id, self.low_stock_units)
        by_window: dict[int, list[Any]] = defaultdict(list)
        for s in subjects:
            by_window[int(s["window_days"])].append(s)
        cover_service = CoverService(self.session, self.tenant_id)
        out: dict[str, float] = {}
        for days, group in by_window.items():
            products = [
                SimpleNamespace(id=pid, connection_id=connection_id) for pid in {s["product_id"] for s in group}
            ]
            _, flows = await cover_service.method_and_flows(products, days, False)
            per_product: dict[uuid.UUID, int] = defaultdict(int)
            per_place: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
            for (pid, _vid, wid), n in flows.items():
                per_product[pid] += n
                per_place[(pid, wid)] += n
            for s in group:
                wid = s["warehouse_id"]
                sold = per_product[s["product_id"]] if wid is None else per_place[(s["product_id"], wid)]
                velocity = sold / days
                if velocity > 0:
                    out[s["key"]] = round(max(int(s["qty"]), 0) / velocity, 1)
        return out

    async def _publish(
        self, connection_id: uuid.UUID, run_id: uuid.UUID, now: datetime, applied: Applied, outcome: Outcome
    ) -> list[Published]:
        lookups = FanoutLookups(self.session, self.tenant_id)
        if outcome.digest is not None:
            name = (
                await self.session.execute(
                    select(Connection.name).where(
                        Connection.tenant_id == self.tenant_id, Connection.id == connection_id
                    )
                )
            ).scalar_one_or_none()
            data = digest_data(
                outcome.digest,
                connection_id,
                name,
                run_id,
                applied.transitions,
                await self.sql.open_now(connection_id),
                self.public_url,
            )
            events = [NewEvent(STOCK_DIGEST, data, f"{STOCK_DIGEST}:{run_id}")]
        else:
            events = [
                NewEvent(
                    _EVENT_TYPE.get(t.action) or (STOCK_OUT if t.level == "out" else STOCK_LOW),
                    self._data(t, connection_id, run_id),
                    # Keys derive from the alert: a rerun can never emit twice.
                    f"{_EVENT_TYPE.get(t.action) or (STOCK_OUT if t.level == 'out' else STOCK_LOW)}:{t.alert_id}",
                )
                for t in applied.transitions
            ]
        published = await publish_events(self.session, self.tenant_id, events, occurred_at=now, lookups=lookups)
        for event in events:
            alert_instruments().alerts_raised.add(1, {"type": event.type})
            outcome.events.append(event.type)
        return published

    def _data(self, t: Transition, connection_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
        data: dict[str, Any] = {
            "alert_id": str(t.alert_id),
            "level": t.level,
            "connection_id": str(connection_id),
            "sync_run_id": str(run_id),
            "product": {
                "id": str(t.product_id),
                "external_id": t.external_id,
                "vendor_code": t.vendor_code,
                "title": t.title,
                "marketplace": t.marketplace,
            },
            "warehouse": {"id": str(t.warehouse_id), "name": t.warehouse_name} if t.warehouse_id else None,
            "quantity": t.quantity,
            "days_of_cover": t.cover,
            "threshold": msgspec.json.decode(t.threshold),
        }
        if t.action != "open":
            data["opened_at"] = t.opened_at.isoformat()
        return data
