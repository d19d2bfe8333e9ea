"""Database layer: models, engine/session factories, tenant-scoped repositories, the outbox writer."""
