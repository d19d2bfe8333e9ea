"""`stock-tracker billing sync-catalog` as an operator runs it, against a Stripe stand-in account."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

import httpx

from app.integrations.stripe import StripeGateway, price_lookup_key
from tests.sandbox_server import StripeStandIn


async def run_cli(*args: str, **env: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env={**clean, "STOCK_TRACKER_ENV": "test", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_sync_catalog_creates_the_plans_then_changes_nothing(stripe_sandbox: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        standin = await StripeStandIn.create(http, stripe_sandbox, secret_key="sk_test_cli_" + secrets.token_hex(8))
        env = {"STOCK_TRACKER_STRIPE_SECRET_KEY": standin.secret_key, "STOCK_TRACKER_STRIPE_API_BASE": standin.api_base}
        try:
            code, out, err = await run_cli("billing", "sync-catalog", **env)
            assert code == 0, err
            lines = out.splitlines()
            assert [line.split()[0] for line in lines] == ["starter", "pro", "enterprise", "meter", "meter"]
            assert all(line.endswith("created") for line in lines[:3])
            async with StripeGateway(standin.secret_key, api_base=standin.api_base) as stripe:
                pro = await stripe.price_for_plan("pro")
                assert (pro.lookup_key, pro.unit_amount, pro.recurring and pro.recurring.interval) == (
                    price_lookup_key("pro"),
                    2990,
                    "month",
                )
            code, out, _ = await run_cli("billing", "sync-catalog", **env)
            assert code == 0 and [line.split()[-1] for line in out.splitlines()[:3]] == ["unchanged"] * 3
        finally:
            await standin.delete()


async def test_sync_catalog_without_a_key_says_billing_is_off() -> None:
    code, _, err = await run_cli("billing", "sync-catalog")
    assert code == 1 and "billing is off" in err
