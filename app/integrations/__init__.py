"""Clients for the outside world, decoded straight into msgspec Structs; ``http`` holds what they share."""
