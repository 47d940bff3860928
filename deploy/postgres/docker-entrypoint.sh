#!/bin/sh
# Entrypoint of our PostgreSQL image (deploy/postgres/Dockerfile). Same contract as the
# official image's, written for this one:
#   as root      the data, socket and pgBackRest directories are given to `postgres`,
#                then this script runs again as that account;
#   first start  (no PG_VERSION in PGDATA) initdb with the superuser password from a
#                file (POSTGRES_PASSWORD_FILE, or POSTGRES_PASSWORD written to a private
#                temporary file, never a command line), POSTGRES_INITDB_ARGS, and
#                listen_addresses='*' in postgresql.conf; a server on
#                the socket only, with the command's own settings (archiving included,
#                so the init scripts can make and check the pgBackRest stanza); the
#                database POSTGRES_DB; every /docker-entrypoint-initdb.d/*.sh (sh) and
#                *.sql (psql) in name order; that server stopped;
#   then         exec the command (`postgres -c …`).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    # A volume made by another image may hold another uid: the server needs to own it.
    find "$PGDATA" /var/lib/pgbackrest /var/spool/pgbackrest /var/log/pgbackrest \
        /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || true
    chmod 0700 "$PGDATA"
    chmod 3775 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    export POSTGRES_USER="${POSTGRES_USER:-postgres}" POSTGRES_DB="${POSTGRES_DB:-postgres}"
    pwfile=$(mktemp)
    trap 'rm -f "$pwfile"' EXIT
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        cat "$POSTGRES_PASSWORD_FILE" >"$pwfile"
    elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    else
        echo "docker-entrypoint.sh: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
        exit 64
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of options
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=peer \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    # Every interface of the container (its network is the boundary; pg_hba.conf decides).
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

    shift
    postgres "$@" -c listen_addresses='' &
    server=$!
    tries=0
    until pg_isready --quiet --username="$POSTGRES_USER" --dbname=postgres; do
        tries=$((tries + 1))
        if [ "$tries" -gt 120 ] || ! kill -0 "$server" 2>/dev/null; then
            echo "docker-entrypoint.sh: the initialisation server did not start" >&2
            exit 1
        fi
        sleep 0.5
    done
    if [ "$POSTGRES_DB" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username="$POSTGRES_USER" --dbname=postgres \
            -v db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case $script in
            *.sh) echo "docker-entrypoint.sh: running $script"; sh "$script" ;;
            *.sql) echo "docker-entrypoint.sh: running $script"
                psql -v ON_ERROR_STOP=1 --no-psqlrc --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" -f "$script" ;;
            *) ;;
        esac
    done
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
    wait "$server" || true
    echo "docker-entrypoint.sh: initialised; starting the server"
    set -- postgres "$@"
fi

exec "$@"
