"""Subcommands other than `dev` (which lives in ``app.cli.dev``)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from app.config import Settings, load_settings, require_runtime
from app.lib.crypto import new_fernet_key


def run_migrations(url: str, revision: str = "heads", *, downgrade: bool = False) -> None:
    """Apply (or roll back) migrations with the owner's connection URL."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    if not (root / "alembic.ini").exists():  # installed as a package: run from the project directory
        root = Path.cwd()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["database_url"] = url
    if downgrade:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


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


def cmd_sandbox(args: argparse.Namespace) -> int:
    import uvicorn

    from app.sandbox import create_standalone_sandbox_app

    app: Any = create_standalone_sandbox_app(rate_limits=not args.no_rate_limits)
    print(f"sandbox marketplace on http://{args.host}:{args.port}/sandbox (control API at /sandbox/control)")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


async def create_demo(settings: Settings, email: str, password: str) -> tuple[str, bool]:
    """Create the demo organization and owner unless the email exists. Returns (email, created)."""
    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.domain.accounts.services import AccountService, EmailTakenError
    from app.lib.tokens import AccessTokenCodec

    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        codec = AccessTokenCodec(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 60)
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                await AccountService(session, codec, 60).register(email, password, "Demo Shop")
        except EmailTakenError:
            return email, False
        return email, True
    finally:
        await engine.dispose()


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
