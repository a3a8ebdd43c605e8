#!/usr/bin/env bash
# Install everything the tests and the demo need, idempotently:
#   - Debian packages (podman, runc, debootstrap, apache2, fail2ban, netfilter tools, chromium, ...)
#   - .venv (pinned requirements-dev.txt) and .venv-core216 (ansible-core 2.16 for sanity)
#   - dependency collections (containers.podman, ansible.posix, community.general) taken from the
#     `ansible` package on PyPI, since Ansible Galaxy is not reachable
#   - fail2ban 0.11.2 unpacked under .cache/fail2ban-0.11 (the filter tests run on it and on Debian's 1.0.2)
#   - .cache/collections/ansible_collections/fleetguard/webshield -> this checkout
# A second run only checks: nothing is downloaded again when the inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(podman runc debootstrap uidmap slirp4netns fuse-overlayfs apache2 fail2ban python3-systemd
  iptables ipset nftables iproute2 curl iprange sqlite3 mawk chromium make git gzip zstd)
PY=${WEBSHIELD_PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1; then PY=$(command -v "$c"); break; fi
  done
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start daemons on install where an init exists; the tests start their own in temp dirs.
else
  log "Debian packages present"
fi

make_venv() { # dir requirements-file
  local dir=$1 req=$2 stamp
  stamp=$( { "$PY" --version; cat "$req"; } | sha256sum | cut -c1-16)
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then
    log "$dir up to date"
    return
  fi
  log "creating $dir from $req with $("$PY" --version)"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$stamp" >"$dir/.stamp"
}
make_venv .venv requirements-dev.txt
make_venv .venv-core216 requirements-core216.txt

# Dependency collections, from the `ansible` community package (it bundles them).
ANSIBLE_PKG=ansible==12.3.0
COLLS=(containers/podman ansible/posix community/general)
cdir=.cache/collections/ansible_collections
if [ ! -f "$cdir/.deps-$ANSIBLE_PKG" ]; then
  log "extracting ${COLLS[*]} from $ANSIBLE_PKG"
  dl=$(mktemp -d)
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$dl" "$ANSIBLE_PKG"
  mkdir -p "$cdir"
  for c in "${COLLS[@]}"; do rm -rf "${cdir:?}/$c"; done
  .venv/bin/python - "$dl" "$cdir" "${COLLS[@]}" <<'PYEOF'
import glob, sys, zipfile
dl, dest, colls = sys.argv[1], sys.argv[2], sys.argv[3:]
wheel = glob.glob(dl + "/ansible-*.whl")[0]
prefixes = tuple("ansible_collections/%s/" % c for c in colls)
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith(prefixes):
            z.extract(n, dest.rsplit("/ansible_collections", 1)[0])
PYEOF
  rm -rf "$dl"
  touch "$cdir/.deps-$ANSIBLE_PKG"
else
  log "dependency collections present"
fi
# fail2ban 0.11.2 (what EPEL 7 ships), from Debian 11's package, for the filter and config tests.
f2b011=$(bash scripts/fetch-fail2ban.sh)
log "fail2ban 0.11.2 for the tests: $f2b011"
mkdir -p "$cdir/fleetguard"
ln -sfn "$root" "$cdir/fleetguard/webshield"
log "done"
