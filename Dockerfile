# opsflow: one image for the worker and the API (the command picks which).
#   docker build -t opsflow .
#   docker run --env-file .env opsflow node dist/worker/main.js      # worker
#   docker run --env-file .env -p 3000:3000 opsflow                   # API (default)
#   docker run --rm -e OPSFLOW_URL -e OPSFLOW_API_KEY opsflow opsflow deploy web -v 2.0.0   # the CLI
# Node 24 LTS. The API listens on every interface of the container (HOST=0.0.0.0), so it needs METRICS_TOKEN;
# both need OPSFLOW_ENCRYPTION_KEY (and the API OPSFLOW_API_KEYS): see .env.example.

# ---- build: install everything, compile to dist/, pre-bundle the workflows ----
FROM node:24.21-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY worker ./worker
COPY lib ./lib
COPY scripts ./scripts
COPY cli ./cli
COPY db ./db
RUN npm run build && npm prune --omit=dev

# ---- runtime: production dependencies, the build, migrations, pg_dump/pg_restore for backups ----
FROM node:24.21-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini ca-certificates postgresql-client \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production OPSFLOW_DATA_DIR=/data PORT=3000 HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/db ./db
# The CLI: `docker run --rm -e OPSFLOW_URL -e OPSFLOW_API_KEY opsflow opsflow status` (bin.mjs runs dist/cli).
COPY --from=build /app/cli/bin.mjs ./cli/bin.mjs
RUN ln -s /app/cli/bin.mjs /usr/local/bin/opsflow
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/api/server.js"]
