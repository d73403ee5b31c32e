#!/usr/bin/env bash
# Build the compose stack's images with podman, on a machine that reaches Debian's package
# mirror but no image registry (as root):
#   1. the base images the Dockerfiles' FROM lines name, made locally: `debootstrap
#      --variant=minbase` of sid (debian:sid-slim) and bookworm with Python 3.11
#      (python:3.11-slim-bookworm), from the Debian mirror this machine's apt uses, then
#      `podman import` under those tags. A tag made by this recipe is kept (the cache; an image
#      under the tag made otherwise is replaced); --rebuild-base makes them again.
#   2. `podman-compose build` of the single-node services (asterisk, ivr; the caller service
#      runs the ivr image). Extra arguments go to it, e.g. `--build-arg VOSK_MODEL=...`.
#
#   scripts/container_images.sh                  # base images if missing, then the build
#   scripts/container_images.sh --base-only      # only the base images
#
# podman 4.3 needs `default_ulimits = []` (else runc: "error setting rlimit ... operation not
# permitted"): unless CONTAINERS_CONF is set, a containers.conf saying so is written to
# $IVR_CONTAINERS_DIR (default /var/tmp/ivr-containers) and used. podman-compose: Debian
# bookworm's 1.0.3 cannot run this compose file (no `network_mode: service:`, profiles or
# healthy conditions), so the one pinned below is installed into .venv from PyPI if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PODMAN_COMPOSE_VERSION=1.6.0
RECIPE=2  # bump when base_image changes what it puts in an image
WORK="${IVR_CONTAINERS_DIR:-/var/tmp/ivr-containers}"
base_only=false
rebuild_base=false
build_args=()
for arg in "$@"; do
    case "$arg" in
        --base-only) base_only=true ;;
        --rebuild-base) rebuild_base=true ;;
        *) build_args+=("$arg") ;;
    esac
done

say() { printf 'container_images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and rootful podman)"
for tool in podman debootstrap; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install -y podman debootstrap"
done
mkdir -p "$WORK"
if [ -z "${CONTAINERS_CONF:-}" ]; then
    printf '[containers]\ndefault_ulimits = []\n' > "$WORK/containers.conf"
    export CONTAINERS_CONF="$WORK/containers.conf"
fi

# The Debian archive this machine's apt uses (deb822 .sources or one-line lists); never a
# host name written here.
mirror() {
    local url
    url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk 'tolower($1) == "uris:" { print $2 }' | grep -v -- '-security' | head -n 1)
    if [ -z "$url" ]; then
        url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
              | grep -v -- '-security' | head -n 1)
    fi
    [ -n "$url" ] || die "no Debian mirror in /etc/apt/sources.list*: cannot debootstrap"
    printf '%s' "$url"
}

# base_image TAG SUITE [packages] [after-command]: debootstrap, trim, import as TAG.
base_image() {
    local tag=$1 suite=$2 include=${3:-} after=${4:-}
    # The recipe's hash, as a label: an image under this tag made otherwise is made again.
    local recipe
    recipe=$(printf '%s|' "$RECIPE" "$suite" "$include" "$after" | sha256sum | cut -c1-16)
    if ! $rebuild_base && [ "$(podman image inspect --format \
            '{{index .Labels "org.ivr.base-recipe"}}' "$tag" 2>/dev/null)" = "$recipe" ]; then
        say "$tag: cached (--rebuild-base to make it again)"
        return
    fi
    local root="$WORK/rootfs-$suite" started=$SECONDS
    rm -rf "$root"
    say "$tag: debootstrap --variant=minbase $suite ${include:+(with $include)}"
    debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$root" "$(mirror)" \
        > "$WORK/debootstrap-$suite.log" 2>&1 \
        || die "debootstrap of $suite failed (the mirror moved or is down?): $WORK/debootstrap-$suite.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # sid's Release file can read as "expired" against this machine's clock, and `apt-get
    # update` in a Dockerfile then fails: the signatures are still checked, only the date is not.
    printf 'Acquire::Check-Valid-Until "false";\n' > "$root/etc/apt/apt.conf.d/99ivr-valid-until"
    # The certificate authorities this machine added to its own trust store (e.g. an egress
    # proxy's that re-signs TLS): pip in `podman build` must reach PyPI as the host does.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates > /dev/null
    fi
    if [ -n "$after" ]; then chroot "$root" sh -c "$after"; fi
    tar -C "$root" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' --change "LABEL org.ivr.base-recipe=$recipe" - "$tag" > /dev/null
    rm -rf "$root"
    say "$tag: imported in $((SECONDS - started)) s"
}

# The tags the Dockerfiles' FROM lines use (checked, so a new FROM line is not forgotten).
wanted=$(sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' docker/*.Dockerfile | sort -u)
for tag in $wanted; do
    case "$tag" in
        debian:sid-slim|python:3.11-slim-bookworm) ;;
        *) die "docker/*.Dockerfile uses FROM $tag: teach scripts/container_images.sh to make it" ;;
    esac
done
base_image debian:sid-slim sid ca-certificates
# Debian's Python 3.11 standing in for the python image: `python` and a pip that installs
# into /usr/local like the official image's (so no PEP 668 refusal).
base_image python:3.11-slim-bookworm bookworm ca-certificates,python3,python3-pip,python-is-python3 \
    'rm -f /usr/lib/python3*/EXTERNALLY-MANAGED'
$base_only && exit 0

compose=.venv/bin/podman-compose
if ! "$compose" --version 2>/dev/null | grep -q "podman-compose version $PODMAN_COMPOSE_VERSION"; then
    [ -x .venv/bin/pip ] || die "no .venv: run make venv first"
    say "installing podman-compose $PODMAN_COMPOSE_VERSION into .venv"
    .venv/bin/pip install -q "podman-compose==$PODMAN_COMPOSE_VERSION"
fi
started=$SECONDS
"$compose" build "${build_args[@]}" asterisk ivr
say "podman-compose build: $((SECONDS - started)) s"
