"""Error tracking with Sentry or a Sentry-compatible server (GlitchTip): unhandled errors of the API and the
worker, with release, environment, component and tenant id; never tokens or passwords.

Nothing here imports ``sentry_sdk`` until ``init_error_tracking`` is called with a DSN: without one the SDK
is never loaded. Only what we report is sent: the SDK's default and auto-enabled integrations (logging,
frameworks, HTTP clients) are off, no local variables, no request bodies, no breadcrumbs, and every event
passes the scrubber (``scrub.py``) on its way out.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from importlib import metadata
from typing import Any

from app.observability.logging import set_error_reporter
from app.observability.scrub import scrub

# Log-context keys that become tags of an event (low-cardinality ones and the ids an operator searches by).
_TAGS = ("request_id", "tenant_id", "job_id", "function", "http_route", "event")
_enabled = False


def default_release() -> str:
    try:
        return f"stock-tracker@{metadata.version('stock-tracker')}"
    except metadata.PackageNotFoundError:
        return "stock-tracker@unknown"


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed


def init_error_tracking(dsn: str, *, environment: str, component: str, release: str = "") -> bool:
    """Start reporting (once per process; later calls reconfigure). False when no DSN is given."""
    global _enabled
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.dedupe import DedupeIntegration

    sentry_sdk.init(
        dsn=dsn,
        release=release or default_release(),
        environment=environment,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[DedupeIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        include_source_context=True,
        max_request_body_size="never",
        max_breadcrumbs=0,
        before_send=_before_send,  # type: ignore[arg-type]
        traces_sample_rate=None,
        send_client_reports=False,
    )
    sentry_sdk.get_global_scope().set_tag("component", component)
    set_error_reporter(report_exception)
    _enabled = True
    return True


def report_exception(exc: BaseException, context: Mapping[str, Any] | MutableMapping[str, Any]) -> None:
    """Send one exception with the tags found in ``context`` (a log event or the job's details)."""
    if not _enabled:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key in _TAGS:
            value = context.get(key)
            if value is not None:
                scope.set_tag(key, str(value))
        sentry_sdk.capture_exception(exc)


def flush_error_tracking(timeout: float = 2.0) -> None:
    if _enabled:
        import sentry_sdk

        sentry_sdk.flush(timeout=timeout)


def shutdown_error_tracking() -> None:
    """Flush and stop (process shut-down; tests that started it)."""
    global _enabled
    if not _enabled:
        return
    import sentry_sdk

    sentry_sdk.get_client().close(timeout=2.0)
    # An inert client from now on. Not ``sentry_sdk.init(dsn=None)``: that would set up the SDK's default and
    # auto-enabled integrations, which patch frameworks (Litestar's error handling among them) for good.
    sentry_sdk.get_global_scope().set_client(None)
    set_error_reporter(None)
    _enabled = False
