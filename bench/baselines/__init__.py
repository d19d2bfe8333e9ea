"""Frozen copies of code a benchmark compares against in the same run (never imported by the app)."""
