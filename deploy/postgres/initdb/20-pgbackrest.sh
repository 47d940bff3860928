#!/bin/sh
# The pgBackRest stanza, created once by the postgres image when the data volume is first
# initialised (docker-entrypoint-initdb.d, as the postgres account, the server running on
# its socket): from then on every WAL segment is archived (archive_command in the
# compose file). Its settings come from the PGBACKREST_* variables of the service; the
# repository (the `pgbackrest` volume) is encrypted with PGBACKREST_REPO1_CIPHER_PASS.
# A repository volume made empty later needs the same command by hand:
#   docker compose exec -u postgres postgres pgbackrest stanza-create
set -eu
: "${PGBACKREST_STANZA:?}" "${PGBACKREST_REPO1_CIPHER_PASS:?}"
pgbackrest stanza-create
pgbackrest check
