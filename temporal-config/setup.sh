#!/bin/sh
# Idempotent setup of a Temporal server for opsflow: waits for the frontend, creates the namespace if it is
# missing, and registers every opsflow search attribute that is not registered yet. Safe to run on every
# start (docker-compose's temporal-setup job, `npm run cluster`).
#
# Environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE (default default),
# TEMPORAL_RETENTION (default 7d), TEMPORAL_CLI (default `temporal` on PATH).
# The attribute list must match lib/search-attributes.ts (a test checks it).
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_RETENTION:-7d}"
CLI="${TEMPORAL_CLI:-temporal}"
t() { "$CLI" --address "$ADDRESS" "$@"; }

tries=0
until t operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 90 ]; then echo "setup: Temporal at $ADDRESS did not become healthy" >&2; exit 1; fi
  sleep 2
done

if t operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "setup: namespace $NAMESPACE exists"
else
  t operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
  echo "setup: namespace $NAMESPACE created"
fi

# A new namespace takes a moment to be visible to every frontend.
tries=0
until existing=$(t operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null); do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then echo "setup: cannot list search attributes of $NAMESPACE" >&2; exit 1; fi
  sleep 2
done

for attr in \
  OpsKind=Keyword \
  OpsStatus=Keyword \
  TenantId=Keyword \
  WebhookEvent=Keyword \
  WebhookEndpointId=Keyword \
  WebhookHost=Keyword \
  SubscriptionExpiresAt=Datetime \
  BackupDatabase=Keyword \
  DeployTarget=Keyword \
  DeployVersion=Keyword; do
  name="${attr%%=*}"
  type="${attr#*=}"
  if printf '%s\n' "$existing" | grep -Eq "(^|[[:space:]])$name([[:space:]]|$)"; then
    echo "setup: search attribute $name exists"
  else
    t operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"
    echo "setup: search attribute $name ($type) registered"
  fi
done
