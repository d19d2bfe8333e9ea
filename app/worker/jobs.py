"""The explicit registry of job functions the worker runs (name → coroutine)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.domain.accounts.jobs import record_audit_event
from app.domain.alerts.jobs import evaluate_alerts
from app.domain.billing.jobs import process_stripe_event
from app.domain.events.jobs import publish_recorded_event, token_expiry_cron
from app.domain.reports.jobs import daily_report, daily_reports_cron, sheets_push
from app.domain.sync.jobs import sync_connection, sync_fanout
from app.domain.telegram.jobs import handle_update, notifications_sweep, send_notifications
from app.domain.telegram.reports import daily_report as telegram_daily_report
from app.domain.telegram.reports import send_report_document
from app.domain.webhooks.jobs import deliver_event_webhooks, deliver_webhook, webhook_retry_sweep

JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    "audit.record": record_audit_event,
    "sync.connection": sync_connection,
    "alerts.evaluate": evaluate_alerts,
    "events.publish": publish_recorded_event,
    "webhooks.deliver": deliver_webhook,
    "webhooks.deliver_event": deliver_event_webhooks,
    "telegram.send": send_notifications,
    "telegram.update": handle_update,
    "billing.stripe_event": process_stripe_event,
    "reports.sheets_push": sheets_push,
    "reports.daily": daily_report,
    "telegram.daily_report": telegram_daily_report,
    "telegram.report_document": send_report_document,
}

CRONS: dict[str, Callable[..., Awaitable[Any]]] = {
    "cron:sync-fanout": sync_fanout,
    "cron:webhook-retry-sweep": webhook_retry_sweep,
    "cron:notifications-sweep": notifications_sweep,
    "cron:token-expiry": token_expiry_cron,
    "cron:daily-reports": daily_reports_cron,
}
