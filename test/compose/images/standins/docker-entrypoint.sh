#!/bin/sh
# Like minio/minio's entrypoint: `server ...` runs the MinIO stand-in; STANDIN=grafana (set in the grafana image) runs
# the Grafana stand-in; anything else is run as given.
set -e
if [ "${STANDIN:-}" = grafana ]; then exec node /opt/standins/grafana.mjs; fi
if [ "${1:-}" = server ]; then exec minio "$@"; fi
exec "$@"
