"""Redis connection helpers shared by the API, the worker and the limiter."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool, Redis


def redis_client(url: str, *, timeout: float = 2.0) -> Redis:
    """A pooled client for ``redis://`` and ``unix://`` URLs with short timeouts (fail fast, never hang)."""
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30)


def arq_settings(url: str, *, timeout: float = 2.0) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = max(1, int(timeout))
    settings.conn_retries = 1
    settings.conn_retry_delay = 0
    return settings


def arq_client(url: str, queue_name: str, *, timeout: float = 2.0) -> ArqRedis:
    """An arq client without a start-up ping (so a process starts, and reports not-ready, while Redis is down)."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    return ArqRedis(pool, default_queue_name=queue_name)
