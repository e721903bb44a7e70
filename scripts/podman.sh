#!/usr/bin/env bash
# podman with the options that let it run inside a restricted sandbox (no systemd, no
# permission to raise ulimits, cgroups in hybrid mode): the runc runtime, the cgroupfs
# manager, and a containers.conf without default ulimits. Everything after the script name
# goes to podman, e.g.
#
#   scripts/podman.sh images
#   scripts/podman.sh run --rm --network=host localhost/defector-watch:latest dwatch crawl
#
# Environment:
#   DWATCH_PODMAN_RUNTIME   OCI runtime (default: runc; crun refuses in the sandbox)
#   DWATCH_CGROUP_MANAGER   cgroup manager (default: cgroupfs)
#   DWATCH_CONTAINERS_CONF  containers.conf to use (default: written once to
#                           ${XDG_CACHE_HOME:-~/.cache}/defector-watch/containers.conf)
# On a machine where plain podman works, plain podman works with the same arguments.
set -euo pipefail

if ! command -v podman >/dev/null 2>&1; then
    echo "podman.sh: podman is not installed (apt-get install podman runc, or scripts/container-build.sh --install)" >&2
    exit 127
fi

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/defector-watch"
conf="${DWATCH_CONTAINERS_CONF:-$cache_dir/containers.conf}"
if [ ! -f "$conf" ]; then
    mkdir -p "$(dirname "$conf")"
    tmp="$(mktemp "$conf.XXXXXX")"
    printf '[containers]\ndefault_ulimits = []\n' > "$tmp"
    mv -f "$tmp" "$conf"
fi

export CONTAINERS_CONF="$conf"
exec podman --runtime "${DWATCH_PODMAN_RUNTIME:-runc}" \
    --cgroup-manager="${DWATCH_CGROUP_MANAGER:-cgroupfs}" "$@"
