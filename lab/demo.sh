#!/usr/bin/env bash
# make demo: a lab fleet of three Apache containers, the two field reports' abuse replayed inside them, then
# defended (fail2ban, fleet blocklist) and reported. Runs on a fresh Debian 12 machine as root; a second run
# reuses the image, the containers and the replayed logs (WEBSHIELD_LAB_REPLAY=1 replays again).
# Env: WEBSHIELD_IMAGE       base image (default: built by scripts/build-image.sh)
#      WEBSHIELD_LAB_OUT     where the report goes (default: .cache/lab/report)
#      WEBSHIELD_LAB_REPLAY  1: replay the abuse again even if it was replayed before
#      WEBSHIELD_VENV        virtualenv holding ansible-playbook (default: .venv, made by scripts/setup.sh)
#      WEBSHIELD_LAB_SKIP_SETUP=1  do not run scripts/setup.sh (tools already there)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/.ci/containers.conf}"
export ANSIBLE_CONFIG="$here/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
HOSTS=(wsf-lab-1 wsf-lab-2 wsf-lab-3)
out="${WEBSHIELD_LAB_OUT:-$here/.cache/lab/report}"
steps=9
n=0
step() { n=$((n + 1)); printf '\n\033[1m[demo %d/%d] %s\033[0m\n' "$n" "$steps" "$*"; }
info() { printf '  %s\n' "$*"; }
die() { printf '\n[demo] FAILED: %s\n' "$*" >&2; exit 1; }
logdir="$here/.cache/lab/logs"
mkdir -p "$logdir"
run_playbook() { # name playbook-args...: live task names, full output in .cache/lab/logs/NAME.log
  local name=$1 log="$logdir/$1.log" rc
  shift
  set +e
  "$PLAYBOOK" "$@" 2>&1 | tee "$log" | grep --line-buffered -E '^(PLAY|TASK) \[' | sed -u -e 's/ \*\**$//' -e 's/^/    /'
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
    die "$name failed (exit $rc); full output: $log"
  fi
  sed -n '/PLAY RECAP/,$p' "$log" | sed -e '/^$/d' -e 's/^/  /'
}

step "Tools: Debian packages, Python virtualenv, collections (scripts/setup.sh)"
if [ "${WEBSHIELD_LAB_SKIP_SETUP:-0}" = 1 ]; then
  info "skipped (WEBSHIELD_LAB_SKIP_SETUP=1)"
elif [ -f scripts/setup.sh ]; then
  bash scripts/setup.sh
fi
venv="${WEBSHIELD_VENV:-$here/.venv}"
PLAYBOOK="$venv/bin/ansible-playbook"
[ -x "$PLAYBOOK" ] || PLAYBOOK=$(command -v ansible-playbook) || die "ansible-playbook not found (run scripts/setup.sh)"
info "ansible-playbook: $PLAYBOOK"
command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc)"

step "Base image"
image="${WEBSHIELD_IMAGE:-}"
if [ -z "$image" ]; then
  image=$(bash scripts/build-image.sh | tail -n 1)
fi
podman image exists "$image" || die "image $image does not exist"
info "base image: $image"

step "Lab image: Apache with CGI, the lab site, fail2ban"
base_id=$(podman image inspect --format '{{.Id}}' "$image" | cut -c1-12)
key=$( { echo "$base_id"; cat lab/provision.sh lab/replay.py; find lab/site -type f | sort | xargs cat; } | sha256sum | cut -c1-12)
lab_image="localhost/webshield-lab:$key"
if podman image exists "$lab_image"; then
  info "reusing $lab_image"
else
  info "building $lab_image (apt-get install apache2 fail2ban inside a container; a minute or two)"
  podman rm -f -t 0 wsf-lab-build >/dev/null 2>&1 || true
  trap 'podman rm -f -t 0 wsf-lab-build >/dev/null 2>&1 || true' EXIT
  podman run -d --name wsf-lab-build "$image" /bin/sleep infinity >/dev/null
  podman cp lab/site wsf-lab-build:/tmp/site
  podman cp lab/replay.py wsf-lab-build:/tmp/replay.py
  podman cp lab/provision.sh wsf-lab-build:/tmp/provision.sh
  podman exec wsf-lab-build bash /tmp/provision.sh || die "provisioning the lab image failed (is the Debian mirror reachable?)"
  podman commit -q wsf-lab-build "$lab_image" >/dev/null
  podman rm -f -t 0 wsf-lab-build >/dev/null
  trap - EXIT
  info "built $lab_image"
fi

