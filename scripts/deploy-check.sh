#!/usr/bin/env bash
# make deploy-check: start deploy/docker-compose.yml for real on this machine, offline, and
# prove it (deploy/check/run.py; docs/operations.md, "Checking the deployment").
# Needs root (apt, dockerd) and the host's apt sources; installs docker.io, docker-compose
# and mmdebstrap if missing. Everything it starts it stops; a dockerd it started keeps its
# layer cache in var/deploy-check/docker for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/bootstrap.sh
exec .venv/bin/python deploy/check/run.py "$@"
