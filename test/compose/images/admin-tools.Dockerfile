# Stand-in for temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0: temporal-sql-tool (go.temporal.io/server
# v1.29.1, cmd/tools/sql) with that version's schema files in /etc/temporal/schema, and the temporal CLI 1.5.1
# (no tctl: opsflow's jobs do not use it).
FROM opsflow-ci/debian:bookworm
COPY temporal-sql-tool temporal /usr/local/bin/
COPY schema /etc/temporal/schema
CMD ["/bin/sh"]
