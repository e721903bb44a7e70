#!/bin/sh
# Container entrypoint: bring the database schema up to date, then become the command.
#
#   (no arguments)        dwatch scheduler (the image's CMD)
#   dwatch crawl ...      any command
#   crawl --source X      a dwatch subcommand alone is run as `dwatch crawl --source X`
#
# DWATCH_SKIP_MIGRATIONS=1 skips the upgrade. A database server named in DWATCH_DATABASE_URL
# may still be starting (compose starts PostgreSQL alongside): then the upgrade is retried for
# DWATCH_DB_WAIT_SECONDS (default 60). With SQLite (the default, in /data) it is tried once.
set -eu

if [ "$#" -eq 0 ]; then
    set -- dwatch scheduler
elif ! command -v "$1" >/dev/null 2>&1; then
    set -- dwatch "$@"
fi

if [ "${DWATCH_SKIP_MIGRATIONS:-0}" != "1" ]; then
    case "${DWATCH_DATABASE_URL:-sqlite}" in
        sqlite*) wait_seconds=0 ;;
        *) wait_seconds="${DWATCH_DB_WAIT_SECONDS:-60}" ;;
    esac
    waited=0
    until dwatch db upgrade; do
        if [ "$waited" -ge "$wait_seconds" ]; then
            echo "entrypoint: 'dwatch db upgrade' kept failing for ${wait_seconds}s; check DWATCH_DATABASE_URL and that the database is up" >&2
            exit 1
        fi
        echo "entrypoint: database not ready, retrying in 5s" >&2
        sleep 5
        waited=$((waited + 5))
    done
fi

exec "$@"
