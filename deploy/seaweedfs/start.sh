#!/bin/sh
# SeaweedFS for deploy/docker-compose.yml: writes the S3 identities from the environment,
# then runs `weed` with the arguments given (the compose `command`).
#   S3_ADMIN_ACCESS_KEY / S3_ADMIN_SECRET_KEY   administrator: every action, every bucket
#   S3_ACCESS_KEY / S3_SECRET_KEY               the API: its bucket S3_BUCKET only
# The file is written afresh at every start (mode 0600, outside the data volume), so
# rotating a key is: change deploy/.env, `docker compose up -d seaweedfs`.
set -eu
: "${S3_ADMIN_ACCESS_KEY:?}" "${S3_ADMIN_SECRET_KEY:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"
: "${S3_BUCKET:?}"
for value in "$S3_ADMIN_ACCESS_KEY" "$S3_ADMIN_SECRET_KEY" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_BUCKET"; do
    case $value in
        *'"'* | *'\'*)
            echo "start.sh: S3 keys and the bucket name may not contain \" or \\" >&2
            exit 64
            ;;
    esac
done
config=${SEAWEEDFS_S3_CONFIG:-/tmp/seaweedfs-s3.json}
umask 077
cat >"$config" <<JSON
{
  "identities": [
    {
      "name": "admin",
      "credentials": [{"accessKey": "$S3_ADMIN_ACCESS_KEY", "secretKey": "$S3_ADMIN_SECRET_KEY"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    },
    {
      "name": "templator",
      "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
      "actions": [
        "Admin:$S3_BUCKET", "Read:$S3_BUCKET", "List:$S3_BUCKET",
        "Tagging:$S3_BUCKET", "Write:$S3_BUCKET"
      ]
    }
  ]
}
JSON
exec "${WEED:-weed}" "$@" -s3.config="$config"
