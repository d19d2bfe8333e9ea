"""What wraps every job and cron: its metrics (in progress, duration, outcome by function), its log context
(the request id it was enqueued under, its tenant), and its failures (the queue's failure log and the error
tracker). The job itself is called with exactly the arguments it was enqueued with, minus the request id."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import structlog
from arq import Retry
from arq.typing import WorkerCoroutine

from app.domain.jobcontext import JobContext
from app.domain.operations.services import REQUEST_ID_ARG, FailureLog
from app.observability import logging as logctx
from app.observability.errors import report_exception
from app.observability.metrics import instruments
from app.observability.scrub import scrub_text

log = structlog.get_logger(__name__)
ERROR_CHARS = 1000


async def _record_failure(
    ctx: JobContext, function: str, kwargs: dict[str, Any], error: str, context: dict[str, Any]
) -> None:
    job_id = ctx.get("job_id")
    if not job_id:
        return
    try:
        await FailureLog(ctx["redis"], ctx["settings"].queue_name).record(
            job_id,
            {
                "job_id": job_id,
                "function": function,
                "kwargs": kwargs,
                "job_try": ctx.get("job_try"),
                "error": scrub_text(error)[:ERROR_CHARS],
                "failed_at_ms": int(time.time() * 1000),
            },
        )
    except Exception as exc:  # never hide the job's own error behind the log's
        log.warning("job.failure_not_recorded", error=type(exc).__name__, **context)


def instrumented(name: str, fn: Callable[..., Awaitable[Any]], *, max_tries: int, timeout_s: float) -> WorkerCoroutine:
    """``fn`` as an arq coroutine named ``name`` (``max_tries`` and ``timeout_s`` are what arq applies to it)."""

    @functools.wraps(fn)
    async def job(ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
        enqueued_with = dict(kwargs)
        request_id = kwargs.pop(REQUEST_ID_ARG, None)
        if request_id:
            logctx.bind(request_id=request_id)
        if kwargs.get("tenant_id"):
            logctx.bind(tenant_id=kwargs["tenant_id"])
        context = {
            "function": name,
            "job_id": ctx.get("job_id"),
            "request_id": request_id,
            "tenant_id": kwargs.get("tenant_id"),
        }
        attrs = {"function": name}
        metrics = instruments()
        metrics.jobs_in_progress.add(1, attrs)
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await fn(ctx, *args, **kwargs)
            outcome = "succeeded"
            return result
        except Retry as exc:
            tries = int(ctx.get("job_try") or 1)
            if tries >= max_tries:  # arq fails it without running it again
                await _record_failure(ctx, name, enqueued_with, f"gave up after {tries} tries: {exc!r}", context)
                log.warning("job.failed", reason="max_tries", tries=tries, **context)
            else:
                outcome = "retried"
            raise
        except asyncio.CancelledError:
            elapsed = time.perf_counter() - started
            if elapsed < timeout_s * 0.99:
                outcome = "cancelled"  # an operator's abort, or the worker stopping (arq runs it again)
            else:
                await _record_failure(ctx, name, enqueued_with, f"timed out after {timeout_s:.0f} s", context)
                log.warning("job.failed", reason="timeout", **context)
            raise
        except Exception as exc:
            await _record_failure(ctx, name, enqueued_with, f"{type(exc).__name__}: {exc}", context)
            report_exception(exc, context)
            log.warning("job.failed", error=type(exc).__name__, **context)  # arq logs the traceback
            raise
        finally:
            metrics.jobs_in_progress.add(-1, attrs)
            metrics.job_duration.record(time.perf_counter() - started, attrs)
            metrics.jobs.add(1, {"function": name, "outcome": outcome})

    return cast(WorkerCoroutine, job)
