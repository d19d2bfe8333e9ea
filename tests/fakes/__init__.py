"""Local fakes of outside services, over real HTTP: a webhook receiver, the Telegram Bot API, DNS.

Also the small harness the alerting tests share: settings with the fakes wired in, a worker run that
first relays pending outbox rows, and a worker context for calling crons directly.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

BOT_TOKEN = "123456:TEST-bot-token_abcdefghijklmnopqrstuvw"
WEBHOOK_SECRET = "tg-secret-" + "s" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_asgi(app: Any, name: str) -> Iterator[str]:
    """Serve an ASGI app on a loopback port in a daemon thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class FakeDNS:
    """A resolver answering from a table the test controls (so it can rebind a name between two lookups)."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table: dict[str, list[str]] = dict(table or {})
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[Any]:
        self.lookups.append(host)
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            return [ipaddress.ip_address(a) for a in self.table.get(host, [])]


def alert_settings(database: dict[str, str], redis_url: str, sandbox: str, telegram_api: str, **extra: Any) -> Any:
    from tests.conftest import make_settings

    return make_settings(
        database,
        redis_url,
        wb_base_url=f"{sandbox}/wb",
        ozon_base_url=f"{sandbox}/ozon",
        telegram_bot_token=BOT_TOKEN,
        telegram_api_base=telegram_api,
        telegram_webhook_secret=WEBHOOK_SECRET,
        webhook_allowed_networks="127.0.0.0/8",
        public_url="http://testserver.local",
        **extra,
    )


@contextlib.asynccontextmanager
async def worker_context(settings: Any, dns: FakeDNS | None = None) -> AsyncIterator[Any]:
    """The ``JobContext`` a job receives in the worker (built by the worker's own start-up code, with a small
    pool), for calling a job or cron directly."""
    from app.db.engine import create_engine
    from app.lib.redis import arq_client
    from app.worker.context import close_job_context, open_job_context

    redis = arq_client(settings.redis_url, settings.queue_name)
    ctx = open_job_context(settings, redis, resolver=dns, engine=create_engine(settings, pool_size=2, max_overflow=2))
    try:
        yield ctx
    finally:
        await close_job_context(ctx)
        await redis.aclose()


async def drain(settings: Any, dns: FakeDNS | None = None) -> None:
    """Relay every pending outbox row (as the sweep would), then run queued jobs until none are left."""
    from app.db.outbox import relay
    from tests.sync_support import run_worker

    async with worker_context(settings) as ctx:
        await relay(ctx["sessionmaker"], ctx["redis"])
    await run_worker(settings, ctx={"resolver": dns} if dns is not None else {})


@contextlib.asynccontextmanager
async def tenant_session(settings: Any, tenant_id: Any) -> AsyncIterator[Any]:
    """A transaction as the application role, scoped to one tenant (row-level security applies)."""
    import uuid

    from app.db.engine import create_engine, create_sessionmaker, session_scope

    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(create_sessionmaker(engine), uuid.UUID(str(tenant_id))) as session:
            yield session
    finally:
        await engine.dispose()


async def sync_and_evaluate(settings: Any, tenant_id: str, connection_id: str, dns: FakeDNS | None = None) -> str:
    """Run one sync of a connection through the sync engine's own job, then the alert evaluation it asks for.

    Goes through the queue rather than the API so a test can sync repeatedly (no manual cooldown). The
    evaluation is enqueued under the sync engine's job id (``alerts:<run>``): when the engine enqueues it
    itself, arq keeps one of the two.
    """
    import uuid

    from app.domain.sync.services import run_id_for

    job_id = f"sync:{connection_id}:test:{uuid.uuid4().hex}"
    run_id = str(run_id_for(job_id))
    async with worker_context(settings) as ctx:
        await ctx["redis"].enqueue_job(
            "sync.connection", tenant_id=tenant_id, connection_id=connection_id, trigger="scheduled", _job_id=job_id
        )
    await drain(settings, dns)
    async with worker_context(settings) as ctx:
        await ctx["redis"].enqueue_job(
            "alerts.evaluate",
            tenant_id=tenant_id,
            connection_id=connection_id,
            run_id=run_id,
            _job_id=f"alerts:{run_id}",
        )
    await drain(settings, dns)
    return run_id
