"""Idempotent creates: `Idempotency-Key` (IETF httpapi draft) keys and their first answers."""
