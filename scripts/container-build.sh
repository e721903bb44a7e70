#!/usr/bin/env bash
# Build the defector-watch image with podman on a machine with no Docker engine and no
# reachable container registry (the recipe of ../shared/notes/containers.md), idempotently:
#
#   1. the tools (podman, runc, debootstrap) must be there; --install apt-gets them (as root);
#   2. a local base image, Debian bookworm + python3 made with debootstrap, is built once and
#      kept (podman's image store is the cache; --rebuild-base makes it again);
#   3. the project's Dockerfile is built on it, with the host's CA bundle mounted so pip can
#      get through a TLS-inspecting proxy (podman's layer cache makes a rebuild quick).
#
# Usage: scripts/container-build.sh [--install] [--base-only] [--rebuild-base]
# Environment:
#   DWATCH_IMAGE        tag to build (default: localhost/defector-watch:latest)
#   DWATCH_BASE_IMAGE   base image (default: localhost/debian-python:bookworm, made here);
#                       any other name (e.g. docker.io/library/python:3.12-slim) is used as
#                       it is and pulled by podman if needed
#   DEBIAN_MIRROR       mirror for debootstrap (default: debootstrap's own, deb.debian.org)
#   DWATCH_CA_BUNDLE    CA bundle mounted into the build (default: the host's, if present)
# Run the image with scripts/podman.sh run ... (same runtime options); see README "Operators' guide".
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
podman_cmd=("$repo/scripts/podman.sh")
image="${DWATCH_IMAGE:-localhost/defector-watch:latest}"
base="${DWATCH_BASE_IMAGE:-localhost/debian-python:bookworm}"
ca_bundle="${DWATCH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
install=0 base_only=0 rebuild_base=0

for arg in "$@"; do
    case "$arg" in
        --install) install=1 ;;
        --base-only) base_only=1 ;;
        --rebuild-base) rebuild_base=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "container-build.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'container-build.sh: %s\n' "$*" >&2; exit 1; }

need=(podman runc)
[[ "$base" == localhost/debian-python:* ]] && need+=(debootstrap)
missing=()
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    ((install)) || die "missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) or rerun with --install"
    ((EUID == 0)) || die "--install needs root (apt-get)"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# One build of the base at a time (two test runs or two shells may start together).
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/defector-watch"
mkdir -p "$cache_dir"
exec 9>"$cache_dir/container-build.lock"
flock 9

if [[ "$base" == localhost/debian-python:* ]]; then
    if ((rebuild_base)) || ! "${podman_cmd[@]}" image exists "$base"; then
        ((EUID == 0)) || die "debootstrap needs root to make the base image $base"
        suite="${base##*:}"
        rootfs="$(mktemp -d "${TMPDIR:-/tmp}/dwatch-rootfs.XXXXXX")"
        trap 'rm -rf "$rootfs"' EXIT
        say "making base image $base with debootstrap ($suite; a few minutes, done once)"
        start=$SECONDS
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$suite" "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$cache_dir/debootstrap.log" 2>&1 \
            || die "debootstrap failed; see $cache_dir/debootstrap.log"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | "${podman_cmd[@]}" import --quiet \
            --change 'CMD ["/bin/bash"]' --message "debootstrap $suite minbase + python3" - "$base" >/dev/null
        rm -rf "$rootfs"
        trap - EXIT
        say "base image $base ready in $((SECONDS - start)) s"
    else
        say "base image $base already there (--rebuild-base to make it again)"
    fi
fi
((base_only)) && exit 0

build_args=(build --format docker --isolation=chroot --build-arg "BASE_IMAGE=$base" -t "$image" -f "$repo/Dockerfile")
if [ -f "$ca_bundle" ]; then
    build_args+=(-v "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro")
fi
say "building $image on $base"
start=$SECONDS
"${podman_cmd[@]}" "${build_args[@]}" "$repo"
say "image $image built in $((SECONDS - start)) s"
