"""The arq worker: registered jobs and crons, start-up and shut-down, tuned for I/O-bound work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

import structlog
from arq import cron
from arq.typing import WorkerCoroutine
from arq.worker import Function, func
from prometheus_client import start_http_server

from app.config import Settings
from app.db.outbox import relay
from app.domain.jobcontext import JobContext
from app.domain.retention.jobs import history_partitions, retention_sweep
from app.lib.redis import arq_settings
from app.observability import logging as logctx
from app.observability.logging import configure_logging
from app.observability.metrics import configure_metrics, instruments
from app.worker.context import close_job_context, open_job_context
from app.worker.jobs import CRONS, JOBS

log = structlog.get_logger(__name__)
SWEEP_AGE = timedelta(seconds=5)


async def outbox_sweep(ctx: JobContext) -> int:
    """Enqueue outbox rows the after-commit relay missed (Redis down, process killed after commit)."""
    count = await relay(ctx["sessionmaker"], ctx["redis"], older_than=SWEEP_AGE)
    if count:
        log.info("outbox.sweep", enqueued=count)
    return count


def _job(fn: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    """arq types a job's context as a plain dict; ours take the ``JobContext`` that dict really is."""
    return cast(WorkerCoroutine, fn)


def build_worker_settings(settings: Settings, *, serve_metrics: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` (a dict so tests can tweak and run it in-process)."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.log_format, settings.log_level)
        configure_metrics("stock-tracker-worker")
        if serve_metrics:
            start_http_server(settings.worker_metrics_port, addr="0.0.0.0")
        # arq's dict becomes the JobContext every job receives (tests may put a fake DNS resolver in it).
        ctx.update(open_job_context(settings, ctx["redis"], resolver=ctx.get("resolver")))
        log.info("worker.started", jobs=[j.name for j in functions])

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await close_job_context(cast(JobContext, ctx))

    async def on_job_start(ctx: dict[str, Any]) -> None:
        logctx.clear()
        logctx.bind(job_id=ctx.get("job_id"))

    async def after_job_end(ctx: dict[str, Any]) -> None:
        logctx.clear()

    functions: list[Function] = [func(_job(fn), name=name, max_tries=8) for name, fn in JOBS.items()]
    every_30s = set(range(0, 60, max(1, min(settings.outbox_sweep_seconds, 60))))
    return {
        "functions": functions,
        "cron_jobs": [
            cron(_job(outbox_sweep), name="cron:outbox-sweep", second=every_30s, run_at_startup=True, unique=True),
            *(cron(_job(fn), name=name, second=0, unique=True) for name, fn in CRONS.items()),
            cron(_job(retention_sweep), name="cron:retention", minute=set(range(3, 60, 10)), second=0, unique=True),
            cron(
                _job(history_partitions),
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
        "job_timeout": 600,
        "keep_result": 3600,
        "retry_jobs": True,
        "handle_signals": True,
        "ctx": {},
    }


def job_outcome(job: str, outcome: str) -> None:
    instruments().jobs.add(1, {"job": job, "outcome": outcome})