step "Lab fleet: ${HOSTS[*]}"
for h in "${HOSTS[@]}"; do
  current=$(podman inspect --format '{{.ImageName}} {{.State.Running}}' "$h" 2>/dev/null || true)
  if [ "$current" = "$lab_image true" ]; then
    info "$h: running (reused)"
  else
    [ -n "$current" ] && { info "$h: replacing (image changed or stopped)"; podman rm -f -t 0 "$h" >/dev/null; }
    podman run -d --name "$h" --hostname "$h" --cap-add NET_ADMIN --cap-add NET_RAW \
      --label org.fleetguard.webshield.lab=1 "$lab_image" /bin/sleep infinity >/dev/null
    info "$h: started"
  fi
  podman exec "$h" sh -c 'pgrep -x apache2 >/dev/null || apache2ctl start'
done

step "Harden: Apache logging and fail2ban (playbooks/harden.yml)"
[ -f playbooks/harden.yml ] || die "playbooks/harden.yml is missing"
run_playbook harden -i lab/inventory.yml playbooks/harden.yml

step "Replay the field reports' abuse inside each container"
for i in "${!HOSTS[@]}"; do
  h=${HOSTS[$i]}
  if [ "${WEBSHIELD_LAB_REPLAY:-0}" != 1 ] && podman exec "$h" test -f /var/lib/webshield-lab/replayed; then
    info "$h: replayed before (WEBSHIELD_LAB_REPLAY=1 replays again)"
    continue
  fi
  info "$h:"
  podman exec "$h" webshield-lab-replay "$i" "${#HOSTS[@]}"
  podman exec "$h" sh -c 'mkdir -p /var/lib/webshield-lab && date -Is > /var/lib/webshield-lab/replayed'
done
info "waiting for fail2ban to read the new lines"
sleep 5
for h in "${HOSTS[@]}"; do
  banned=$(podman exec "$h" sh -c "fail2ban-client banned 2>/dev/null | grep -o \"'[0-9a-f.:]*'\" | sort -u | wc -l" || echo "?")
  info "$h: fail2ban holds bans on $banned addresses"
done

step "Plan and push the fleet blocklist (playbooks/blocklist_push.yml)"
[ -f playbooks/blocklist_push.yml ] || die "playbooks/blocklist_push.yml is missing"
run_playbook blocklist_push -i lab/inventory.yml playbooks/blocklist_push.yml

step "Report (playbooks/report.yml)"
run_playbook report -i lab/inventory.yml playbooks/report.yml -e "report_dir=$out"

step "Check: a blocked network is dropped, a benign visitor is served"
probe() { # host source
  podman exec "$1" python3 -c "
import http.client, sys
try:
    c = http.client.HTTPConnection('127.0.0.1', 80, timeout=2, source_address=('$2', 0)); c.request('GET', '/'); print(c.getresponse().status)
except OSError as e:
    print('no answer (' + type(e).__name__ + ')')"
}
info "wsf-lab-1 from 127.66.1.200 (inside a planned /24, never seen before): $(probe wsf-lab-1 127.66.1.200)"
info "wsf-lab-1 from 127.10.0.200 (benign network):                         $(probe wsf-lab-1 127.10.0.200)"

plan="$here/.cache/lab/blocklist/plan.json"
printf '\n\033[1mSummary (the first field report'"'"'s figures, for the lab fleet)\033[0m\n'
python3 - "$plan" <<'PY'
import json, sys
try:
    plan = json.load(open(sys.argv[1]))
except OSError as exc:
    print("  no plan at %s (%s)" % (sys.argv[1], exc.strerror)); sys.exit(0)
s = plan.get("summary", {})
rows = [
    ("total offending hosts", s.get("offending_hosts", s.get("total_offending_hosts"))),
    ("hosts covered by the blocklist", s.get("hosts_covered")),
    ("drop rate", s.get("drop_rate")),
    ("networks blocked", s.get("networks")),
    ("offending hosts inside them", s.get("hosts_in_networks", s.get("network_hosts"))),
]
for label, value in rows:
    if isinstance(value, float):
        value = "%.3f" % value
    print("  %-32s %s" % (label, "-" if value is None else value))
bl = plan.get("blocklist", {})
print("  %-32s %s" % ("entries (IPv4)", ", ".join(bl.get("ipv4", [])) or "-"))
PY
printf '  %-32s %s\n' "HTML report" "$out/webshield-report.html"
printf '  %-32s %s\n' "JSON and CSV beside it" "$out/"
printf '\nOpen the report in a browser; make demo-clean removes the lab.\n'
