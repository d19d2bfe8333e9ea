"""The arq worker: registered jobs and crons, start-up and shut-down, tuned for I/O-bound work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

import structlog
from arq import cron
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

from app.config import Settings
from app.db.models import Marketplace
from app.db.outbox import relay
from app.domain.billing.jobs import billing_usage_cron
from app.domain.events.metrics import alert_instruments
from app.domain.events.types import STOCK_LOW, STOCK_OUT, STOCK_RESTORED
from app.domain.jobcontext import JobContext
from app.domain.retention.jobs import history_partitions, retention_sweep
from app.domain.sync.jobs import sync_run_sweep
from app.lib.redis import arq_settings
from app.observability import logging as logctx
from app.observability.errors import init_error_tracking, shutdown_error_tracking
from app.observability.logging import configure_logging
from app.observability.metrics import configure_metrics, seed_counter, seed_job_metrics, seed_sync_metrics
from app.worker.context import close_job_context, open_job_context
from app.worker.gauges import ScrapeGauges, serve_gauges
from app.worker.instrument import instrumented
from app.worker.jobs import CRONS, JOBS
from app.worker.memory import HeapTrimmer, pin_mmap_threshold
from app.worker.metrics import serve_worker_metrics

log = structlog.get_logger(__name__)
SWEEP_AGE = timedelta(seconds=5)
JOB_TIMEOUT_S = 600
MAX_TRIES = 8
# Webhook attempt outcomes (app/integrations/webhook_sender.py), exported at 0 so the panels show them from the start.
_WEBHOOK_OUTCOMES = ("success", "retry", "failed", "blocked")


async def outbox_sweep(ctx: JobContext) -> int:
    """Enqueue outbox rows the after-commit relay missed (Redis down, process killed after commit)."""
    count = await relay(ctx["sessionmaker"], ctx["redis"], older_than=SWEEP_AGE)
    if count:
        log.info("outbox.sweep", enqueued=count)
    return count


def _job(name: str, fn: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    """The job (or cron) as arq runs it: instrumented (``app/worker/instrument.py``). arq types a job's
    context as a plain dict; ours take the ``JobContext`` that dict really is."""
    return instrumented(name, fn, max_tries=MAX_TRIES, timeout_s=JOB_TIMEOUT_S)


def _seed_metrics(names: list[str]) -> None:
    """Series the dashboard and the alert rules read, at 0 before their first event."""
    seed_job_metrics(names)
    seed_sync_metrics([m.value for m in Marketplace])
    alerts = alert_instruments()
    seed_counter(alerts.endpoints_disabled, [{}])
    seed_counter(alerts.alerts_raised, ({"type": t} for t in (STOCK_LOW, STOCK_OUT, STOCK_RESTORED)))
    seed_counter(alerts.webhook_attempts, ({"outcome": o} for o in _WEBHOOK_OUTCOMES))


def build_worker_settings(settings: Settings, *, serve_metrics: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` (a dict so tests can tweak and run it in-process)."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        pin_mmap_threshold()  # large buffers given back when freed (app/worker/memory.py)
        configure_logging(settings.log_format, settings.log_level, cache=settings.env != "test")
        configure_metrics("stock-tracker-worker")
        init_error_tracking(
            settings.sentry_dsn,
            environment=settings.sentry_environment or settings.env,
            release=settings.sentry_release,
            component="worker",
        )
        _seed_metrics(
            [
                *JOBS,
                *CRONS,
                "cron:outbox-sweep",
                "cron:sync-run-sweep",
                "cron:retention",
                "cron:billing-usage",
                "cron:history-partitions",
            ]
        )
        # arq's dict becomes the JobContext every job receives (tests may put a fake DNS resolver in it).
        ctx.update(open_job_context(settings, ctx["redis"], resolver=ctx.get("resolver")))
        if serve_metrics:
            job_ctx = cast(JobContext, ctx)
            gauges = ScrapeGauges(
                job_ctx["sessionmaker"], job_ctx["redis"], settings.queue_name, asyncio.get_running_loop()
            )
            ctx["_gauges"] = gauges
            serve_gauges(gauges)
            # Loopback unless STOCK_TRACKER_WORKER_METRICS_ADDR says otherwise; the scrape token rule applies.
            # Started after the job context, so the first scrape already has the state gauges' source.
            serve_worker_metrics(settings.worker_metrics_addr, settings.worker_metrics_port, settings.metrics_token)
        log.info("worker.started", jobs=[j.name for j in functions])

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if ctx.get("_gauges") is not None:
            serve_gauges(None)
        await close_job_context(cast(JobContext, ctx))
        shutdown_error_tracking()

    async def on_job_start(ctx: dict[str, Any]) -> None:
        logctx.clear()
        logctx.bind(job_id=ctx.get("job_id"))

    async def after_job_end(ctx: dict[str, Any]) -> None:
        logctx.clear()
        # What the job freed back to the system: at most once a second, and once that second is up after a
        # burst's last jobs (app/worker/memory.py).
        trimmer.after_job()

    trimmer = HeapTrimmer()
    functions: list[Function] = [func(_job(name, fn), name=name, max_tries=MAX_TRIES) for name, fn in JOBS.items()]
    every_30s = set(range(0, 60, max(1, min(settings.outbox_sweep_seconds, 60))))
    return {
        "functions": functions,
        "cron_jobs": [
            cron(
                _job("cron:outbox-sweep", outbox_sweep),
                name="cron:outbox-sweep",
                second=every_30s,
                run_at_startup=True,
                unique=True,
            ),
            *(cron(_job(name, fn), name=name, second=0, unique=True) for name, fn in CRONS.items()),
            # Every run ends: runs past their lease (worker died, job gone) end "abandoned" (issue 14 §1).
            cron(
                _job("cron:sync-run-sweep", sync_run_sweep),
                name="cron:sync-run-sweep",
                second={5, 20, 35, 50},
                run_at_startup=True,
                unique=True,
            ),
            cron(
                _job("cron:retention", retention_sweep),
                name="cron:retention",
                minute=set(range(3, 60, 10)),
                second=0,
                unique=True,
            ),
            # Usage to Stripe's meters, a few minutes after each hour ends (the hour's calls are in).
            cron(
                _job("cron:billing-usage", billing_usage_cron),
                name="cron:billing-usage",
                minute=5,
                second=0,
                unique=True,
            ),
            cron(
                _job("cron:history-partitions", history_partitions),
                name="cron:history-partitions",
                hour=0,
                minute=7,
                second=0,
                run_at_startup=True,
                unique=True,
            ),
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
        "job_timeout": JOB_TIMEOUT_S,
        "keep_result": 3600,
        "retry_jobs": True,
        # An operator's cancel of a running job (`POST /api/v1/admin/queue/jobs/{id}/cancel`) is arq's abort.
        "allow_abort_jobs": True,
        "handle_signals": True,
        "ctx": {},
    }
