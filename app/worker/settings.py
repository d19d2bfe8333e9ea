"""The arq worker: registered jobs and crons, start-up and shut-down, tuned for I/O-bound work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from arq import cron
from arq.worker import Function, func
from prometheus_client import start_http_server

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.db.outbox import relay
from app.domain.connections.gateway import MarketplaceGateway
from app.domain.events.context import close_notification_context, open_notification_context
from app.domain.retention.jobs import retention_sweep
from app.lib.crypto import CredentialCipher
from app.lib.outbound import marketplace_http_client
from app.lib.ratelimit import RateLimiter
from app.lib.redis import arq_settings
from app.observability import logging as logctx
from app.observability.logging import configure_logging
from app.observability.metrics import configure_metrics, instruments
from app.worker.jobs import CRONS, JOBS

log = structlog.get_logger(__name__)
SWEEP_AGE = timedelta(seconds=5)


async def outbox_sweep(ctx: dict[str, Any]) -> int:
    """Enqueue outbox rows the after-commit relay missed (Redis down, process killed after commit)."""
    count = await relay(ctx["sessionmaker"], ctx["redis"], older_than=SWEEP_AGE)
    if count:
        log.info("outbox.sweep", enqueued=count)
    return count


def build_worker_settings(settings: Settings, *, serve_metrics: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` (a dict so tests can tweak and run it in-process)."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.log_format, settings.log_level)
        configure_metrics("stock-tracker-worker")
        if serve_metrics:
            start_http_server(settings.worker_metrics_port, addr="0.0.0.0")
        engine = create_engine(settings)
        ctx["settings"] = settings
        ctx["engine"] = engine
        ctx["sessionmaker"] = create_sessionmaker(engine)
        ctx["cipher"] = CredentialCipher(settings.encryption_key_list)
        ctx["http"] = marketplace_http_client()
        ctx["limiter"] = RateLimiter(ctx["redis"])
        ctx["gateway"] = MarketplaceGateway(settings, ctx["http"], ctx["limiter"])
        await open_notification_context(ctx, settings)
        log.info("worker.started", jobs=[j.name for j in functions])

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await close_notification_context(ctx)
        http = ctx.get("http")
        if http is not None:
            await http.aclose()
        engine = ctx.get("engine")
        if engine is not None:
            await engine.dispose()

    async def on_job_start(ctx: dict[str, Any]) -> None:
        logctx.clear()
        logctx.bind(job_id=ctx.get("job_id"))

    async def after_job_end(ctx: dict[str, Any]) -> None:
        logctx.clear()

    functions: list[Function] = [func(fn, name=name, max_tries=8) for name, fn in JOBS.items()]  # type: ignore[arg-type]
    every_30s = set(range(0, 60, max(1, min(settings.outbox_sweep_seconds, 60))))
    return {
        "functions": functions,
        "cron_jobs": [
            cron(outbox_sweep, name="cron:outbox-sweep", second=every_30s, run_at_startup=True, unique=True),
            *(cron(fn, name=name, second=0, unique=True) for name, fn in CRONS.items()),  # type: ignore[arg-type]
            cron(retention_sweep, name="cron:retention", minute=set(range(3, 60, 10)), second=0, unique=True),
        ]
        if settings.worker_crons
        else [],
        "redis_settings": arq_settings(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "on_job_start": on_job_start,
        "after_job_end": after_job_end,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay,
        "health_check_interval": settings.worker_health_check_interval,
        "job_timeout": 600,
        "keep_result": 3600,
        "retry_jobs": True,
        "handle_signals": True,
        "ctx": {},
    }


def job_outcome(job: str, outcome: str) -> None:
    instruments().jobs.add(1, {"job": job, "outcome": outcome})
