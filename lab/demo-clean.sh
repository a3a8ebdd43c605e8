#!/usr/bin/env bash
# make demo-clean: remove the lab containers, the lab image(s) and the lab's plan, state and report.
# The base image (scripts/build-image.sh) is kept: molecule uses it too.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/.ci/containers.conf}"
for h in wsf-lab-1 wsf-lab-2 wsf-lab-3 wsf-lab-build; do
  if podman container exists "$h"; then
    podman rm -f -t 0 "$h" >/dev/null
    echo "[demo-clean] removed container $h"
  fi
done
for img in $(podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/webshield-lab:' || true); do
  podman rmi -f "$img" >/dev/null
  echo "[demo-clean] removed image $img"
done
rm -rf "$here/.cache/lab"
echo "[demo-clean] removed .cache/lab (plan, state, report)"
