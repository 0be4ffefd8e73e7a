# temporalio/server:1.29.1, built here: temporal-server from go.temporal.io/server v1.29.1 (cmd/server) on
# Debian bookworm, with nc for compose's health check. compose gives the entrypoint and config itself.
FROM opsflow-ci/debian:bookworm
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends netcat-openbsd \
  && rm -rf /var/lib/apt/lists/* \
  && echo 'temporal:x:1000:1000::/etc/temporal:/bin/sh' >> /etc/passwd && echo 'temporal:x:1000:' >> /etc/group \
  && mkdir -p /etc/temporal && chown 1000:1000 /etc/temporal
COPY temporal-server /usr/local/bin/temporal-server
USER temporal
WORKDIR /etc/temporal
EXPOSE 7233
ENTRYPOINT ["temporal-server"]
