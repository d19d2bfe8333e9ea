"""Subcommands other than `dev` (which lives in ``app.cli.dev``); set-up steps both use are in ``app.cli.bootstrap``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from typing import Any

from app.cli.bootstrap import create_demo, run_migrations
from app.config import load_settings, require_runtime
from app.lib.crypto import new_fernet_key


def cmd_dev(args: argparse.Namespace) -> int:
    from app.cli.dev import run_dev

    return run_dev(args.host, args.port, args.data_dir)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server.http_protocol import ApiHttpProtocol, ApiServer

    settings = load_settings()
    require_runtime(settings)
    options: dict[str, Any] = {
        "factory": True,
        # uvicorn's httptools protocol, except that SIGTERM does not drop a request already sent on an idle
        # keep-alive connection (docs/reliability.md, "SIGTERM to the API under load") and a response leaves
        # in one write (app/server/http_protocol.py).
        "http": ApiHttpProtocol,
        "host": args.host or settings.api_host,
        "port": args.port or settings.api_port,
        "workers": args.workers or settings.api_workers,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "access_log": False,
        "server_header": False,
        "log_config": None,
    }
    if options["workers"] > 1:  # uvicorn's supervisor builds one server per worker process
        uvicorn.run("app.server.asgi:create", **options)
        return 0
    # One process (compose's default; replicas scale out): uvicorn.run's single-process path, with a server
    # that also accepts the connections already waiting when SIGTERM comes (app/server/http_protocol.py).
    config = uvicorn.Config("app.server.asgi:create", **options)
    config.load_app()
    server = ApiServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 3  # uvicorn's STARTUP_FAILURE


def cmd_worker(args: argparse.Namespace) -> int:
    from arq.worker import Worker

    from app.worker.settings import build_worker_settings

    settings = load_settings()
    require_runtime(settings)
    Worker(**build_worker_settings(settings)).run()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = settings.migration_database_url or settings.database_url
    if not url:
        from app.config import SettingsError

        raise SettingsError("STOCK_TRACKER_MIGRATION_DATABASE_URL (or STOCK_TRACKER_DATABASE_URL) is required")
    run_migrations(url, args.revision, downgrade=args.downgrade)
    print(f"migrations: {'downgraded to' if args.downgrade else 'upgraded to'} {args.revision}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    if args.action == "rotate":
        return _rotate_secrets()
    print(f"STOCK_TRACKER_JWT_SECRET={secrets.token_urlsafe(48)}")
    print(f"STOCK_TRACKER_API_KEY_SECRET={secrets.token_urlsafe(48)}")
    print(f"STOCK_TRACKER_ENCRYPTION_KEYS={new_fernet_key()}")
    print(f"STOCK_TRACKER_OPERATOR_TOKEN={secrets.token_urlsafe(32)}")
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    return _rotate_secrets()


def _rotate_secrets() -> int:
    from app.cli.keys import rotate_stored_secrets

    settings = load_settings()
    require_runtime(settings)
    report = asyncio.run(rotate_stored_secrets(settings))
    for kind, count in report.rotated.items():
        print(f"re-encrypted {count} {kind} under the primary key")
    for kind, failed in report.failed.items():
        if failed:
            print(
                f"{len(failed)} {kind} could not be decrypted with any configured key (left as they are): "
                + ", ".join(map(str, failed)),
                file=sys.stderr,
            )
    if report.ok:
        print(
            "every stored secret is now under the first key of STOCK_TRACKER_ENCRYPTION_KEYS: "
            "STOCK_TRACKER_ENCRYPTION_KEYS_PREVIOUS (and any other key in STOCK_TRACKER_ENCRYPTION_KEYS) can go"
        )
    return 0 if report.ok else 1


def cmd_queue(args: argparse.Namespace) -> int:
    from app.cli.queue import cmd_queue as run

    return run(args)


def cmd_telegram(args: argparse.Namespace) -> int:
    from app.cli.telegram import cmd_telegram as run

    return run(args)


def cmd_billing(args: argparse.Namespace) -> int:
    from app.cli.billing import cmd_billing as run

    return run(args)


def cmd_sandbox(args: argparse.Namespace) -> int:
    import uvicorn

    from app.sandbox import create_standalone_sandbox_app

    app: Any = create_standalone_sandbox_app(rate_limits=not args.no_rate_limits)
    print(f"sandbox marketplace on http://{args.host}:{args.port}/sandbox (control API at /sandbox/control)")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_runtime(settings)
    password = secrets.token_urlsafe(12)
    email, created = asyncio.run(create_demo(settings, args.email, password))
    if created:
        print(f"demo login: {email} / {password}")
    else:
        print(f"demo user {email} already exists")
    return 0
