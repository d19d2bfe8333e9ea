"""The worker's scrape-time gauges: queue depth and age, outbox backlog and age, active tenants, marketplace
tokens near expiry (``app.domain.operations.services.collect_gauges``).

Prometheus scrapes from the metrics server's thread; the values come from async queries on the worker's
event loop, computed when scraped and reused for ``TTL_SECONDS`` (every replica reports the same global
figures, so a scrape of N replicas costs N small queries, not N × gauges). A scrape never waits more than
``WAIT_SECONDS``: a slow database shows as the last values, not as a failed scrape.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterable

import structlog
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.operations.services import Gauges, collect_gauges
from app.observability.metrics import observe_state

log = structlog.get_logger(__name__)
TTL_SECONDS = 5.0
WAIT_SECONDS = 3.0


class ScrapeGauges:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: ArqRedis,
        queue_name: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.queue_name = queue_name
        self.loop = loop
        self._lock = threading.Lock()
        self._value: Gauges | None = None
        self._at = 0.0

    def read(self) -> Gauges | None:
        with self._lock:
            if self._value is not None and time.monotonic() - self._at < TTL_SECONDS:
                return self._value
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self.loop or self.loop.is_closed():
                return self._value  # cannot wait for the loop from its own thread: serve what we have
            future = asyncio.run_coroutine_threadsafe(
                collect_gauges(self.sessionmaker, self.redis, self.queue_name), self.loop
            )
            try:
                self._value = future.result(WAIT_SECONDS)
                self._at = time.monotonic()
            except Exception as exc:
                future.cancel()
                log.warning("metrics.gauges_unavailable", error=type(exc).__name__)
            return self._value


_source: ScrapeGauges | None = None
_registered = False


def _values(pick: str) -> Iterable[tuple[float, dict[str, str]]]:
    gauges = _source.read() if _source is not None else None
    if gauges is None:
        return []
    if pick == "tokens_expiring":
        return [(float(n), {"marketplace": m}) for m, n in gauges.tokens_expiring.items()]
    return [(float(getattr(gauges, pick)), {})]


def serve_gauges(source: ScrapeGauges | None) -> None:
    """Make ``source`` the one this process's gauges read (None: stop); the gauges are created once."""
    global _source, _registered
    _source = source
    if _registered:
        return
    for name, pick, unit, description in (
        ("stock_tracker.active_tenants", "active_tenants", "", "Tenants with a successful sync in the last 24 h."),
        ("stock_tracker.queue_depth", "queue_depth", "", "Jobs due and waiting for a worker."),
        ("stock_tracker.queue_oldest_age", "queue_oldest_age_seconds", "s", "How long the oldest due job waits."),
        ("stock_tracker.outbox_backlog", "outbox_backlog", "", "Outbox rows not yet enqueued."),
        ("stock_tracker.outbox_oldest_age", "outbox_oldest_age_seconds", "s", "Age of the oldest such row."),
        (
            "stock_tracker.marketplace_tokens_expiring",
            "tokens_expiring",
            "",
            "Connections whose marketplace token expires within 7 days.",
        ),
    ):
        observe_state(name, description, functools.partial(_values, pick), unit=unit)
    _registered = True
