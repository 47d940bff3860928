#!/bin/sh
# Least-privilege roles, run once by the postgres image (as the superuser) when the data
# volume is first initialised (docker-entrypoint-initdb.d):
#   DB_MIGRATION_USER  owns the schema and every table: the `migrate` service runs
#                      Alembic as it (and restores run as it);
#   DB_USER            the API's role: connects, reads and writes rows, owns nothing,
#                      cannot create or drop anything; pg_monitor for health statistics.
# Extensions that need a superuser are created here, so the migrations' CREATE EXTENSION
# IF NOT EXISTS finds them. Passwords arrive through psql variables, which quote them:
# any character works.
set -eu
: "${DB_USER:?}" "${DB_PASSWORD:?}" "${DB_MIGRATION_USER:?}" "${DB_MIGRATION_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" \
    -v app="$DB_USER" -v app_password="$DB_PASSWORD" \
    -v migrator="$DB_MIGRATION_USER" -v migrator_password="$DB_MIGRATION_PASSWORD" <<'SQL'
CREATE ROLE :"migrator" LOGIN PASSWORD :'migrator_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"migrator", :"app";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO :"migrator";
GRANT USAGE ON SCHEMA public TO :"app";
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
GRANT pg_monitor TO :"app";
GRANT pg_read_all_settings TO :"migrator";
SQL
