"""Delivering one attempt of one webhook delivery, recording it, and scheduling the next.

Retry schedule (delay before attempt n): now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — about 27.6 h in
all. Attempts are scheduled in the database (``next_attempt_at``), not by arq retries: a per-minute sweep
enqueues due attempts with the job id ``whd:<delivery>:<attempt>:<due ms>``; only the 5 s retry is also enqueued
deferred so it does not wait for the sweep. Each attempt is signed afresh (new timestamp).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import select

from app.config import Settings
from app.db.models.notifications import Event, WebhookDelivery, WebhookEndpoint
from app.domain.events.services import ENDPOINT_DISABLED, alert_instruments, publish_event
from app.domain.jobcontext import JobContext, job_session
from app.domain.webhooks import signing
from app.domain.webhooks.repositories import AttemptRepository, DeliveryRepository, EndpointRepository
from app.integrations.webhook_sender import SendResult, send
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher
from app.lib.ids import uuid7
from app.lib.ssrf import IPNetwork, parse_networks

log = structlog.get_logger(__name__)
SCHEDULE_SECONDS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(SCHEDULE_SECONDS)
LEASE = timedelta(seconds=60)  # longer than one attempt can take (15 s)
CLAIM_TOLERANCE = timedelta(seconds=1)  # a deferred job may start a hair before its due time
INLINE_RETRY_SECONDS = 60  # retries sooner than this are enqueued deferred; later ones wait for the sweep
DISABLE_AFTER = timedelta(days=5)
SEND_CONCURRENCY = 64  # concurrent requests of one fan-out job
DELIVER_JOB = "webhooks.deliver"
DELIVER_EVENT_JOB = "webhooks.deliver_event"


def delay_before(attempt_no: int) -> int | None:
    """Seconds to wait before attempt ``attempt_no`` (1-based), None past the schedule."""
    return SCHEDULE_SECONDS[attempt_no - 1] if 1 <= attempt_no <= MAX_ATTEMPTS else None


def attempt_job_id(delivery_id: uuid.UUID, attempt_no: int, due_at: datetime) -> str:
    """Names one scheduled attempt: the deferred retry and the sweep agree on it, so arq enqueues it once."""
    return f"whd:{delivery_id}:{attempt_no}:{int(due_at.timestamp() * 1000)}"


def allowed_networks(settings: Settings) -> tuple[IPNetwork, ...]:
    return parse_networks(settings.webhook_allowed_networks, development=settings.env == "development")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(event: Event) -> bytes:
    """The body every attempt sends (identical across attempts; only the signature headers change)."""
    return msgspec.json.encode(
        {
            "id": str(event.id),
            "type": event.type,
            "created_at": iso(event.created_at),
            "tenant_id": str(event.tenant_id),
            "data": event.data,
        }
    )


def signing_secrets(cipher: CredentialCipher, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, plus the rotated-out one while its 24 h overlap lasts."""
    out = [cipher.decrypt(endpoint.secret_encrypted).decode()]
    if (
        endpoint.previous_secret_encrypted is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        out.append(cipher.decrypt(endpoint.previous_secret_encrypted).decode())
    return out


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event: Event
    attempt_no: int
    max_attempts: int
    url: str
    secrets: list[str]


@dataclass(frozen=True, slots=True)
class Done:
    attempt: Attempt
    started: datetime
    timestamp: int
    result: SendResult


class Deliverer:
    """Claims due attempts (one delivery, or every delivery of an event at once), sends them concurrently,
    and records them in one transaction — so fanning an event out to many endpoints costs two transactions,
    not two per endpoint."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx["settings"]
        self.cipher: CredentialCipher = ctx["cipher"]
        self.allowed = allowed_networks(self.settings)

    async def deliver(self, tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> str:
        """Make the due attempt of one delivery (nothing when it is not due) and record it."""
        done = await self._run(tenant_id, ids=[delivery_id])
        return done[0].result.outcome if done else "not_due"

    async def deliver_event(self, tenant_id: uuid.UUID, event_id: uuid.UUID) -> dict[str, int]:
        """The first attempts of every delivery of one event, sent concurrently."""
        outcomes: dict[str, int] = defaultdict(int)
        for d in await self._run(tenant_id, event_id=event_id):
            outcomes[d.result.outcome] += 1
        return dict(outcomes)

    async def _run(
        self, tenant_id: uuid.UUID, *, ids: list[uuid.UUID] | None = None, event_id: uuid.UUID | None = None
    ) -> list[Done]:
        now = utcnow()
        async with job_session(self.ctx, tenant_id) as s:
            deliveries = DeliveryRepository(s, tenant_id)
            claimed = await deliveries.claim(
                ids=ids, event_id=event_id, due_by=now + CLAIM_TOLERANCE, lease_until=now + LEASE
            )
            if not claimed:
                return []
            endpoints = {
                e.id: e
                for e in await EndpointRepository(s, tenant_id).list(
                    WebhookEndpoint.id.in_({c.endpoint_id for c in claimed})
                )
            }
            events = {
                e.id: e
                for e in (await s.execute(select(Event).where(Event.id.in_({c.event_id for c in claimed})))).scalars()
            }
            attempts: list[Attempt] = []
            disabled: list[uuid.UUID] = []
            for c in claimed:
                endpoint = endpoints.get(c.endpoint_id)
                if endpoint is None or not endpoint.enabled:
                    disabled.append(c.id)
                    continue
                attempts.append(
                    Attempt(
                        c.id,
                        c.endpoint_id,
                        events[c.event_id],
                        int(c.attempt_count),
                        int(c.max_attempts),
                        endpoint.url,
                        signing_secrets(self.cipher, endpoint, now),
                    )
                )
            if disabled:
                await deliveries.update_where(
                    {"status": "failed", "next_attempt_at": None, "last_error": "the endpoint is disabled"},
                    WebhookDelivery.id.in_(disabled),
                )
        if not attempts:
            return []
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        done = await asyncio.gather(*(self._send(a, gate) for a in attempts))
        retries = await self._record(tenant_id, done)
        for delivery_id, attempt_no, due_at in retries:
            if (due_at - utcnow()).total_seconds() <= INLINE_RETRY_SECONDS:
                await self.ctx["redis"].enqueue_job(
                    DELIVER_JOB,
                    tenant_id=str(tenant_id),
                    delivery_id=str(delivery_id),
                    _job_id=attempt_job_id(delivery_id, attempt_no, due_at),
                    _defer_until=due_at,
                )
        for d in done:
            log.info(
                "webhook.attempt",
                delivery_id=str(d.attempt.delivery_id),
                attempt=d.attempt.attempt_no,
                outcome=d.result.outcome,
                status=d.result.status_code,
                duration_ms=d.result.duration_ms,
            )
        return list(done)

    async def _send(self, a: Attempt, gate: asyncio.Semaphore) -> Done:
        async with gate:
            body = payload(a.event)
            timestamp = int(time.time())  # signed afresh on every attempt
            headers = signing.headers(a.secrets, str(a.event.id), timestamp, body)
            started = utcnow()
            if a.attempt_no == 1:
                alert_instruments().webhook_latency.record(max(0.0, (started - a.event.created_at).total_seconds()))
            result = await send(
                self.ctx["webhook_http"].pick(),
                self.ctx["resolver"],
                self.allowed,
                a.url,
                headers,
                body,
                require_https=self.settings.is_production,
            )
            alert_instruments().webhook_attempts.add(1, {"outcome": result.outcome})
            return Done(a, started, timestamp, result)

    async def _record(self, tenant_id: uuid.UUID, done: list[Done]) -> list[tuple[uuid.UUID, int, datetime]]:
        """Write every attempt and each delivery's new state in one transaction; returns the next attempts
        (delivery, attempt number, due at) that were scheduled."""
        now = utcnow()
        retries: list[tuple[uuid.UUID, int, datetime]] = []
        rows: list[dict[str, Any]] = []
        succeeded: set[uuid.UUID] = set()
        failed: set[uuid.UUID] = set()
        for d in done:
            r = d.result
            delay = (
                delay_before(d.attempt.attempt_no + 1)
                if r.retryable and d.attempt.attempt_no < d.attempt.max_attempts
                else None
            )
            next_at = None if delay is None else now + timedelta(seconds=delay)
            status = "succeeded" if r.outcome == "success" else ("pending" if next_at else "failed")
            if next_at is not None:
                retries.append((d.attempt.delivery_id, d.attempt.attempt_no + 1, next_at))
            (succeeded if r.outcome == "success" else failed).add(d.attempt.endpoint_id)
            rows.append(
                {
                    "b_id": d.attempt.delivery_id,
                    "b_status": status,
                    "b_next": next_at,
                    "b_code": r.status_code,
                    "b_error": r.error,
                    "b_succeeded": now if status == "succeeded" else None,
                }
            )
        async with job_session(self.ctx, tenant_id) as s:
            await AttemptRepository(s, tenant_id).add_many(
                [
                    {
                        "id": uuid7(),
                        "delivery_id": d.attempt.delivery_id,
                        "attempt_no": d.attempt.attempt_no,
                        "started_at": d.started,
                        "duration_ms": d.result.duration_ms,
                        "webhook_timestamp": d.timestamp,
                        "status_code": d.result.status_code,
                        "outcome": d.result.outcome,
                        "error": d.result.error,
                        "response_excerpt": d.result.excerpt,
                    }
                    for d in done
                ]
            )
            await DeliveryRepository(s, tenant_id).record(rows, now)
            endpoints = EndpointRepository(s, tenant_id)
            await endpoints.mark_succeeded(succeeded, now)
            for endpoint in await endpoints.mark_failed(failed - succeeded, now):
                if (
                    endpoint.enabled
                    and endpoint.failing_since is not None
                    and now - endpoint.failing_since >= DISABLE_AFTER
                ):
                    await self._disable(s, tenant_id, endpoint, now)
        return retries

    async def _disable(self, s: Any, tenant_id: uuid.UUID, endpoint: WebhookEndpoint, now: datetime) -> None:
        assert endpoint.failing_since is not None
        days = (now - endpoint.failing_since).days
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = f"Every delivery failed for {days} days (since {iso(endpoint.failing_since)})."
        alert_instruments().endpoints_disabled.add(1)
        log.warning("webhook.endpoint_disabled", endpoint_id=str(endpoint.id), failing_days=days)
        await s.flush()  # the fan-out below must not see this endpoint as enabled
        await publish_event(
            s,
            tenant_id,
            ENDPOINT_DISABLED,
            {
                "endpoint_id": str(endpoint.id),
                "url": endpoint.url,
                "description": endpoint.description,
                "failing_since": iso(endpoint.failing_since),
                "reason": endpoint.disabled_reason,
            },
            key=f"{ENDPOINT_DISABLED}:{endpoint.id}:{iso(endpoint.failing_since)}",
        )
