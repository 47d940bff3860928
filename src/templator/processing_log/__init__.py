"""Processing logs: what happened during an AI session."""
