"""Marketplace connections: credentials (encrypted), validation, status."""
