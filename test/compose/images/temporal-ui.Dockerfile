# temporalio/ui:2.42.1, built here the way its own Dockerfile does on a Debian base: the ui-server binary
# (github.com/temporalio/ui-server/v2 v2.42.1, cmd/server, the UI's assets embedded), its config/docker.yaml
# (read from the environment: TEMPORAL_ADDRESS, TEMPORAL_CORS_ORIGINS, ...) and wget for compose's health check.
FROM opsflow-ci/debian:bookworm
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wget \
  && rm -rf /var/lib/apt/lists/* \
  && echo 'temporal:x:1000:1000::/home/ui-server:/bin/sh' >> /etc/passwd && echo 'temporal:x:1000:' >> /etc/group
WORKDIR /home/ui-server
COPY temporal-ui-server ./ui-server
COPY docker.yaml ./config/docker.yaml
RUN chown -R 1000:1000 /home/ui-server
USER temporal
EXPOSE 8080
ENTRYPOINT ["./ui-server", "--env", "docker", "start"]
