"""The arq queue read straight from Redis: what waits, what runs, what is deferred, what failed recently.

arq keeps a job in the queue's sorted set (score = when it is due, in ms) from enqueue until it finishes; a
running job also has ``arq:in-progress:<id>``. Workers take the earliest due jobs, so the running ones sit
at the head of the set: the head (``HEAD`` entries) is checked for in-progress keys, which keeps every
figure here a handful of Redis commands however deep the queue is.

Failures are recorded by the worker's job wrapper in a capped log of the queue's own (``FailureLog``):
arq's results expire after ``keep_result`` and scanning them would walk the whole keyspace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import DeserializationError, JobDef, deserialize_job

from app.db.outbox import REQUEST_ID_ARG as REQUEST_ID_ARG

HEAD = 1000
FAILURES_KEPT = 200

# Queued or deferred: taken off the queue with its data, atomically, unless a worker has just started it.
_CANCEL = """
if redis.call('exists', KEYS[3]) == 1 then return 'running' end
if redis.call('zrem', KEYS[1], ARGV[1]) == 0 then return 'missing' end
redis.call('del', KEYS[2], KEYS[4])
return 'cancelled'
"""
# Add a failure and keep only the newest ARGV[4] (index by time, details in a hash).
_RECORD_FAILURE = """
redis.call('zadd', KEYS[1], ARGV[2], ARGV[1])
redis.call('hset', KEYS[2], ARGV[1], ARGV[3])
local extra = redis.call('zcard', KEYS[1]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call('zrange', KEYS[1], 0, extra - 1)
  redis.call('zremrangebyrank', KEYS[1], 0, extra - 1)
  redis.call('hdel', KEYS[2], unpack(old))
end
return 1
"""


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class QueueStats:
    queued: int
    in_progress: int
    deferred: int
    oldest_queued_age_seconds: float  # 0 when nothing waits


@dataclass(frozen=True, slots=True)
class JobInfo:
    job_id: str
    function: str | None  # None: the job's data is gone (expired, or finished this instant)
    kwargs: dict[str, Any]
    job_try: int | None
    enqueued_at_ms: int | None
    due_at_ms: int


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    stats: QueueStats
    queued: list[JobInfo]
    in_progress: list[JobInfo]
    deferred: list[JobInfo]
    failed: list[dict[str, Any]]


class FailureLog:
    """The newest ``FAILURES_KEPT`` failed jobs of one queue, with their error, function and arguments (so
    an operator can retry them)."""

    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.index = f"{queue_name}:failed"
        self.data = f"{queue_name}:failed:data"

    async def record(self, job_id: str, record: dict[str, Any]) -> None:
        payload = json.dumps(record, default=str, separators=(",", ":"))
        await cast(
            Awaitable[Any],
            self.redis.eval(_RECORD_FAILURE, 2, self.index, self.data, job_id, str(_ms()), payload, str(FAILURES_KEPT)),
        )

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        ids = [i.decode() for i in await self.redis.zrevrange(self.index, 0, max(0, limit - 1))]
        if not ids:
            return []
        raw = await cast(Awaitable[list[bytes | None]], self.redis.hmget(self.data, ids))
        return [json.loads(r) for r in raw if r is not None]

    async def get(self, job_id: str) -> dict[str, Any] | None:
        raw = await cast(Awaitable[bytes | None], self.redis.hget(self.data, job_id))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    async def forget(self, job_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.index, job_id)
            pipe.hdel(self.data, job_id)
            await pipe.execute()


class QueueInspector:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.failures = FailureLog(redis, queue_name)

    async def _head(self, now_ms: int) -> tuple[int, int, list[tuple[str, int]], set[str]]:
        """Due count, deferred count, the due head (id, score) and which of the head are running."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(self.queue_name, "-inf", now_ms)
            pipe.zcount(self.queue_name, f"({now_ms}", "+inf")
            pipe.zrangebyscore(self.queue_name, "-inf", now_ms, start=0, num=HEAD, withscores=True)
            due, deferred, head = await pipe.execute()
        entries = [(k.decode(), int(score)) for k, score in head]
        running: set[str] = set()
        if entries:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id, _ in entries:
                    pipe.exists(in_progress_key_prefix + job_id)
                flags = await pipe.execute()
            running = {job_id for (job_id, _), flag in zip(entries, flags, strict=True) if flag}
        return int(due), int(deferred), entries, running

    async def stats(self) -> QueueStats:
        """Counts and the oldest waiting job's age (since it was due), for the gauges and the view."""
        now = _ms()
        due, deferred, head, running = await self._head(now)
        waiting = [score for job_id, score in head if job_id not in running]
        oldest = (now - waiting[0]) / 1000 if waiting else 0.0
        return QueueStats(
            queued=max(0, due - len(running)),
            in_progress=len(running),
            deferred=deferred,
            oldest_queued_age_seconds=max(0.0, oldest),
        )

    async def _jobs(self, entries: list[tuple[str, int]]) -> list[JobInfo]:
        if not entries:
            return []
        raw = await self.redis.mget([job_key_prefix + job_id for job_id, _ in entries])
        out = []
        for (job_id, score), value in zip(entries, raw, strict=True):
            job: JobDef | None = None
            if value is not None:
                try:
                    job = deserialize_job(value)
                except DeserializationError:
                    job = None
            out.append(
                JobInfo(
                    job_id=job_id,
                    function=job.function if job else None,
                    kwargs=dict(job.kwargs) if job else {},
                    job_try=job.job_try if job else None,
                    enqueued_at_ms=int(job.enqueue_time.timestamp() * 1000) if job else None,
                    due_at_ms=score,
                )
            )
        return out

    async def snapshot(self, limit: int) -> QueueSnapshot:
        """The counts, the first ``limit`` jobs of each kind, and the newest ``limit`` failures."""
        now = _ms()
        due, deferred_count, head, running = await self._head(now)
        waiting = [(job_id, score) for job_id, score in head if job_id not in running]
        later = await self.redis.zrangebyscore(self.queue_name, f"({now}", "+inf", start=0, num=limit, withscores=True)
        stats = QueueStats(
            queued=max(0, due - len(running)),
            in_progress=len(running),
            deferred=int(deferred_count),
            oldest_queued_age_seconds=max(0.0, (now - waiting[0][1]) / 1000) if waiting else 0.0,
        )
        return QueueSnapshot(
            stats=stats,
            queued=await self._jobs(waiting[:limit]),
            in_progress=await self._jobs([(j, s) for j, s in head if j in running][:limit]),
            deferred=await self._jobs([(k.decode(), int(s)) for k, s in later]),
            failed=await self.failures.recent(limit),
        )

    async def cancel(self, job_id: str) -> str:
        """``cancelled`` (it was waiting), ``aborting`` (it runs: the worker cancels it) or ``missing``."""
        outcome = await cast(
            Awaitable[bytes],
            self.redis.eval(
                _CANCEL,
                4,
                self.queue_name,
                job_key_prefix + job_id,
                in_progress_key_prefix + job_id,
                retry_key_prefix + job_id,
                job_id,
            ),
        )
        result = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        if result == "running":
            # arq's own abort: workers run with allow_abort_jobs and cancel the job's task.
            await self.redis.zadd(abort_jobs_ss, {job_id: _ms()})
            return "aborting"
        return result

    async def retry(self, job_id: str) -> str:
        """Enqueue a recorded failure again under its own job id: ``enqueued``, ``unknown`` (not in the
        failure log) or ``exists`` (a job with that id is queued or running)."""
        record = await self.failures.get(job_id)
        if record is None:
            return "unknown"
        # arq refuses an id whose result is still kept; the failure is recorded here, so let the result go.
        await self.redis.delete(result_key_prefix + job_id)
        job = await self.redis.enqueue_job(
            record["function"], _job_id=job_id, _queue_name=self.queue_name, **record.get("kwargs", {})
        )
        if job is None:
            return "exists"
        await self.failures.forget(job_id)
        return "enqueued"
