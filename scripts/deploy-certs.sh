#!/usr/bin/env bash
# A private certificate authority and one server certificate per store, for TLS between
# the API and PostgreSQL / Redis in deploy/docker-compose.yml (clients verify them:
# sslmode=verify-full, rediss:// with ssl_cert_reqs=required).
#
#   scripts/deploy-certs.sh [OUT_DIR] [EXTRA_NAME...]   # default OUT_DIR: deploy/certs
#
# Writes OUT_DIR/ca.crt (give it to clients), OUT_DIR/ca.key (keep it offline: it signs),
# and OUT_DIR/<service>.crt + .key for postgres and redis. Each server certificate names
# the compose service (its host name on the back-end network), localhost and 127.0.0.1,
# plus any EXTRA_NAME given (a DNS name, or an IP address). Existing files are kept: the
# CA is made once; delete a server's pair to re-issue it. Certificates last 825 days.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-deploy/certs}
shift || true
DAYS=825
command -v openssl >/dev/null || { echo "openssl not found: install it (Debian: openssl)" >&2; exit 1; }
mkdir -p "$OUT"
chmod 0755 "$OUT"
umask 077

if [ ! -s "$OUT/ca.key" ] || [ ! -s "$OUT/ca.crt" ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$OUT/ca.key" -out "$OUT/ca.crt" -days 3650 \
        -subj "/CN=Templator private CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 0644 "$OUT/ca.crt"
    echo "made the private CA: $OUT/ca.crt"
fi

for service in postgres redis; do
    [ -s "$OUT/$service.key" ] && [ -s "$OUT/$service.crt" ] && continue
    san="DNS:$service,DNS:localhost,IP:127.0.0.1"
    for name in "$@"; do
        if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san="$san,IP:$name"; else san="$san,DNS:$name"; fi
    done
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$OUT/$service.key" -out "$OUT/$service.csr" -subj "/CN=$service" 2>/dev/null
    openssl x509 -req -in "$OUT/$service.csr" -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" \
        -CAcreateserial -out "$OUT/$service.crt" -days "$DAYS" \
        -extfile <(printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
    rm -f "$OUT/$service.csr"
    # Readable by the container's entrypoint, which copies the key to the server's own
    # account with mode 0600 before the server starts (PostgreSQL refuses looser keys).
    chmod 0644 "$OUT/$service.crt"
    chmod 0600 "$OUT/$service.key"
    echo "issued $OUT/$service.crt for $san"
done
