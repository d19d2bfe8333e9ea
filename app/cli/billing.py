"""`stock-tracker billing sync-catalog`: make the Stripe account sell the plans (products, monthly prices found
by lookup key, the usage meters). Safe to run again; a changed price becomes a new Stripe price that takes
over the lookup key (subscriptions keep theirs until they change plan)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.config import PREFIX, Settings, load_settings
from app.domain.billing.services import sync_catalog
from app.integrations.stripe import StripeError, StripeGateway


async def run_sync_catalog(settings: Settings) -> list[str]:
    """Sync the catalogue; returns one line per plan and meter."""
    async with StripeGateway.from_settings(settings) as stripe:
        results, meters = await sync_catalog(stripe)
    lines = [
        f"{r.plan_code:<11} {r.lookup_key:<34} {r.price.id:<32} {(r.price.unit_amount or 0) / 100:>7.2f} "
        f"{r.price.currency}  {r.action}"
        for r in results
    ]
    lines += [f"meter       {m.event_name:<34} {m.id}" for m in meters]
    return lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    billing = sub.add_parser("billing", help="billing with Stripe")
    actions = billing.add_subparsers(dest="action", required=True)
    actions.add_parser("sync-catalog", help="create or update the plans' products, prices and usage meters in Stripe")


def cmd_billing(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.billing_enabled:
        print(f"stock-tracker: billing is off ({PREFIX}STRIPE_SECRET_KEY is not set): nothing to sync", file=sys.stderr)
        return 1
    try:
        for line in asyncio.run(run_sync_catalog(settings)):
            print(line)
    except StripeError as exc:
        print(f"stock-tracker: Stripe refused: {exc.message}", file=sys.stderr)
        return 1
    return 0
