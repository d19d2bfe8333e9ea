"""The stock.digest data and its Telegram line (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.domain.alerts.digest import digest_data
from app.domain.alerts.transitions import Transition
from app.domain.telegram.formatting import event_line


def transition(action: str, level: str, quantity: int, n: int) -> Transition:
    return Transition(
        action,
        uuid.uuid4(),
        level,
        datetime.now(UTC),
        f"p:{n}",
        uuid.uuid4(),
        None,
        quantity,
        None,
        "{}",
        str(n),
        f"v{n}",
        f"Product <{n}>",
        "wildberries",
        None,
    )


def test_a_flood_digest_counts_and_orders_its_examples():
    moves = [transition("open", "low", q, q) for q in (4, 1, 3)] + [
        transition("open", "out", 0, 10),
        transition("escalate", "out", 0, 11),
        transition("resolve", "low", 9, 12),
    ]
    data = digest_data("flood", uuid.uuid4(), "Main <WB>", uuid.uuid4(), moves, {"low": 3, "out": 2}, "https://x.test/")
    assert data["opened"] == {"low": 3, "out": 1} and data["escalated"] == 1 and data["restored"] == 1
    assert [(e["level"], e["quantity"]) for e in data["examples"]] == [
        ("out", 0),
        ("out", 0),
        ("low", 1),
        ("low", 3),
        ("low", 4),
    ]
    assert data["report_url"].startswith("https://x.test/api/v1/reports/stock?connection_id=")
    line = event_line("stock.digest", data)
    assert line.startswith(
        "📋 <b>Main &lt;WB&gt;</b>: 5 new alerts, 1 back in stock — now 3 products are low, 2 are out."
    )
    assert "Product &lt;1&gt;" in line and '<a href="https://x.test/api/v1/reports/stock' in line


def test_the_first_sync_digest_reads_as_a_summary():
    data = digest_data("first_sync", uuid.uuid4(), "Shop", uuid.uuid4(), [], {"low": 1, "out": 0}, "")
    line = event_line("stock.digest", data)
    assert line.startswith("📋 First sync of <b>Shop</b>: 1 product is low, 0 are out.")
    assert "/report for the stock report" in line  # no public URL configured: no link, the bot command
