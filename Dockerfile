# defector-watch: the scheduler (default) or any dwatch command, in a container.
#
#   docker build -t defector-watch .                      # on python:3.12-slim
#   scripts/container-build.sh                            # podman, no registry (local Debian base)
#   docker run -v dwatch-data:/data defector-watch         # migrate, then run the scheduler
#   docker run -v dwatch-data:/data defector-watch dwatch crawl
#
# BASE_IMAGE is any Debian-like image with python3 >= 3.11 and its venv module.
ARG BASE_IMAGE=python:3.12-slim

# The runtime dependencies named in pyproject.toml (plus the PostgreSQL driver) as a
# requirements file, in a stage of its own: the layer that installs them is then rebuilt only
# when this list changes, not whenever pyproject.toml's tool settings do.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /tmp/
RUN python3 -c 'import tomllib; p = tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"]))' > /tmp/requirements.txt

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The non-root user the service runs as; its home is the data volume.
RUN groupadd --system --gid 10001 dwatch \
 && useradd --system --uid 10001 --gid dwatch --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin dwatch \
 && mkdir -p /data \
 && chown dwatch:dwatch /data \
 && python3 -m venv /opt/venv

# Dependencies first, in their own layer. The system CA bundle is handed to pip: behind a
# TLS-inspecting proxy the build mounts the host's bundle there (scripts/container-build.sh).
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN set -eu; \
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi; \
    pip install -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt

# The project itself, installed (not editable) into the venv; the sources are not kept.
WORKDIR /src
COPY . ./
RUN set -eu; \
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi; \
    pip install --no-deps . \
 && install -m 0755 docker/entrypoint.sh /usr/local/bin/dwatch-entrypoint \
 && cd / && rm -rf /src \
 && dwatch --help >/dev/null

# SQLite store, WARC archive, digests and the scheduler heartbeat live in /data.
ENV DWATCH_DATA_DIR=/data \
    DWATCH_LOG_FORMAT=json
VOLUME /data
WORKDIR /data
USER dwatch:dwatch

HEALTHCHECK --interval=60s --timeout=30s --start-period=60s --retries=3 CMD ["dwatch", "health"]

# Migrations, then the command (exec'd: it gets SIGTERM directly and stops cleanly).
ENTRYPOINT ["dwatch-entrypoint"]
CMD ["dwatch", "scheduler"]
