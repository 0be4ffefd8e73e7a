# Stand-ins, on the Node base, for the third-party images that are AGPL and so not built here: MinIO's server
# and mc (s3rver behind MinIO's command line and health routes) and Grafana (file provisioning and its HTTP
# API, no UI). One image, tagged once per compose service; compose's entrypoints and commands pick the tool.
FROM node:24.21-bookworm-slim
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wget \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/standins
COPY package.json ./
RUN npm install --omit=dev --no-audit --no-fund
COPY minio.mjs mc.mjs grafana.mjs docker-entrypoint.sh ./
RUN chmod +x *.mjs docker-entrypoint.sh \
  && ln -s /opt/standins/minio.mjs /usr/bin/minio \
  && ln -s /opt/standins/mc.mjs /usr/bin/mc \
  && ln -s /opt/standins/docker-entrypoint.sh /usr/bin/docker-entrypoint.sh \
  && mkdir -p /data /var/lib/grafana
ENTRYPOINT ["/usr/bin/docker-entrypoint.sh"]
