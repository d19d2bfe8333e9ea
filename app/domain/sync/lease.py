"""The per-connection sync lease: one sync of a connection at a time, across every worker process.

``lock:sync:<connection>`` is a Redis key holding a random token with a TTL of ``sync_lease_s`` (≤ 60 s),
renewed every third of it while the sync runs; each renewal also moves the run's ``lease_expires_at`` (the
heartbeat the sweep reads). A worker that dies stops renewing: its lock is gone within one lease period and
the next job for the connection takes it, and the sweep resumes its run under a fresh job (``sweep.py``). A
renewal that finds the key no longer ours (the loop stalled past the TTL and another worker took the
connection) cancels our sync rather than letting two run at once. Why a Redis lease and not a PostgreSQL
advisory lock: docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import structlog

log = structlog.get_logger(__name__)

_RENEW = (
    """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"""
)
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"""


class LeaseLost(Exception):
    """Another worker holds the connection now: this sync was cancelled."""


def lock_key(connection_id: str) -> str:
    return f"lock:sync:{connection_id}"


class SyncLease:
    def __init__(self, redis: Any, connection_id: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = lock_key(connection_id)
        self.ttl_ms = int(ttl_s * 1000)
        self.token = secrets.token_hex(8)
        self.lost = False

    async def acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def remaining(self) -> float:
        """Seconds until the current holder's lease runs out (0 when nobody holds it)."""
        ms = int(await self.redis.pttl(self.key))
        return max(0.0, ms / 1000)

    async def renew(self) -> bool:
        # redis-py types a command's result as "awaitable or not" for its sync and async clients alike.
        return bool(await cast(Awaitable[Any], self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)))

    async def release(self) -> None:
        await cast(Awaitable[Any], self.redis.eval(_RELEASE, 1, self.key, self.token))

    @contextlib.asynccontextmanager
    async def kept(self, heartbeat: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """Renew the lease (and call ``heartbeat``) every third of its TTL while the block runs."""
        task = asyncio.current_task()
        period = self.ttl_ms / 3000

        async def keep() -> None:
            while True:
                await asyncio.sleep(period)
                try:
                    ours = await self.renew()
                except Exception as exc:  # Redis blip: the TTL still covers two more tries
                    log.warning("sync.lease.renew_failed", key=self.key, error=type(exc).__name__)
                    continue
                if not ours:
                    self.lost = True
                    log.error("sync.lease.lost", key=self.key)
                    if task is not None:
                        task.cancel()
                    return
                try:
                    await heartbeat()
                except Exception as exc:
                    log.warning("sync.lease.heartbeat_failed", key=self.key, error=type(exc).__name__)

        keeper = asyncio.create_task(keep())
        try:
            yield
        except asyncio.CancelledError:
            if self.lost:
                raise LeaseLost(f"{self.key}: the lease passed to another worker") from None
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
