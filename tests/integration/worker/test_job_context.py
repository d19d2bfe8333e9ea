"""The worker's start-up fills every key ``JobContext`` promises, with the promised types; shut-down closes it."""

from __future__ import annotations

import types
import typing

from app.domain.jobcontext import JobContext
from app.lib.redis import arq_client
from app.worker.settings import build_worker_settings


def _runtime_types(hint: object) -> tuple[type, ...]:
    """The classes an annotation admits at run time (Protocols and generics checked by their origin)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else ()
    if args:
        return tuple(t for a in args for t in _runtime_types(a))
    origin = typing.get_origin(hint) or hint
    if hint is type(None):
        return (type(None),)
    if isinstance(origin, type) and not getattr(origin, "_is_protocol", False):
        return (origin,)
    return ()


async def test_worker_startup_provides_the_whole_job_context(settings):
    kwargs = build_worker_settings(settings, serve_metrics=False)
    redis = arq_client(settings.redis_url, settings.queue_name)
    ctx: dict[str, object] = {"redis": redis}
    await kwargs["on_startup"](ctx)
    try:
        assert JobContext.__required_keys__ <= ctx.keys(), JobContext.__required_keys__ - ctx.keys()
        hints = typing.get_type_hints(JobContext)
        checked = 0
        for key in JobContext.__required_keys__:
            allowed = _runtime_types(hints[key])
            if allowed:
                assert isinstance(ctx[key], allowed), (key, type(ctx[key]), allowed)
                checked += 1
        assert checked >= len(JobContext.__required_keys__) - 1  # all but the resolver (a Protocol)
        # A fake resolver put in the context before start-up (as the tests' DNS) is the one jobs get.
        fake = object()
        again: dict[str, object] = {"redis": redis, "resolver": fake}
        await kwargs["on_startup"](again)
        assert again["resolver"] is fake
        await kwargs["on_shutdown"](again)
    finally:
        await kwargs["on_shutdown"](ctx)
        await redis.aclose()
    assert ctx["http"].is_closed and ctx["telegram_http"].is_closed  # type: ignore[attr-defined]
