"""API keys (filled in by the API-platform work)."""
