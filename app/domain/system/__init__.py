"""Health, metrics and other operational endpoints."""
