"""Telegram message text (HTML parse mode): every value from data is escaped; long batches are split."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from app.domain.events.services import (
    BILLING_PAYMENT_FAILED,
    BILLING_PLAN_CHANGED,
    CONNECTION_INVALID,
    CONNECTION_TOKEN_EXPIRING,
    ENDPOINT_DISABLED,
    SHEET_LINK_INVALID,
    STOCK_DIGEST,
    STOCK_LOW,
    STOCK_OUT,
    STOCK_RESTORED,
    SYNC_FAILED,
    SYNC_SUCCEEDED,
)

MAX_MESSAGE = 3900  # Telegram allows 4096 characters after entity parsing; leave room for tags
_MARKETPLACES = {"wildberries": "WB", "ozon": "Ozon"}


def _s(value: Any, limit: int = 120) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text, quote=False)


def product_label(data: dict[str, Any]) -> str:
    p = data.get("product") or {}
    name = p.get("title") or p.get("vendor_code") or p.get("external_id") or "a product"
    bits = [
        b
        for b in (
            p.get("vendor_code"),
            f"{_MARKETPLACES.get(str(p.get('marketplace')), '')} {p.get('external_id') or ''}".strip(),
        )
        if b
    ]
    label = f"<b>{_s(name, 80)}</b>"
    if bits:
        label += f" ({', '.join(_s(b, 60) for b in bits)})"
    wh = data.get("warehouse")
    if wh:
        label += f" at {_s(wh.get('name') or 'a warehouse', 60)}"
    return label


def _threshold(data: dict[str, Any]) -> str:
    th = data.get("threshold") or {}
    parts = []
    if th.get("units_below") is not None:
        parts.append(f"&lt; {th['units_below']} units")
    if th.get("days_of_cover_below") is not None:
        parts.append(f"&lt; {th['days_of_cover_below']:g} days of cover")
    return " or ".join(parts)


def _cover(data: dict[str, Any]) -> str:
    days = data.get("days_of_cover")
    return f", ≈{days:g} days of cover" if isinstance(days, int | float) else ""


def event_line(event_type: str, data: dict[str, Any]) -> str:
    """One event as one HTML line (no trailing newline)."""
    if event_type == STOCK_LOW:
        left = f"{data.get('quantity')} left{_cover(data)}"
        return f"⚠️ Low stock: {product_label(data)} — {left} (alert: {_threshold(data)})"
    if event_type == STOCK_OUT:
        return f"⛔ Out of stock: {product_label(data)}"
    if event_type == STOCK_RESTORED:
        return f"✅ Back in stock: {product_label(data)} — {data.get('quantity')} units{_cover(data)}"
    if event_type == STOCK_DIGEST:
        return digest_line(data)
    if event_type == SYNC_FAILED:
        name = data.get("connection_name") or data.get("name") or data.get("connection_id") or "a connection"
        error = data.get("error") or data.get("error_code") or "see the sync log"
        return f"❗ Sync failed: <b>{_s(name)}</b> — {_s(error, 300)}"
    if event_type == SYNC_SUCCEEDED:
        name = data.get("connection_name") or data.get("name") or data.get("connection_id") or "a connection"
        return f"🔄 Sync finished: <b>{_s(name)}</b>"
    if event_type == CONNECTION_INVALID:
        name = data.get("connection_name") or data.get("name") or data.get("connection_id") or "a connection"
        reason = f" ({_s(data['reason'], 200)})" if data.get("reason") else ""
        return (
            f"🔑 The marketplace refused the credentials of <b>{_s(name)}</b>{reason}: "
            "replace the token in Stock Tracker to resume syncing."
        )
    if event_type == CONNECTION_TOKEN_EXPIRING:
        days = data.get("days_left")
        when = _s(str(data.get("expires_at", ""))[:10])
        return (
            f"⏳ The Wildberries token of <b>{_s(data.get('name'))}</b> expires in {days} day"
            f"{'' if days == 1 else 's'} ({when}): issue a new one in the seller cabinet and replace it."
        )
    if event_type == ENDPOINT_DISABLED:
        host = urlsplit(str(data.get("url") or "")).hostname or "an endpoint"
        return f"🔌 Webhook endpoint <b>{_s(host)}</b> was disabled: {_s(data.get('reason'), 300)}"
    if event_type == BILLING_PLAN_CHANGED:
        frm, to = data.get("from_plan"), data.get("to_plan")
        plan = f"{_s(frm)} → <b>{_s(to)}</b>" if frm != to else f"<b>{_s(to)}</b>"
        status = f", {_s(data.get('to_status'))}" if data.get("from_status") != data.get("to_status") else ""
        tail = " The organization is read-only until it subscribes." if data.get("read_only") else ""
        return f"💳 Plan {plan}{status} ({_s(data.get('cause'))}).{tail}"
    if event_type == BILLING_PAYMENT_FAILED:
        amount = data.get("amount_due")
        money = (
            f" of {amount / 100:.2f} {_s(str(data.get('currency') or '').upper())}" if isinstance(amount, int) else ""
        )
        retry = (
            f"; Stripe retries on {_s(str(data['next_payment_attempt'])[:10])}"
            if data.get("next_payment_attempt")
            else ""
        )
        return f"💳 A payment{money} failed{retry}: update the card in the billing portal."
    if event_type == SHEET_LINK_INVALID:
        return (
            f"📄 Google Sheets refused the sheet <b>{_s(data.get('sheet_name'))}</b> "
            f"({_s(data.get('reason'), 300)}): share it with {_s(data.get('client_email'))} or upload a new key "
            "in Stock Tracker; the report is not written there until then."
        )
    return f"ℹ️ {_s(event_type)}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def digest_line(data: dict[str, Any]) -> str:
    """A ``stock.digest`` (a sync's alerts summed up instead of one message each), with a few examples."""
    name = data.get("connection_name") or data.get("name") or "a connection"
    now = data.get("open_now") or {}
    low, out = int(now.get("low") or 0), int(now.get("out") or 0)
    state = f"{_plural(low, 'product is', 'products are')} low, {out} {'is' if out == 1 else 'are'} out"
    reason = data.get("reason")
    if reason == "first_sync":
        head = f"📋 First sync of <b>{_s(name)}</b>: {state}."
    elif reason == "resumed":
        head = f"📋 <b>{_s(name)}</b> synced again after a pause: {state}."
    else:
        opened = data.get("opened") or {}
        raised = int(opened.get("low") or 0) + int(opened.get("out") or 0) + int(data.get("escalated") or 0)
        restored = int(data.get("restored") or 0)
        head = (
            f"📋 <b>{_s(name)}</b>: {_plural(raised, 'new alert', 'new alerts')}, {restored} back in stock — "
            f"now {state}."
        )
    lines = [head]
    for example in (data.get("examples") or [])[:5]:
        mark = "⛔" if example.get("level") == "out" else "⚠️"
        lines.append(f"{mark} {product_label(example)} — {example.get('quantity')} left")
    url = str(data.get("report_url") or "")
    if url.startswith(("https://", "http://")):
        lines.append(f'<a href="{escape(url, quote=True)}">The stock report</a> · /low lists every open alert')
    else:
        lines.append("/report for the stock report · /low lists every open alert")
    return "\n".join(lines)


def _chunks(header: str, lines: Sequence[str]) -> list[str]:
    out: list[str] = []
    current = header
    for line in lines:
        if len(current) + len(line) + 1 > MAX_MESSAGE and current != header:
            out.append(current)
            current = header + " (continued)" if header else ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def batch(events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Messages for events that arrived together (one sync's alerts): one message when they fit."""
    lines = [event_line(et, data) for et, data in events]
    if len(lines) == 1:
        return lines
    return _chunks(f"<b>{len(lines)} updates</b>", lines)


def digest(events: Sequence[tuple[str, dict[str, Any]]], start: str | None, end: str | None) -> list[str]:
    """The one message (split only if too long) that ends quiet hours."""
    span = f" ({_s(start)}–{_s(end)})" if start and end else ""
    header = f"🌙 <b>While quiet hours were on{span}: {len(events)} update{'s' if len(events) != 1 else ''}</b>"
    return _chunks(header, [event_line(et, data) for et, data in events])


def when(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC")
