"""Bounded areas of the product."""
