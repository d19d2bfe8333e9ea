"""`stock-tracker queue`: the job queue as an operator sees it (what `GET /api/v1/admin/queue` answers),
and `queue retry JOB_ID` / `queue cancel JOB_ID`. Talks to Redis directly: no API or token needed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from app.config import load_settings


def add_parser(sub: Any) -> None:
    q = sub.add_parser("queue", help="the job queue: waiting, running, deferred, recent failures; retry or cancel")
    q.add_argument("action", nargs="?", choices=["show", "retry", "cancel"], default="show")
    q.add_argument("job_id", nargs="?", help="the job to retry (a recent failure) or cancel")
    q.add_argument("--limit", type=int, default=20, help="jobs listed per kind (default 20)")
    q.add_argument("--json", action="store_true", help="print the JSON the admin endpoint answers")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _print_view(view: Any) -> None:
    c = view.counts
    print(f"queue {view.queue}: {c.queued} queued, {c.in_progress} running, {c.deferred} deferred")
    print(f"oldest queued job waits {_age(view.oldest_queued_age_seconds)}")
    for title, jobs in (("running", view.in_progress), ("queued", view.queued), ("deferred", view.deferred)):
        if jobs:
            print(f"\n{title}:")
        for j in jobs:
            when = f"due {j.due_at:%Y-%m-%d %H:%M:%S}" if title == "deferred" else f"waits {_age(j.waiting_seconds)}"
            print(f"  {j.job_id}  {j.function or '?'}  try {j.job_try or '-'}  {when}")
    if view.failed_recent:
        print("\nrecent failures (retry with `stock-tracker queue retry JOB_ID`):")
    for f in view.failed_recent:
        print(f"  {f.failed_at:%Y-%m-%d %H:%M:%S}  {f.job_id}  {f.function}  {f.error}")


async def _run(args: argparse.Namespace) -> int:
    from app.domain.operations.services import OperationsService
    from app.lib.errors import AppError
    from app.lib.redis import arq_client

    settings = load_settings()
    if not settings.redis_url:
        print("stock-tracker: STOCK_TRACKER_REDIS_URL is required", file=sys.stderr)
        return 2
    redis = arq_client(settings.redis_url, settings.queue_name)
    try:
        service = OperationsService(redis, settings.queue_name)
        if args.action == "show":
            view = await service.queue(max(1, min(args.limit, 500)))
            if args.json:
                print(msgspec.json.format(msgspec.json.encode(view)).decode())
            else:
                _print_view(view)
            return 0
        if not args.job_id:
            print(f"stock-tracker: `queue {args.action}` needs a JOB_ID", file=sys.stderr)
            return 2
        try:
            done = await (service.retry(args.job_id) if args.action == "retry" else service.cancel(args.job_id))
        except AppError as exc:
            print(f"stock-tracker: {exc.detail or exc.title}", file=sys.stderr)
            return 1
        print(f"{done.job_id}: {done.outcome}")
        return 0
    finally:
        await redis.aclose()


def cmd_queue(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
