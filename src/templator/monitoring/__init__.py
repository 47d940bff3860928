"""Health, metrics and maintenance."""
