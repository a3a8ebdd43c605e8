#!/usr/bin/env bash
# Fetch fail2ban 0.11.2 (the release EPEL 7 ships) as Debian 11's arch-independent .deb, verify it
# against a pinned sha256 (taken from bullseye's signed Packages index), extract it with dpkg-deb -x
# into .cache/fail2ban-0.11/<version>/root and print that root. A second run only checks and prints.
#
# The tests run it as `<root>/usr/bin/fail2ban-client` with PYTHONPATH=<root>/usr/lib/python3/dist-packages
# under the machine's python3 (3.11 still has asyncore/asynchat, which 0.11 needs); nothing is patched.
# Override the download location with FAIL2BAN_011_URL (a mirror of the same file; the hash still holds).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.11.2-2
DEB=fail2ban_${VERSION}_all.deb
SHA256=a25522032699515f59d4f70cd3dc93cdb2ac36f1c40b449e6773e2111fe38383
URLS=(
  "${FAIL2BAN_011_URL:-}"
  "http://deb.debian.org/debian/pool/main/f/fail2ban/$DEB"
  "http://archive.debian.org/debian/pool/main/f/fail2ban/$DEB"
)
dir=$PWD/.cache/fail2ban-0.11/$VERSION
root=$dir/root
log() { printf '[fetch-fail2ban] %s\n' "$*" >&2; }

if [ -f "$root/.complete" ] && [ "$(cat "$root/.complete")" = "$SHA256" ]; then
  printf '%s\n' "$root"
  exit 0
fi

mkdir -p "$dir"
if ! { [ -f "$dir/$DEB" ] && echo "$SHA256  $dir/$DEB" | sha256sum -c --status -; }; then
  rm -f "$dir/$DEB.part"
  for url in "${URLS[@]}"; do
    [ -n "$url" ] || continue
    log "downloading $url"
    if curl -fsSL --connect-timeout 10 --max-time 120 -o "$dir/$DEB.part" "$url"; then
      if echo "$SHA256  $dir/$DEB.part" | sha256sum -c --status -; then
        mv "$dir/$DEB.part" "$dir/$DEB"
        break
      fi
      log "sha256 mismatch for $url (want $SHA256), discarded"
    fi
    rm -f "$dir/$DEB.part"
  done
  if [ ! -f "$dir/$DEB" ]; then
    log "could not fetch $DEB with sha256 $SHA256"
    exit 1
  fi
fi

rm -rf "$root" "$root.tmp"
dpkg-deb -x "$dir/$DEB" "$root.tmp"
test -x "$root.tmp/usr/bin/fail2ban-client"
test -f "$root.tmp/usr/lib/python3/dist-packages/fail2ban/version.py"
mv "$root.tmp" "$root"
echo "$SHA256" >"$root/.complete"
log "fail2ban $VERSION extracted"
printf '%s\n' "$root"
