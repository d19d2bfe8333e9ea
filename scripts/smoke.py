#!/usr/bin/env python3
"""Smoke test of a running Stock Tracker: readiness, then one demo sync against the sandbox marketplace.

    python3 scripts/smoke.py --api http://127.0.0.1:8000 --sandbox http://127.0.0.1:8100
    python3 scripts/smoke.py ... --email a@b.c --password ... --expect-products 40   # an existing account
    python3 scripts/smoke.py ... --email a@b.c --password ... --register              # a new one, known login

Standard library only, so it runs from a CI runner, from inside the image, or next to `make run` (where the
sandbox is mounted on the API's own port: --sandbox http://127.0.0.1:8000). It registers a fresh
organization (or logs in with --email/--password), creates a sandbox Wildberries seller, connects it (or
hands an existing connection of that name the new seller's token), triggers a sync and waits for it to
succeed, then reads the products. Prints one JSON line with what it saw; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any

CONNECTION = "Smoke test seller (sandbox)"
TERMINAL = {"succeeded", "partially_failed", "failed"}


class SmokeError(RuntimeError):
    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def call(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (the operator's own URL)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode(errors="replace")
        retry = exc.headers.get("Retry-After")
        raise SmokeError(
            f"{method} {url} answered {exc.code}: {detail}",
            exc.code,
            float(retry) if retry and retry.isdigit() else None,
        ) from exc
    return json.loads(raw) if raw else None


def wait_ready(api: str, timeout: float) -> float:
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        try:
            call("GET", f"{api}/health/ready", timeout=5)
            return time.monotonic() - started
        except (SmokeError, OSError) as exc:
            last = str(exc)
            time.sleep(1)
    raise SmokeError(f"{api}/health/ready not ready after {timeout:.0f} s: {last}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    api, sandbox = args.api.rstrip("/"), args.sandbox.rstrip("/")
    ready_s = wait_ready(api, args.timeout)
    if args.email and not args.register:
        tokens = call("POST", f"{api}/api/v1/auth/login", {"email": args.email, "password": args.password})
    else:
        email = args.email or f"smoke-{secrets.token_hex(4)}@example.com"
        password = args.password or secrets.token_urlsafe(18)
        body = {"email": email, "password": password, "organization_name": "Smoke Test"}
        tokens = call("POST", f"{api}/api/v1/auth/register", body)["tokens"]
    token = tokens["access_token"]
    seller = call(
        "POST",
        f"{sandbox}/sandbox/control/sellers",
        {"marketplace": "wildberries", "products": args.products, "warehouses": 3, "seed": 7},
    )
    existing = [c for c in call("GET", f"{api}/api/v1/connections", token=token)["items"] if c["name"] == CONNECTION]
    if existing:
        conn = existing[0]
        call("PUT", f"{api}/api/v1/connections/{conn['id']}/credentials", {"credentials": seller["credentials"]}, token)
    else:
        conn = call(
            "POST",
            f"{api}/api/v1/connections",
            {"marketplace": "wildberries", "name": CONNECTION, "credentials": seller["credentials"]},
            token,
        )
    started = time.monotonic()
    while True:  # a sync that finished moments ago (e.g. just before a backup) has a short cooldown
        try:
            run_id = call("POST", f"{api}/api/v1/connections/{conn['id']}/syncs", token=token)["id"]
            break
        except SmokeError as exc:
            if exc.status != 429 or time.monotonic() - started > args.timeout:
                raise
            time.sleep(min(exc.retry_after or 5.0, 60.0))
    status = "queued"
    sync: dict[str, Any] = {}
    while time.monotonic() - started < args.timeout:
        sync = call("GET", f"{api}/api/v1/syncs/{run_id}", token=token)
        status = sync["status"]
        if status in TERMINAL:
            break
        time.sleep(1)
    if status != "succeeded":
        raise SmokeError(f"sync {run_id} ended {status!r}: {sync.get('error_code')} {sync.get('error')}")
    products = call("GET", f"{api}/api/v1/products?limit=200", token=token)["items"]
    if not products:
        raise SmokeError("the sync succeeded but no product is listed")
    if args.expect_products is not None and len(products) < args.expect_products:
        raise SmokeError(f"{len(products)} products listed, expected at least {args.expect_products}")
    return {
        "ok": True,
        "ready_after_s": round(ready_s, 1),
        "sync_id": run_id,
        "sync_s": round(time.monotonic() - started, 1),
        "sync_counts": sync.get("counts"),
        "products_listed": len(products),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Stock Tracker smoke test: readiness and one demo sync")
    p.add_argument("--api", default="http://127.0.0.1:8000")
    p.add_argument("--sandbox", default="http://127.0.0.1:8100", help="base URL of the sandbox marketplace")
    p.add_argument("--email", help="log in as this existing user instead of registering")
    p.add_argument("--password")
    p.add_argument("--register", action="store_true", help="register --email/--password first")
    p.add_argument("--products", type=int, default=40, help="products of the sandbox seller")
    p.add_argument("--expect-products", type=int, default=None)
    p.add_argument("--timeout", type=float, default=180)
    args = p.parse_args(argv)
    try:
        print(json.dumps(run(args)), flush=True)
    except (SmokeError, OSError, KeyError) as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
