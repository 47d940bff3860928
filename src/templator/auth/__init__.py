"""Authentication: opaque API tokens stored as hashes."""
