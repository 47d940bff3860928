"""Backup and restore of all three stores: PostgreSQL, Redis and the object store."""
