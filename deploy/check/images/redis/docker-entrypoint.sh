#!/bin/sh
# Runs the command as the `redis` account (as the official image does for redis-server).
set -eu
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
