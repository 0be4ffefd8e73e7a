# opsflow: one image for the worker, the API and the CLI (the command picks which).
#   docker build -t opsflow .
#   docker run --env-file .env opsflow node dist/worker/main.js      # worker
#   docker run --env-file .env -p 3000:3000 opsflow                   # API (default)
#   docker run --rm -e OPSFLOW_URL -e OPSFLOW_API_KEY opsflow opsflow deploy web -v 2.0.0   # the CLI
# Node 24 LTS, as the non-root `node` user. The API listens on every interface of the container
# (HOST=0.0.0.0), so it needs METRICS_TOKEN; both need OPSFLOW_ENCRYPTION_KEY (and the API OPSFLOW_API_KEYS):
# see .env.example. Few layers on purpose: each one costs a full copy on storage drivers such as vfs.

# ---- build: install everything, compile to dist/, pre-bundle the workflows, keep what runs in /out ----
FROM node:24.21-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev \
  && mkdir -p /out/cli && cp -r package.json node_modules dist db /out/ && cp cli/bin.mjs /out/cli/

# ---- runtime: production dependencies, the build, migrations, pg_dump/pg_restore for backups ----
FROM node:24.21-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini ca-certificates postgresql-client \
  && rm -rf /var/lib/apt/lists/* \
  && mkdir -p /data && chown node:node /data \
  && ln -s /app/cli/bin.mjs /usr/local/bin/opsflow
ENV NODE_ENV=production OPSFLOW_DATA_DIR=/data PORT=3000 HOST=0.0.0.0
WORKDIR /app
# package.json, node_modules (production only), dist/ (with the workflow bundle), db/ (migrations) and the
# CLI's entry (`docker run --rm -e OPSFLOW_URL -e OPSFLOW_API_KEY opsflow opsflow status`).
COPY --from=build /out ./
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/api/server.js"]
