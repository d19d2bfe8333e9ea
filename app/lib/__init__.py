"""Helpers that import neither Litestar nor arq."""
