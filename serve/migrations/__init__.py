"""Alembic migrations of the server schema (run by serve.db.migrate)."""
