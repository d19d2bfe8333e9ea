"""What the HTTP edge's dependency providers cost per request, beside the handler that builds its service inline
(the way controllers did before the providers, issue #16 §2), in the same run and the same app.

    .venv/bin/python -m bench.edge [--requests 20000] [--runs 5]

One Litestar app, no network and no database: requests are driven straight into the ASGI app; the session
is a real ``AsyncSession`` that never connects (nothing is executed, so its commit is free), the principal
is put in the scope as the auth middleware would. Pairs of routes differ only in how the handler gets its
service:

* ``members``: ``db_session`` + ``principal`` and ``MemberService(...)`` in the handler (baseline) vs the
  ``member_service`` provider of ``app/server/deps.py`` (session → principal → service);
* ``product page``: ``request`` + ``principal`` and ``ProductPageService(...)`` in the handler (baseline) vs
  the ``product_page_service`` provider (no session).

Runs are interleaved; the medians (µs per request, wall and process CPU) are printed and written to
bench/results/edge.json. The difference is the providers' share of a request; a real request adds auth, the
rate limiter, the database and JSON encoding of a real body on top of both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar import Litestar, Request, get  # noqa: E402
from litestar.datastructures import State  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine  # noqa: E402

from app.domain.accounts.services import MemberService  # noqa: E402
from app.domain.catalog.services import ProductPageService  # noqa: E402
from app.lib.tokens import Principal  # noqa: E402
from app.server.deps import DEPENDENCIES  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "edge.json"
PRODUCT = uuid.uuid4()


@get("/inline/members", sync_to_thread=False)
def members_inline(db_session: AsyncSession, principal: Principal) -> dict[str, str]:
    service = MemberService(db_session, principal)
    return {"tenant": str(service.principal.tenant_id)}


@get("/provided/members", sync_to_thread=False)
def members_provided(member_service: MemberService) -> dict[str, str]:
    return {"tenant": str(member_service.principal.tenant_id)}


@get("/inline/products/{product_id:uuid}", sync_to_thread=False)
def product_inline(request: Request[Any, Any, Any], product_id: uuid.UUID, principal: Principal) -> dict[str, str]:
    state = request.app.state
    service = ProductPageService(state.engine, principal.tenant_id, int(state.settings.low_stock_units))
    return {"tenant": str(service.tenant_id), "product": str(product_id)}


@get("/provided/products/{product_id:uuid}", sync_to_thread=False)
def product_provided(product_id: uuid.UUID, product_page_service: ProductPageService) -> dict[str, str]:
    return {"tenant": str(product_page_service.tenant_id), "product": str(product_id)}


class _Settings:
    low_stock_units = 5


def build_app() -> Litestar:
    engine = create_async_engine("postgresql+asyncpg://bench@127.0.0.1:1/never-connected")
    return Litestar(
        route_handlers=[members_inline, members_provided, product_inline, product_provided],
        dependencies=DEPENDENCIES,
        state=State({"engine": engine, "sessionmaker": async_sessionmaker(engine), "settings": _Settings()}),
        debug=False,
    )


async def drive(app: Litestar, path: str, principal: Principal, requests: int) -> tuple[float, float]:
    """µs per request (wall, process CPU) for ``requests`` sequential GETs of ``path`` into the ASGI app."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "user": principal,
            "state": {},
        }

    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        sent.clear()
        await app(scope(), receive, send)  # type: ignore[arg-type]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    status = sent[0]["status"]
    assert status == 200, (path, status, sent)
    return wall / requests * 1e6, cpu / requests * 1e6


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    app = build_app()
    principal = Principal(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="owner")
    cases = {
        "members: inline service (baseline)": "/inline/members",
        "members: provider": "/provided/members",
        "product page: inline service (baseline)": f"/inline/products/{PRODUCT}",
        "product page: provider": f"/provided/products/{PRODUCT}",
    }
    async with app.lifespan():
        for path in cases.values():
            await drive(app, path, principal, 500)  # warm up
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, path in cases.items():
                runs[name].append(await drive(app, path, principal, args.requests))
    out: dict[str, Any] = {"requests": args.requests, "runs": args.runs, "python": sys.version.split()[0]}
    print(f"µs per request, median of {args.runs} interleaved runs × {args.requests} requests")
    for name, figures in runs.items():
        wall = statistics.median(w for w, _ in figures)
        cpu = statistics.median(c for _, c in figures)
        out[name] = {"wall_us": round(wall, 1), "cpu_us": round(cpu, 1)}
        print(f"  {name:42s} wall {wall:7.1f}   cpu {cpu:7.1f}")
    for area in ("members", "product page"):
        base = out[f"{area}: inline service (baseline)"]["cpu_us"]
        provided = out[f"{area}: provider"]["cpu_us"]
        out[f"{area}: provider overhead_us"] = round(provided - base, 1)
        print(f"  {area}: the provider costs {provided - base:+.1f} µs of CPU per request")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
