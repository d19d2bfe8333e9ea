"""OpenTelemetry meter provider exported in Prometheus format, and the product's instruments."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import HistogramMetricFamily, Metric

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SYNC_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Job outcomes (``stock_tracker_jobs_total{outcome}``): returned; raised arq's Retry; raised anything else,
# timed out or gave up after its last try; was cancelled (an operator's abort, or a worker shutting down:
# arq runs it again).
JOB_OUTCOMES = ("succeeded", "retried", "failed", "cancelled")
# How sync runs end (``stock_tracker_sync_runs_total{outcome, reason}``): the reason is the run's error_code,
# "none" for a success. Known pairs are exported at 0 from the start, so the first failure of a kind is a
# visible increase (Prometheus cannot see the first increment of a series that starts at 1).
SYNC_RUN_KINDS = (
    ("succeeded", "none"),
    ("partially_failed", "partial"),
    ("failed", "marketplace_auth"),
    ("failed", "marketplace_unavailable"),
    ("failed", "rate_limited"),
    ("failed", "connection_invalid"),
    ("failed", "internal_error"),
    ("failed", "abandoned"),
)
_configured = False


def configure_metrics(service_name: str) -> None:
    """Install the global meter provider once per process, exporting to prometheus_client's registry."""
    global _configured
    if _configured:
        return
    provider = MeterProvider(
        resource=Resource.create({"service.name": service_name}),
        metric_readers=[PrometheusMetricReader()],
        views=[
            View(
                instrument_name="stock_tracker.sync.duration",
                aggregation=ExplicitBucketHistogramAggregation(_SYNC_BUCKETS),
            ),
            View(
                instrument_name="stock_tracker.job.duration",
                aggregation=ExplicitBucketHistogramAggregation(_JOB_BUCKETS),
            ),
        ],
    )
    metrics.set_meter_provider(provider)
    _configured = True


class TallyCounter:
    """A monotonic counter for per-request hot paths: ``add`` is a dict increment; the exporter reads the
    totals at scrape time (an observable counter), instead of the SDK's per-call aggregation (~10 µs)."""

    def __init__(self, meter: metrics.Meter, name: str, description: str) -> None:
        self._totals: dict[tuple[tuple[str, str], ...], int] = {}
        meter.create_observable_counter(name, callbacks=[self._observe], description=description)

    def add(self, amount: int, attributes: dict[str, str]) -> None:
        key = tuple(attributes.items())
        self._totals[key] = self._totals.get(key, 0) + amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(total, dict(key)) for key, total in list(self._totals.items())]


class RequestDurations:
    """``http.server.request.duration`` for the request path. ``record`` is a bisect and two additions; the
    SDK's histogram costs ~10 µs a call (attribute cleaning and hashing, view matching, a lock), which every
    request paid, the floor included. The totals are exported at scrape time by a prometheus_client
    collector as the family the OpenTelemetry exporter wrote before — name, help, buckets (``le`` as it
    printed them) and labels, ``otel_scope_*`` included — so the dashboards and alert rules read the same
    series (tests/integration/operations/test_metrics_contract.py, test_request_durations.py)."""

    NAME = "http_server_request_duration_seconds"
    HELP = "Duration of HTTP server requests."
    LABELS = (
        "http_request_method",
        "http_response_status_code",
        "http_route",
        "otel_scope_name",
        "otel_scope_schema_url",
        "otel_scope_version",
    )
    _SCOPE = ("stock_tracker", "", "")

    def __init__(self, bounds: Sequence[float] = _LATENCY_BUCKETS) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self._les = [repr(b) for b in self.bounds] + ["+Inf"]
        # (route, method, status) → [count per bucket (non-cumulative, +Inf last), sum]
        self._series: dict[tuple[str, str, int], tuple[list[int], list[float]]] = {}

    def record(self, seconds: float, route: str, method: str, status: int) -> None:
        key = (route, method, status)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = ([0] * (len(self.bounds) + 1), [0.0])
        found[0][bisect.bisect_left(self.bounds, seconds)] += 1
        found[1][0] += seconds

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.NAME, self.HELP, labels=self.LABELS)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.NAME, self.HELP, labels=self.LABELS)
        for (route, method, status), (counts, total) in list(self._series.items()):
            running, buckets = 0, []
            for le, n in zip(self._les, list(counts), strict=True):
                running += n
                buckets.append((le, float(running)))
            family.add_metric([method, str(status), route, *self._SCOPE], buckets, total[0])
        yield family


_request_durations: RequestDurations | None = None


def request_durations() -> RequestDurations:
    """This process's request-duration histogram, registered with the exporter's registry at first use."""
    global _request_durations
    if _request_durations is None:
        _request_durations = RequestDurations()
        REGISTRY.register(_request_durations)
    return _request_durations


