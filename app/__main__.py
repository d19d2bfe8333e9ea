"""The `stock-tracker` command line (also `python -m app`)."""

from __future__ import annotations

import argparse
import sys

from app.config import SettingsError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stock-tracker", description="Stock Tracker: stock alerts for WB and Ozon sellers")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run everything locally: embedded PostgreSQL and Redis, API, worker, sandbox")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", default="./var")

    api = sub.add_parser("api", help="serve the HTTP API with uvicorn")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=None)

    sub.add_parser("worker", help="run the arq worker")

    mig = sub.add_parser("migrate", help="apply database migrations (as the table owner)")
    mig.add_argument("revision", nargs="?", default="heads")
    mig.add_argument("--downgrade", action="store_true", help="downgrade to REVISION instead")

    keys = sub.add_parser("keys", help="print new secrets (JWT, API-key hash, Fernet encryption key, operator token)")
    keys.add_argument(
        "action",
        nargs="?",
        choices=["new", "rotate"],
        default="new",
        help="rotate: the same as `secrets rotate`",
    )

    sec = sub.add_parser("secrets", help="rotate: re-encrypt stored secrets under the primary encryption key")
    sec.add_argument(
        "action",
        choices=["rotate"],
        help="re-encrypt marketplace credentials and webhook signing secrets under the first key of "
        "ENCRYPTION_KEYS (decrypting with any key of ENCRYPTION_KEYS or ENCRYPTION_KEYS_PREVIOUS)",
    )

    from app.cli.queue import add_parser as add_queue_parser

    add_queue_parser(sub)

    sb = sub.add_parser("sandbox", help="serve the sandbox marketplace alone")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8100)
    sb.add_argument("--no-rate-limits", action="store_true")

    from app.cli.billing import add_parser as add_billing_parser
    from app.cli.telegram import add_parser as add_telegram_parser

    add_telegram_parser(sub)
    add_billing_parser(sub)

    demo = sub.add_parser("demo", help="create a demo organization and user")
    demo.add_argument("--email", default="demo@stock-tracker.local")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from app.cli import commands

        return int(getattr(commands, f"cmd_{args.command}")(args) or 0)
    except SettingsError as exc:
        print(f"stock-tracker: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
