"""Uvicorn entry point: ``uvicorn --factory app.server.asgi:create``; settings come from the environment."""

from __future__ import annotations

from litestar import Litestar

from app.config import load_settings, require_runtime


def create() -> Litestar:
    from app.server.app import create_app

    settings = load_settings()
    require_runtime(settings)
    return create_app(settings, mount_sandbox=settings.sandbox_enabled)
