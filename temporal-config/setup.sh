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

# The frontend validates workflow starts against its cached copy of the namespace (refreshed every few
# seconds): wait until a query naming every attribute is accepted, so that the first workflow started after
# this script (an API request, a worker's schedules) is not refused with "no mapping defined".
tries=0
until t workflow count --namespace "$NAMESPACE" --query 'OpsKind = "setup" AND OpsStatus = "setup" AND TenantId = "setup" AND WebhookEvent = "setup" AND WebhookEndpointId = "setup" AND WebhookHost = "setup" AND SubscriptionExpiresAt > "2000-01-01T00:00:00Z" AND BackupDatabase = "setup" AND DeployTarget = "setup" AND DeployVersion = "setup"' >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then echo "setup: the search attributes of $NAMESPACE are not usable yet" >&2; exit 1; fi
  sleep 1
done
echo "setup: search attributes usable"