class Instruments:
    """Created lazily so they bind to whichever provider is installed at first use."""

    def __init__(self) -> None:
        meter = metrics.get_meter("stock_tracker")
        self.http_duration = request_durations()
        self.errors = meter.create_counter("stock_tracker.errors", description="Errors by stable code.")
        self.rate_limit_rejections = meter.create_counter(
            "stock_tracker.rate_limit_rejections", description="Requests refused by the rate limiter."
        )
        self.limiter_unavailable = meter.create_counter(
            "stock_tracker.rate_limiter_unavailable", description="Limiter checks that could not reach Redis."
        )
        self.cache_requests = TallyCounter(meter, "stock_tracker.cache_requests", "Cache hits and misses.")
        self.jobs = meter.create_counter("stock_tracker.jobs", description="Background jobs by function and outcome.")
        self.job_duration = meter.create_histogram(
            "stock_tracker.job.duration", unit="s", description="How long a job ran, by function."
        )
        self.jobs_in_progress = meter.create_up_down_counter(
            "stock_tracker.jobs_in_progress", description="Jobs running in this process, by function."
        )
        self.outbox_enqueued = meter.create_counter(
            "stock_tracker.outbox_enqueued", description="Outbox rows enqueued."
        )
        self.sync_runs = meter.create_counter(
            "stock_tracker.sync_runs", description="Sync runs by marketplace, outcome and reason (error code)."
        )
        self.sync_duration = meter.create_histogram(
            "stock_tracker.sync.duration", unit="s", description="Sync run duration."
        )
        self.marketplace_calls = meter.create_counter(
            "stock_tracker.marketplace_calls", description="Marketplace API calls by endpoint and status."
        )
        self.marketplace_429 = meter.create_counter(
            "stock_tracker.marketplace_rate_limited", description="Marketplace 429 answers."
        )
        self.rows_upserted = meter.create_counter(
            "stock_tracker.stock_rows_upserted", description="Stock rows written."
        )
        self.retention_deleted = meter.create_counter(
            "stock_tracker.retention_deleted", description="Rows deleted (or compacted away) by the retention sweep."
        )
        self.history_points = meter.create_counter(
            "stock_tracker.history_points", description="Stock history points written."
        )


_instruments: Instruments | None = None


def instruments() -> Instruments:
    global _instruments
    if _instruments is None:
        _instruments = Instruments()
    return _instruments


def record_sync_run(marketplace: str, outcome: str, reason: str | None, seconds: float | None) -> None:
    """One finished sync run: ``reason`` is its error code (None for a success)."""
    reason = reason or ("none" if outcome == "succeeded" else "unknown")
    instruments().sync_runs.add(1, {"marketplace": marketplace, "outcome": outcome, "reason": reason})
    if seconds is not None:  # a run that never started has no duration
        instruments().sync_duration.record(seconds, {"outcome": outcome})


def seed_counter(counter: metrics.Counter | metrics.UpDownCounter, attribute_sets: Iterable[dict[str, str]]) -> None:
    """Export these series at 0 before anything happens (a rule's ``rate``/``increase`` then sees the first
    event as an increase, and a panel shows 0 rather than "no data")."""
    for attributes in attribute_sets:
        counter.add(0, attributes)


def seed_job_metrics(functions: Sequence[str]) -> None:
    seed_counter(instruments().jobs, ({"function": f, "outcome": o} for f in functions for o in JOB_OUTCOMES))
    seed_counter(instruments().jobs_in_progress, ({"function": f} for f in functions))


def seed_sync_metrics(marketplaces: Sequence[str]) -> None:
    seed_counter(
        instruments().sync_runs,
        ({"marketplace": m, "outcome": o, "reason": r} for m in marketplaces for (o, r) in SYNC_RUN_KINDS),
    )


def observe_state(
    name: str, description: str, read: Callable[[], Iterable[tuple[float, dict[str, str]]]], unit: str = ""
) -> None:
    """A gauge whose values ``read`` computes when it is scraped (state such as a queue's depth)."""

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for value, attributes in read()]

    metrics.get_meter("stock_tracker").create_observable_gauge(
        name, callbacks=[callback], unit=unit, description=description
    )


def observe_totals(
    name: str, description: str, read: Callable[[], Iterable[tuple[float, dict[str, str]]]], unit: str = ""
) -> None:
    """A monotonic counter whose totals ``read`` returns when it is scraped (counts a hot path keeps as plain
    integers, such as the limiter's token leases)."""

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for value, attributes in read()]

    metrics.get_meter("stock_tracker").create_observable_counter(
        name, callbacks=[callback], unit=unit, description=description
    )
