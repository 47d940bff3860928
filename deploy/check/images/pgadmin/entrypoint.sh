#!/bin/sh
# The stand-in pgAdmin's start: PGADMIN_CONFIG_<NAME>=value become `NAME = value` in
# config_distro.py; on first start pgAdmin's own database is made with the login of
# PGADMIN_DEFAULT_EMAIL / _PASSWORD and /pgadmin4/servers.json is loaded for that user.
set -eu
: "${PGADMIN_DEFAULT_EMAIL:?}" "${PGADMIN_DEFAULT_PASSWORD:?}"
{
    echo "DATA_DIR = '/var/lib/pgadmin'"
    echo "LOG_FILE = '/dev/null'"
    echo "CA_FILE = '/etc/ssl/certs/ca-certificates.crt'"
    env | sed -n 's/^PGADMIN_CONFIG_\([A-Z_0-9]*\)=\(.*\)$/\1 = \2/p'
} >/pgadmin4/config_distro.py
if [ ! -f /var/lib/pgadmin/pgadmin4.db ]; then
    PGADMIN_SETUP_EMAIL=$PGADMIN_DEFAULT_EMAIL PGADMIN_SETUP_PASSWORD=$PGADMIN_DEFAULT_PASSWORD \
        /venv/bin/python /pgadmin4/setup.py setup-db
    if [ -f /pgadmin4/servers.json ]; then
        /venv/bin/python /pgadmin4/setup.py load-servers /pgadmin4/servers.json --user "$PGADMIN_DEFAULT_EMAIL"
    fi
fi
unset PGADMIN_DEFAULT_PASSWORD
exec /venv/bin/gunicorn --bind 0.0.0.0:80 --workers 1 --threads 25 --timeout 120 --chdir /pgadmin4 pgAdmin4:app
