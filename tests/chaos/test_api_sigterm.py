"""SIGTERM to the API under load (issue 14 §6): every request already sent is answered (zero failures) and
the process exits, cleanly, within the grace period (compose's default 10 s for the api service)."""

from __future__ import annotations

import signal

import pytest

from tests.chaos.scenarios import api_sigterm, dump

pytestmark = pytest.mark.chaos


async def test_api_sigterm_under_load_drops_nothing(healthy):
    # Run last (conftest): the next scenario, if any, restarts the API through the `healthy` fixture.
    figures = await api_sigterm(healthy, concurrency=8, grace_s=10.0, restart=False)
    print(dump(figures))
    assert figures["in_flight_at_sigterm"] > 0, figures  # the signal really met work in progress
    assert figures["failed"] == 0, figures
    # uvicorn re-raises the signal once it has shut down, so a clean exit shows as "terminated by SIGTERM".
    assert figures["exit_code"] in (0, -signal.SIGTERM), figures
    assert figures["exit_s"] <= figures["grace_s"], figures
