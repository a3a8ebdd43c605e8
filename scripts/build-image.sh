#!/usr/bin/env bash
# Build the local Debian 12 image used by molecule and the lab, from debootstrap (no registry needed).
# The image is keyed by its inputs (this script and the package list): a second run reuses it.
# Usage: scripts/build-image.sh            -> prints the image reference on its last line
# Env:   WEBSHIELD_IMAGE_NAME (default localhost/webshield-debian12)
#        WEBSHIELD_DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/.ci/containers.conf}"
name="${WEBSHIELD_IMAGE_NAME:-localhost/webshield-debian12}"
mirror="${WEBSHIELD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
# python3 for Ansible; the rest is what a minimal Debian server has and what tests need to act as a client.
packages="python3,python3-apt,iproute2,procps,curl,ca-certificates,iptables,ipset,nftables,sqlite3,gzip,cron,logrotate,locales"

key=$( { cat "$0"; echo "$suite $mirror $packages"; } | sha256sum | cut -c1-12)
ref="$name:$key"

log() { printf '[build-image] %s\n' "$*" >&2; }

if podman image exists "$ref"; then
  log "reusing $ref (inputs unchanged)"
  podman tag "$ref" "$name:latest"
  echo "$ref"
  exit 0
fi

work=$(mktemp -d /var/tmp/webshield-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
log "debootstrap $suite into $work (a few minutes)"
debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  log "debootstrap failed; last lines of its log:"; tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Trim caches, keep apt usable inside the container.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/lib/apt/lists/"*
cat >"$work/rootfs/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SRC
# Containers have no init: let policy-rc.d refuse service starts during apt installs (roles start services themselves).
printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$work/rootfs/usr/sbin/policy-rc.d"
echo 'APT::Install-Recommends "false";' >"$work/rootfs/etc/apt/apt.conf.d/90norecommends"

log "importing as $ref"
tar -C "$work/rootfs" -c . | podman import \
  --change 'CMD ["/bin/sleep", "infinity"]' \
  --change "LABEL org.fleetguard.webshield.key=$key" \
  - "$ref" >/dev/null
podman tag "$ref" "$name:latest"
log "built $ref"
echo "$ref"
