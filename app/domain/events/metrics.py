"""Instruments of the alerting pipeline (attributes are low-cardinality: outcome, type — never tenants)."""

from __future__ import annotations

from opentelemetry import metrics

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class AlertInstruments:
    def __init__(self) -> None:
        meter = metrics.get_meter("stock_tracker")
        self.webhook_attempts = meter.create_counter(
            "stock_tracker.webhook_attempts", description="Webhook delivery attempts by outcome."
        )
        self.webhook_latency = meter.create_histogram(
            "stock_tracker.webhook_delivery_latency",
            unit="s",
            description="Time from an event to its first delivery attempt.",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self.endpoints_disabled = meter.create_counter(
            "stock_tracker.webhook_endpoints_disabled", description="Webhook endpoints disabled after failing."
        )
        self.alerts_raised = meter.create_counter("stock_tracker.alerts_raised", description="Alert events by type.")
        self.telegram_messages = meter.create_counter(
            "stock_tracker.telegram_messages", description="Telegram sends by outcome."
        )


_instruments: AlertInstruments | None = None


def alert_instruments() -> AlertInstruments:
    global _instruments
    if _instruments is None:
        _instruments = AlertInstruments()
    return _instruments
