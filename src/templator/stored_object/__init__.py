"""Stored objects: the `stored_objects` rows of design uploads and module exports, and gc."""
