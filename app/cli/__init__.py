"""Implementations of the CLI subcommands."""
