"""Billing meters, meter events and meter event summaries."""

from __future__ import annotations

import hashlib
from typing import Any

from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._errors import invalid, no_such
from app.sandbox.stripe._http import Route
from app.sandbox.stripe._metering import record_event, summaries


def _meter(acct: Account, meter_id: str) -> m.Meter:
    found = acct.meters.get(meter_id)
    if found is None:
        raise no_such("billing meter", meter_id)
    return found


def create_meter(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "display_name": f.Str(max_length=250),
            "event_name": f.Str(max_length=100),
            "default_aggregation": f.Obj({"formula": f.Enum("count", "last", "sum")}, required=("formula",)),
            "customer_mapping": f.Obj(
                {"event_payload_key": f.Str(max_length=100), "type": f.Enum("by_id")},
                required=("event_payload_key", "type"),
            ),
            "value_settings": f.Obj({"event_payload_key": f.Str(max_length=100)}, required=("event_payload_key",)),
            "event_time_window": f.Enum("day", "hour"),
        },
        required=("display_name", "event_name", "default_aggregation"),
    )
    acct = c.acct
    if acct.meter_for_event(values["event_name"]) is not None:
        raise invalid(f"A meter with event_name `{values['event_name']}` already exists.", "event_name")
    meter = m.Meter(
        id=acct.ids.new("mtr_test_", 32),
        created=acct.now,
        updated=acct.now,
        display_name=values["display_name"],
        event_name=values["event_name"],
        formula=values["default_aggregation"]["formula"],
        customer_key=(values.get("customer_mapping") or {}).get("event_payload_key", "stripe_customer_id"),
        value_key=(values.get("value_settings") or {}).get("event_payload_key", "value"),
        event_time_window=values.get("event_time_window"),
    )
    acct.meters[meter.id] = meter
    out = render.meter(meter)
    acct.emit("billing.meter.created", out)
    return out


def retrieve_meter(c: Call) -> dict[str, Any]:
    c.read({})
    return render.meter(_meter(c.acct, c.arg("id")))


def update_meter(c: Call) -> dict[str, Any]:
    values = c.read({"display_name": f.Str(max_length=250)})
    meter = _meter(c.acct, c.arg("id"))
    if "display_name" in values:
        meter.display_name = values["display_name"]
        meter.updated = c.acct.now
    return render.meter(meter)


def _set_status(c: Call, status: str) -> dict[str, Any]:
    c.read({})
    meter = _meter(c.acct, c.arg("id"))
    if meter.status == status:
        raise invalid(f"This meter is already {status}.", "id")
    meter.status = status
    meter.deactivated_at = c.acct.now if status == "inactive" else None
    meter.updated = c.acct.now
    out = render.meter(meter)
    c.acct.emit("billing.meter.deactivated" if status == "inactive" else "billing.meter.reactivated", out)
    return out


def list_meters(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"status": f.Enum("active", "inactive")})
    found = [mt for mt in c.acct.meters.values() if "status" not in filters or mt.status == filters["status"]]
    return paginate(c, found, "/v1/billing/meters", render.meter, lambda mt: mt.id)


def create_meter_event(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "event_name": f.Str(max_length=100),
            "payload": f.Metadata(),
            "identifier": f.Str(max_length=100),
            "timestamp": f.Int(minimum=0),
        },
        required=("event_name", "payload"),
    )
    payload = {k: v for k, v in values["payload"].items() if v is not None}
    event = record_event(c.acct, values["event_name"], payload, values.get("identifier"), values.get("timestamp"))
    return render.meter_event(event)


def list_event_summaries(c: Call) -> dict[str, Any]:
    filters = list_filters(
        c,
        {
            "customer": f.Str(),
            "start_time": f.Int(minimum=0),
            "end_time": f.Int(minimum=0),
            "value_grouping_window": f.Enum("day", "hour"),
        },
    )
    for name in ("customer", "start_time", "end_time"):
        if name not in filters:
            raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    meter_id = c.arg("id")
    rows = summaries(
        c.acct,
        meter_id,
        filters["customer"],
        filters["start_time"],
        filters["end_time"],
        filters.get("value_grouping_window"),
    )

    def summary_id(row: tuple[int, int, Any]) -> str:
        digest = hashlib.sha256(f"{meter_id}:{filters['customer']}:{row[0]}:{row[1]}".encode()).hexdigest()
        return "mtrusg_test_" + digest[:24]

    return paginate(
        c,
        list(reversed(rows)),  # stored oldest first, listed newest first
        f"/v1/billing/meters/{meter_id}/event_summaries",
        lambda row: render.meter_event_summary(summary_id(row), meter_id, row[0], row[1], row[2]),
        summary_id,
    )


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/billing/meters", create_meter),
        r("GET", "/v1/billing/meters", list_meters),
        r("GET", "/v1/billing/meters/{id}/event_summaries", list_event_summaries),
        r("POST", "/v1/billing/meters/{id}/deactivate", lambda c: _set_status(c, "inactive")),
        r("POST", "/v1/billing/meters/{id}/reactivate", lambda c: _set_status(c, "active")),
        r("GET", "/v1/billing/meters/{id}", retrieve_meter),
        r("POST", "/v1/billing/meters/{id}", update_meter),
        r("POST", "/v1/billing/meter_events", create_meter_event),
    ]
