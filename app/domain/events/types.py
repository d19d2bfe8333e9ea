"""The event catalogue: types integrators subscribe to, and which of them reach people (Telegram)."""

from __future__ import annotations

STOCK_LOW = "stock.low"
STOCK_OUT = "stock.out"
STOCK_RESTORED = "stock.restored"
# One summary instead of a message per product: a connection's first sync (the baseline), the first after a
# long pause, or a sync that would raise more alerts than the organization's cap (docs/alerts.md).
STOCK_DIGEST = "stock.digest"
SYNC_SUCCEEDED = "sync.succeeded"
SYNC_FAILED = "sync.failed"
CONNECTION_INVALID = "connection.invalid"
CONNECTION_TOKEN_EXPIRING = "connection.token_expiring"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
BILLING_PLAN_CHANGED = "billing.plan_changed"
BILLING_PAYMENT_FAILED = "billing.payment_failed"
REPORT_READY = "report.ready"
SHEET_LINK_INVALID = "sheet_link.invalid"
# Sent by `POST /webhook-endpoints/{id}/test` to that endpoint only; never fanned out.
ENDPOINT_TEST = "webhook_endpoint.test"

EVENT_TYPES: dict[str, str] = {
    STOCK_LOW: "A product (or product × warehouse) fell below its alert threshold.",
    STOCK_OUT: "A product (or product × warehouse) ran out of stock.",
    STOCK_RESTORED: "Stock is back above the threshold plus hysteresis; the alert is resolved.",
    STOCK_DIGEST: (
        "One summary of a sync's alerts instead of one event each: the connection's first sync (alerts opened "
        "silently as the baseline), the first after a long pause, or more alerts at once than the cap."
    ),
    SYNC_SUCCEEDED: "A sync of a marketplace connection finished (fully or partially).",
    SYNC_FAILED: "A sync of a marketplace connection failed.",
    CONNECTION_INVALID: "The marketplace refused the connection's credentials.",
    CONNECTION_TOKEN_EXPIRING: "A Wildberries token expires within 7 days (and again within 1 day).",
    ENDPOINT_DISABLED: "A webhook endpoint was disabled after failing continuously.",
    BILLING_PLAN_CHANGED: "The organization's plan or subscription status changed (upgrade, downgrade, ended…).",
    BILLING_PAYMENT_FAILED: "A subscription payment failed; Stripe retries it and the subscription is past due.",
    REPORT_READY: "The daily stock report is ready: a signed download link (XLSX) valid for 7 days.",
    SHEET_LINK_INVALID: "Google Sheets refused a linked spreadsheet (key revoked, not shared, gone): fix the link.",
}

# What a person wants on their phone; sync.succeeded would be noise every half hour, and the daily report
# reaches chats as the XLSX document itself.
HUMAN_TYPES = frozenset(EVENT_TYPES) - {SYNC_SUCCEEDED, REPORT_READY}
