"""AI sessions: the lifecycle of one design-to-module run."""
