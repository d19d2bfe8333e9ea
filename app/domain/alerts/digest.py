"""The ``stock.digest`` event's data (pure): one summary of a sync's alerts instead of one event each.

Sent for the baseline (``first_sync``: a connection's first evaluation; ``resumed``: the first after a long
pause) and for a flood (``flood``: more transitions than the organization's ``max_alerts_per_sync``). It says
what this sync did, what is open for the connection now ("42 products are low, 7 are out"), a few
examples (out of stock first), and where to read the rest: the stock report and the open alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from app.domain.alerts.transitions import Transition

EXAMPLES = 10


def digest_data(
    reason: str,
    connection_id: uuid.UUID,
    connection_name: str | None,
    run_id: uuid.UUID,
    transitions: Sequence[Transition],
    open_now: dict[str, int],
    public_url: str,
) -> dict[str, Any]:
    opened = [t for t in transitions if t.action == "open"]
    raised = [t for t in transitions if t.action in ("open", "escalate")]
    # Out of stock first, then the fewest units left; the key keeps equal ones in a stable order.
    examples = sorted(raised, key=lambda t: (t.level != "out", t.quantity, t.key))[:EXAMPLES]
    base = public_url.rstrip("/")
    return {
        "reason": reason,
        "connection_id": str(connection_id),
        "connection_name": connection_name,
        "sync_run_id": str(run_id),
        "opened": {
            "low": sum(1 for t in opened if t.level == "low"),
            "out": sum(1 for t in opened if t.level == "out"),
        },
        "escalated": sum(1 for t in transitions if t.action == "escalate"),
        "restored": sum(1 for t in transitions if t.action == "resolve"),
        "open_now": {"low": open_now.get("low", 0), "out": open_now.get("out", 0)},
        "examples": [
            {
                "alert_id": str(t.alert_id),
                "level": t.level,
                "product": {
                    "id": str(t.product_id),
                    "external_id": t.external_id,
                    "vendor_code": t.vendor_code,
                    "title": t.title,
                    "marketplace": t.marketplace,
                },
                "warehouse": {"id": str(t.warehouse_id), "name": t.warehouse_name} if t.warehouse_id else None,
                "quantity": t.quantity,
            }
            for t in examples
        ],
        "report_url": f"{base}/api/v1/reports/stock?connection_id={connection_id}",
        "alerts_url": f"{base}/api/v1/alerts?status=open",
    }
