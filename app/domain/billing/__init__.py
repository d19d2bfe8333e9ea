"""Plans, subscriptions and usage."""
