#!/usr/bin/env bash
# PostgreSQL and Redis on 127.0.0.1, for the tests and for a small scale-out set-up (make services).
#
#   sudo scripts/services.sh                  # install when missing, start, create role and database
#   eval "$(sudo scripts/services.sh)"        # ... and export the two URLs in this shell
#
# Idempotent: run it as often as you like (after a reboot, in CI). As root, or through sudo.
# Works without systemd (containers, CI): PostgreSQL is started with pg_ctlcluster, Redis as a
# daemonized redis-server. What it does, each step only when needed:
#   1. apt-get install postgresql redis-server (Debian's packages);
#   2. start a PostgreSQL cluster (Debian's "main" one; created when there is none) listening on
#      127.0.0.1, whose pg_hba.conf already asks TCP clients for a password;
#   3. create the role dwatch (password dwatch, LOGIN CREATEDB: the tests make databases of their
#      own) and the database dwatch_test owned by it;
#   4. start redis-server bound to 127.0.0.1:6379 with no persistence (nothing written to disk)
#      when nothing answers PING there;
#   5. wait until both answer, then print on stdout the lines to export (progress goes to stderr):
#        export DWATCH_TEST_POSTGRES_URL=postgresql+psycopg://dwatch:dwatch@127.0.0.1:5432/dwatch_test
#        export DWATCH_TEST_REDIS_URL=redis://127.0.0.1:6379/15
# These are test credentials for a server reachable from this machine only; for production use
# compose.scale.yaml or a managed PostgreSQL with a real password.
#
# Settings (environment): DWATCH_PG_CLUSTER (VERSION/NAME, default: the first cluster listed by
# pg_lsclusters, or NEWEST/main), DWATCH_PG_USER, DWATCH_PG_PASSWORD, DWATCH_PG_DATABASE,
# DWATCH_REDIS_PORT (6379), DWATCH_REDIS_DB (15), DWATCH_SERVICES_TIMEOUT (seconds, 60).
set -euo pipefail

PG_USER=${DWATCH_PG_USER:-dwatch}
PG_PASSWORD=${DWATCH_PG_PASSWORD:-dwatch}
PG_DATABASE=${DWATCH_PG_DATABASE:-dwatch_test}
REDIS_PORT=${DWATCH_REDIS_PORT:-6379}
REDIS_DB=${DWATCH_REDIS_DB:-15}
TIMEOUT=${DWATCH_SERVICES_TIMEOUT:-60}

say() { echo "== services: $*" >&2; }
die() { echo "services.sh: error: $*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "run me as root (installing and starting servers needs it); sudo is not installed"
    exec sudo --preserve-env=DWATCH_PG_CLUSTER,DWATCH_PG_USER,DWATCH_PG_PASSWORD,DWATCH_PG_DATABASE,DWATCH_REDIS_PORT,DWATCH_REDIS_DB,DWATCH_SERVICES_TIMEOUT -- "$0" "$@"
fi
for name in PG_USER PG_DATABASE; do
    [[ ${!name} =~ ^[a-z_][a-z0-9_]*$ ]] || die "DWATCH_$name=${!name} must be a plain lower-case SQL name (letters, digits, _)"
done
[[ $PG_PASSWORD != *"'"* ]] || die "DWATCH_PG_PASSWORD must not contain a single quote"
[[ $REDIS_PORT =~ ^[0-9]+$ && $REDIS_DB =~ ^[0-9]+$ && $TIMEOUT =~ ^[0-9]+$ ]] \
    || die "DWATCH_REDIS_PORT, DWATCH_REDIS_DB and DWATCH_SERVICES_TIMEOUT must be whole numbers"

# 1. packages ------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in postgresql redis-server; do
    if ! command -v dpkg-query >/dev/null; then
        break
    fi
    installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "${missing[*]} missing and no apt-get here: install PostgreSQL and Redis with your system's package manager"
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" </dev/null >&2
fi
logfile=""
for tool in pg_lsclusters pg_ctlcluster redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "$tool not found: install Debian's postgresql and redis-server packages"
done

# 2. the PostgreSQL cluster ----------------------------------------------------------------
cluster=${DWATCH_PG_CLUSTER:-}
if [[ -z $cluster ]]; then
    cluster=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1 "/" $2}')
