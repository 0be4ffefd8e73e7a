# axllent/mailpit:v1.27.11, built here from its Go module (github.com/axllent/mailpit v1.27.11): SMTP, the
# JSON API and /mailpit readyz are the real ones; the inbox web page's script bundle (built with npm by the
# upstream Dockerfile) is not, so the page itself is blank.
FROM opsflow-ci/debian:bookworm
COPY mailpit /mailpit
EXPOSE 1025 8025
ENTRYPOINT ["/mailpit"]
