"""Subcommands other than `dev` (which lives in ``app.cli.dev``); set-up steps both use are in ``app.cli.bootstrap``."""

from __future__ import annotations

import argparse
import asyncio
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

    settings = load_settings()
    require_runtime(settings)
    uvicorn.run(
        "app.server.asgi:create",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers or settings.api_workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
        server_header=False,
        log_config=None,
    )
    return 0


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
        from app.cli.keys import rotate_credentials

        settings = load_settings()
        require_runtime(settings)
        count, failed = asyncio.run(rotate_credentials(settings))
        print(f"re-encrypted {count} credential(s) under the primary key")
        if failed:
            print(
                f"{len(failed)} credential(s) could not be decrypted with any configured key: "
                + ", ".join(map(str, failed)),
                file=sys.stderr,
            )
            return 1
        return 0
    print(f"STOCK_TRACKER_JWT_SECRET={secrets.token_urlsafe(48)}")
    print(f"STOCK_TRACKER_API_KEY_SECRET={secrets.token_urlsafe(48)}")
    print(f"STOCK_TRACKER_ENCRYPTION_KEYS={new_fernet_key()}")
    return 0


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
