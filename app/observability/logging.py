"""structlog configuration: JSON in production, console in development; request/tenant/job context vars;
the access log; errors with a traceback handed to the error tracker when one is configured."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = {"password", "token", "access_token", "refresh_token", "api_key", "secret", "authorization"}
# Bound by the request middleware: the request's live ``scope["state"]``, whose ``tenant_id`` authentication
# fills in later. Every line logged during the request then carries the tenant (and the error tracker too).
REQUEST_STATE = "_request_state"
ErrorReporter = Callable[[BaseException, MutableMapping[str, Any]], None]
_error_reporter: ErrorReporter | None = None
access = structlog.get_logger("stock_tracker.access")


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def _request_fields(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    state = event_dict.pop(REQUEST_STATE, None)
    if state is not None and "tenant_id" not in event_dict:
        tenant = state.get("tenant_id")
        if tenant:
            event_dict["tenant_id"] = tenant
    return event_dict


def _report_errors(_: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An error logged with its exception goes to the error tracker (before the traceback becomes text)."""
    reporter = _error_reporter
    if reporter is None or method not in ("error", "critical", "exception"):
        return event_dict
    exc_info = event_dict.get("exc_info")
    exc: BaseException | None = None
    if isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
    elif exc_info is True or method == "exception":
        exc = sys.exc_info()[1]
    if exc is not None:
        try:
            reporter(exc, event_dict)
        except Exception:  # the tracker must never break logging
            logging.getLogger(__name__).debug("error reporter failed", exc_info=True)
    return event_dict


def set_error_reporter(reporter: ErrorReporter | None) -> None:
    global _error_reporter
    _error_reporter = reporter


def configure_logging(fmt: str = "json", level: str = "INFO", *, cache: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _request_fields,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    structlog.configure(
        # Only our own events are reported to the error tracker: stdlib ones (arq's "job failed" line) would
        # report the same exception twice (the worker's job wrapper reports it).
        processors=[*shared, _report_errors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=cache,
    )
    # Route stdlib logs (uvicorn, arq, alembic) through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our access log (one line per request, `http.request`) replaces uvicorn's.
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


bind = structlog.contextvars.bind_contextvars
clear = structlog.contextvars.clear_contextvars


def current(key: str) -> Any:
    """A value bound to this request's or job's log context (``request_id``, ``tenant_id``, ``job_id``)."""
    return structlog.contextvars.get_contextvars().get(key)
