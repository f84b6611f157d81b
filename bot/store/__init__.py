"""Persistence: SQLAlchemy 2.x models, sessions, queries and Alembic migrations."""
