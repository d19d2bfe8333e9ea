"""Litestar wiring only: app factory, routes, auth, dependencies, errors, middleware."""