fi
if [[ -z $cluster ]]; then
    newest=$(find /usr/lib/postgresql -maxdepth 1 -mindepth 1 -printf '%f\n' | sort -n | tail -n1)
    [[ -n $newest ]] || die "no PostgreSQL server found under /usr/lib/postgresql"
    cluster="$newest/main"
fi
[[ $cluster =~ ^[0-9]+/[A-Za-z0-9_.-]+$ ]] || die "DWATCH_PG_CLUSTER=$cluster must look like 15/main"
version=${cluster%/*}
name=${cluster#*/}
if ! pg_lsclusters --no-header | awk '{print $1 "/" $2}' | grep -qx "$cluster"; then
    say "creating PostgreSQL cluster $cluster"
    pg_createcluster "$version" "$name" >&2
fi
read -r port status < <(pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $3, $4}')
listen=$(runuser -u postgres -- grep -E "^[[:space:]]*listen_addresses" "/etc/postgresql/$version/$name/postgresql.conf" | tail -n1 || true)
if [[ -n $listen && ! $listen =~ (localhost|127\.0\.0\.1|\*) ]]; then
    die "cluster $cluster has $listen in /etc/postgresql/$version/$name/postgresql.conf: add 127.0.0.1 (or localhost) there and restart it"
fi
if [[ $status != online* ]]; then
    say "starting PostgreSQL $cluster on port $port"
    pg_ctlcluster "$version" "$name" start >&2
else
    say "PostgreSQL $cluster is already running on port $port"
fi

# 5a. wait for PostgreSQL (before the role and database: they need it up)
waited=0
until pg_isready -q -h 127.0.0.1 -p "$port"; do
    ((waited < TIMEOUT)) || die "PostgreSQL $cluster does not answer on 127.0.0.1:$port after ${TIMEOUT}s; see /var/log/postgresql/postgresql-$version-$name.log"
    sleep 1
    waited=$((waited + 1))
done

# 3. role and database ---------------------------------------------------------------------
as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres -At "$@"; }
if [[ -z $(as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'") ]]; then
    say "creating role $PG_USER"
    as_postgres -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'" >&2
else
    as_postgres -c "ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'" >&2
fi
if [[ -z $(as_postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'") ]]; then
    say "creating database $PG_DATABASE"
    as_postgres -c "CREATE DATABASE $PG_DATABASE OWNER $PG_USER ENCODING 'UTF8' TEMPLATE template0" >&2
fi
PGPASSWORD=$PG_PASSWORD psql -X -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d "$PG_DATABASE" -At -c "SELECT 1" >/dev/null \
    || die "role $PG_USER cannot log in to $PG_DATABASE on 127.0.0.1:$port with its password: check /etc/postgresql/$version/$name/pg_hba.conf (host ... 127.0.0.1/32 scram-sha-256)"

# 4. Redis ---------------------------------------------------------------------------------
redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
if redis_ping; then
    say "Redis is already answering on 127.0.0.1:$REDIS_PORT"
else
    say "starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence)"
    as_redis=()
    logfile=""
    if id redis >/dev/null 2>&1; then
        as_redis=(runuser -u redis --)
        [[ -d /var/log/redis ]] && logfile=/var/log/redis/redis-server-$REDIS_PORT.log
    fi
    workdir=/var/lib/redis
    [[ -d $workdir ]] || workdir=/tmp
    "${as_redis[@]}" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
        --save "" --appendonly no --dir "$workdir" --logfile "$logfile" \
        --pidfile "/tmp/dwatch-redis-$REDIS_PORT.pid" >&2
fi

# 5b. wait for Redis
waited=0
until redis_ping; do
    ((waited < TIMEOUT)) || die "Redis does not answer PING on 127.0.0.1:$REDIS_PORT after ${TIMEOUT}s${logfile:+; see $logfile}"
    sleep 1
    waited=$((waited + 1))
done

say "PostgreSQL $cluster on 127.0.0.1:$port (database $PG_DATABASE, role $PG_USER) and Redis on 127.0.0.1:$REDIS_PORT are up"
echo "export DWATCH_TEST_POSTGRES_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$PG_DATABASE"
echo "export DWATCH_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/$REDIS_DB"
