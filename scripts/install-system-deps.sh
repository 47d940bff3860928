#!/usr/bin/env bash
# Install the server binaries the embedded local stack and the tests use, from Debian's
# packages, only when they are missing: PostgreSQL 15+ (with contrib: pg_stat_statements,
# uuid-ossp, pg_trgm, btree_gin) and Redis 7. Starts and enables no system service.
# A no-op (and fast) when everything is there; SeaweedFS comes from PyPI with `uv sync`.
set -euo pipefail

have_postgres() {
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$bin" ] || continue
        major=$(basename "$(dirname "$(dirname "$bin")")")
        if [ "$major" -ge 15 ] 2>/dev/null \
            && [ -f "/usr/share/postgresql/$major/extension/pg_stat_statements.control" ]; then
            return 0
        fi
    done
    return 1
}

missing=()
have_postgres || missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${missing[*]}; install PostgreSQL 15+ and Redis 7 with your package manager," >&2
    echo "or set DATABASE_URL and REDIS_URL to use existing servers." >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "installing ${missing[*]} (Debian packages)"
# Keep the packages from starting system services (a cluster on 5432, redis on 6379):
# policy-rc.d exit 101 tells invoke-rc.d not to start anything during the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
