"""Billing meters: meter events (deduplicated by `identifier`), their aggregates and event summaries.

Stripe validates a meter event's shape when it is created (payload keys, timestamp window) and processes
it asynchronously; problems found later (no meter for the event name, unknown customer) only show in the
meter's error reports. The stand-in answers the same way and records why an event was not counted.
A repeated `identifier` within 24 hours is accepted and counted once (Stripe enforces uniqueness of
identifiers "within a rolling period of at least 24 hours").
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import DAY, Account
from app.sandbox.stripe._errors import invalid, no_such

PAST_WINDOW = 35 * DAY
FUTURE_WINDOW = 5 * 60
DEDUPE_WINDOW = DAY


def record_event(
    acct: Account, event_name: str, payload: dict[str, str], identifier: str | None, timestamp: int | None
) -> m.MeterEvent:
    now = acct.now
    ts = now if timestamp is None else timestamp
    if ts < now - PAST_WINDOW:
        raise invalid("Timestamp must be within the past 35 calendar days.", "timestamp")
    if ts > now + FUTURE_WINDOW:
        raise invalid("Timestamp cannot be more than 5 minutes in the future.", "timestamp")
    meter = acct.meter_for_event(event_name)
    customer_key = meter.customer_key if meter else "stripe_customer_id"
    value_key = meter.value_key if meter else "value"
    if customer_key not in payload:
        raise invalid(f"Missing required field `{customer_key}` in payload.", f"payload[{customer_key}]")
    raw_value = payload.get(value_key, "1" if meter and meter.formula == "count" else None)
    if raw_value is None:
        raise invalid(f"Missing required field `{value_key}` in payload.", f"payload[{value_key}]")
    try:
        value = Decimal(raw_value)
    except InvalidOperation:
        raise invalid(
            f"Invalid value for `{value_key}` in payload: must be a number.", f"payload[{value_key}]"
        ) from None
    ident = identifier or acct.ids.new("mev_", 20)
    event = m.MeterEvent(
        event_name=event_name,
        identifier=ident,
        payload=dict(payload),
        timestamp=ts,
        created=now,
        meter=meter.id if meter else None,
        customer=payload[customer_key],
        value=value,
    )
    seen = acct.meter_identifiers.get(ident)
    if seen is not None and now - seen < DEDUPE_WINDOW:
        event.error = "duplicate_identifier"
    elif meter is None:
        event.error = "no_meter"
    elif meter.status != "active":
        event.error = "archived_meter"
    elif event.customer not in acct.customers or acct.customers[event.customer].deleted:
        event.error = "meter_event_customer_not_found"
    if event.error != "duplicate_identifier":
        acct.meter_identifiers[ident] = now
    acct.meter_events.append(event)
    return event


def counted(acct: Account, meter_id: str, customer: str, start: int, end: int) -> list[m.MeterEvent]:
    return [
        e
        for e in acct.meter_events
        if e.error is None and e.meter == meter_id and e.customer == customer and start <= e.timestamp < end
    ]


def aggregate(acct: Account, meter_id: str, customer: str, start: int, end: int) -> Decimal:
    meter = acct.meters[meter_id]
    events = counted(acct, meter_id, customer, start, end)
    if meter.formula == "count":
        return Decimal(len(events))
    if meter.formula == "last":
        latest = max(events, key=lambda e: (e.timestamp, e.created), default=None)
        return latest.value if latest else Decimal(0)
    return sum((e.value for e in events), Decimal(0))


def _window_start(ts: int, window: str) -> int:
    size = 3600 if window == "hour" else DAY
    return ts - ts % size


def summaries(
    acct: Account, meter_id: str, customer: str, start: int, end: int, window: str | None
) -> list[tuple[int, int, Decimal]]:
    """(start, end, value) per window, newest first; one row for the whole range without a window."""
    if meter_id not in acct.meters:
        raise no_such("billing.meter", meter_id)
    if start % 60 or end % 60:
        raise invalid("start_time and end_time must be aligned with minute boundaries.", "start_time")
    if end <= start:
        raise invalid("end_time must be after start_time.", "end_time")
    if window is None:
        return [(start, end, aggregate(acct, meter_id, customer, start, end))]
    size = 3600 if window == "hour" else DAY
    if start % size or end % size:
        raise invalid(f"start_time and end_time must be aligned with {window} boundaries.", "start_time")
    rows = []
    cursor = _window_start(start, window)
    while cursor < end:
        rows.append((cursor, cursor + size, aggregate(acct, meter_id, customer, cursor, cursor + size)))
        cursor += size
    return list(reversed(rows))


def describe(event: m.MeterEvent) -> dict[str, Any]:
    """What the control API shows of a meter event (including why it was not counted)."""
    return {
        "event_name": event.event_name,
        "identifier": event.identifier,
        "customer": event.customer,
        "meter": event.meter,
        "value": str(event.value),
        "timestamp": event.timestamp,
        "created": event.created,
        "counted": event.error is None,
        "error": event.error,
    }
