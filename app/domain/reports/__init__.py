"""Derived figures: days of cover, the stock report."""
