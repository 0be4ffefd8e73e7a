# prom/prometheus:v3.7.3, built here from its Go module (github.com/prometheus/prometheus v0.307.3,
# cmd/prometheus) without the web UI's assets (the HTTP API, scraping and rules are the real ones); wget for
# compose's health check; runs as nobody like the upstream image.
FROM opsflow-ci/debian:bookworm
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wget \
  && rm -rf /var/lib/apt/lists/* \
  && mkdir -p /prometheus /etc/prometheus && chown 65534:65534 /prometheus
COPY prometheus /bin/prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
