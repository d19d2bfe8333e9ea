"""Redis connection helpers shared by the API, the worker and the limiter."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import parse_url

# The rediss:// query options arq's RedisSettings has fields for (its ``from_dsn`` reads none of them).
_ARQ_TLS_OPTIONS = ("ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data", "ssl_check_hostname")


def redis_client(url: str, *, timeout: float = 2.0) -> Redis:
    """A pooled client for ``redis://`` and ``unix://`` URLs with short timeouts (fail fast, never hang)."""
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30)


def arq_settings(url: str, *, timeout: float = 2.0) -> RedisSettings:
    """The worker's connection settings, with a rediss:// URL's ``ssl_*`` options applied as redis-py does."""
    settings = RedisSettings.from_dsn(url)
    if settings.ssl:
        options: dict[str, Any] = dict(parse_url(url))
        for name in _ARQ_TLS_OPTIONS:
            if name in options:
                setattr(settings, name, options[name])
    settings.conn_timeout = max(1, int(timeout))
    settings.conn_retries = 1
    settings.conn_retry_delay = 0
    return settings


def arq_client(url: str, queue_name: str, *, timeout: float = 2.0) -> ArqRedis:
    """An arq client without a start-up ping (so a process starts, and reports not-ready, while Redis is down)."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    return ArqRedis(pool, default_queue_name=queue_name)
