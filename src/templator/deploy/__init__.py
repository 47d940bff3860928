"""Deployment tooling: the compose file's secrets (deploy/.env)."""
