"""Projects: a user's body of work."""
