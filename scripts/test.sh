#!/usr/bin/env bash
# The whole test command: lint, format check, strict typing of src/, then the test suite
# against real PostgreSQL, Redis and a SeaweedFS S3 server the suite starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

echo "== ruff check"
.venv/bin/ruff check .
echo "== ruff format --check"
.venv/bin/ruff format --check .
echo "== mypy --strict src/"
.venv/bin/mypy src
echo "== pytest"
# Two workers (pytest-xdist), one per core: the suite is mostly waiting on servers.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-2}" "$@"
