"""The Stripe SDK is loaded by the first gateway, not by importing the application: a self-hosted deployment
without Stripe keys never makes one, and the SDK is ~7 MB of resident memory in each API and worker process."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import app.server.app, app.worker.settings
from app.integrations.stripe import StripeGateway, StripeNotConfigured, verify_webhook, WebhookSignatureError
try:
    StripeGateway("")
except StripeNotConfigured:
    pass
try:
    verify_webhook(b"{}", "t=1,v1=x", "")
except WebhookSignatureError:
    pass
print("before", "stripe" in sys.modules)
StripeGateway("sk_test_x", api_base="http://127.0.0.1:9")
print("after", "stripe" in sys.modules)
"""


def test_the_sdk_loads_with_the_first_gateway_only() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["before", "False", "after", "True"], out.stderr[-2000:]
