"""Alembic migrations of the scheduler database (shipped as package data)."""
