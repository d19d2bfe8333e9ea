"""The request-duration histogram exports exactly what the OpenTelemetry SDK and its Prometheus exporter
exported for the same observations (family, buckets, sums, labels), so dashboards and alert rules read the
same series — while ``record`` stays a bisect and two additions."""

from __future__ import annotations

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.metrics import _LATENCY_BUCKETS, RequestDurations

# Bounds themselves (a value equal to a bound is in that bucket), between bounds, below the first, above the last.
OBSERVATIONS = [
    (0.001, "/api/v1/products", "GET", 200),
    (0.0009, "/api/v1/products", "GET", 200),
    (0.0025, "/api/v1/products", "GET", 200),
    (0.003, "/api/v1/products", "GET", 200),
    (0.3, "/api/v1/products", "GET", 500),
    (11.0, "/api/v1/reports/stock", "GET", 200),
    (0.02, "/api/v1/connections", "POST", 201),
    (10.0, "unmatched", "GET", 404),
]


def samples(text: str) -> dict[str, set[tuple[tuple[tuple[str, str], ...], float]]]:
    found: dict[str, set[tuple[tuple[tuple[str, str], ...], float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != RequestDurations.NAME:
            continue
        for s in family.samples:
            found.setdefault(s.name, set()).add((tuple(sorted(s.labels.items())), round(s.value, 9)))
    return found


def exported_by_the_sdk() -> str:
    """What the SDK's histogram with our view and the exporter printed for OBSERVATIONS."""
    registry = CollectorRegistry()
    reader = PrometheusMetricReader()  # registers itself in prometheus_client's global registry (until shutdown)
    registry.register(reader._collector)  # read here on its own
    provider = MeterProvider(
        metric_readers=[reader],
        views=[
            View(
                instrument_name="http.server.request.duration",
                aggregation=ExplicitBucketHistogramAggregation(_LATENCY_BUCKETS),
            )
        ],
    )
    histogram = provider.get_meter("stock_tracker").create_histogram(
        "http.server.request.duration", unit="s", description="Duration of HTTP server requests."
    )
    for seconds, route, method, status in OBSERVATIONS:
        histogram.record(
            seconds, {"http.route": route, "http.request.method": method, "http.response.status_code": status}
        )
    try:
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()


def test_same_series_as_the_sdk_exporter():
    ours = RequestDurations()
    registry = CollectorRegistry()
    registry.register(ours)
    for seconds, route, method, status in OBSERVATIONS:
        ours.record(seconds, route, method, status)
    text = generate_latest(registry).decode()
    assert "# TYPE http_server_request_duration_seconds histogram" in text
    expected = samples(exported_by_the_sdk())
    assert expected, "the SDK exported nothing to compare with"
    assert samples(text) == expected


def test_buckets_are_cumulative_and_bounds_inclusive():
    ours = RequestDurations(bounds=(0.01, 0.1))
    registry = CollectorRegistry()
    registry.register(ours)
    for seconds in (0.01, 0.05, 0.1, 0.2):
        ours.record(seconds, "/r", "GET", 200)
    got = {
        s.labels["le"]: s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name.endswith("_bucket")
    }
    assert got == {"0.01": 1.0, "0.1": 3.0, "+Inf": 4.0}
