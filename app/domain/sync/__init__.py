"""Syncing a connection: fetch, normalise, write a full snapshot with history; scheduling and triggers."""
