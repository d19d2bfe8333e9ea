"""Alerts, events, webhooks and notification channels (filled in by the alerts work)."""
