#!/usr/bin/env bash
# The one test entry point (`make test`), fast layers first. Each layer can run alone:
#   scripts/test.sh [setup] [lint] [sanity] [unit] [integration] [molecule] [build]   (default: all)
# Every layer runs even when an earlier one failed; a summary of what ran, passed and took how long ends
# the output, and the exit code is non-zero when any layer failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/.ci/containers.conf}"
export ANSIBLE_COLLECTIONS_PATH="$root/.cache/collections"
export PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1
export MOLECULE_IMAGE="${MOLECULE_IMAGE:-localhost/webshield-debian12:latest}"

summary="$root/.cache/test-summary.tsv"
mkdir -p "$root/.cache"
: >"$summary"
failed=0

stage() { # name command...
  local name=$1 start rc; shift
  printf '\n===== %s =====\n' "$name"
  start=$(date +%s)
  "$@"; rc=$?
  printf '%s\t%s\t%ss\n' "$name" "$([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)")" "$(( $(date +%s) - start ))" >>"$summary"
  [ $rc -eq 0 ] || failed=1
  return 0
}

run_pytest() { # pytest args...; exit code 5 (no tests collected) is a failure of this layer: it must test something
  pytest "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "pytest collected no tests for: $*" >&2; fi
  return $rc
}

layer_setup() { bash scripts/setup.sh && bash scripts/build-image.sh; }

layer_lint() {
  local rc=0
  echo "--- ruff check";    ruff check . || rc=1
  echo "--- ruff format";   ruff format --check . || rc=1
  echo "--- yamllint";      yamllint -s . || rc=1
  echo "--- vermin (target Python 3.6 for modules and module_utils)"
  vermin -t=3.6- --no-tips --violations --eval-annotations --backport argparse --backport typing \
    plugins/modules plugins/module_utils || rc=1
  echo "--- ansible-lint (production profile)"
  ansible-lint --profile production || rc=1
  echo "--- role README variable tables"
  if [ -f scripts/gen_role_docs.py ]; then python scripts/gen_role_docs.py --check || rc=1; fi
  return $rc
}

layer_sanity() {
  local rc=0
  bash scripts/sanity.sh .venv-core216 || rc=1
  bash scripts/sanity.sh .venv || rc=1
  return $rc
}

layer_unit() { run_pytest -q -p no:cacheprovider tests/unit; }

layer_integration() {
  # Real apache2, fail2ban, ipset/iptables/nft (in network namespaces) and Chromium; no containers.
  local dirs=()
  for d in tests/filters tests/render tests/integration tests/report; do [ -d "$d" ] && dirs+=("$d"); done
  [ ${#dirs[@]} -gt 0 ] || { echo "no integration tests yet"; return 0; }
  run_pytest -q -p no:cacheprovider "${dirs[@]}"
}

layer_molecule() {
  local rc=0 s
  for s in molecule/*/molecule.yml; do
    s=$(basename "$(dirname "$s")")
    echo "--- molecule test -s $s"
    molecule test -s "$s" || rc=1
  done
  return $rc
}

layer_build() {
  # The built collection must hold no development files.
  local out rc=0
  out=$(mktemp -d)
  ansible-galaxy collection build --force --output-path "$out" . || return 1
  local tarball="$out/fleetguard-webshield-0.1.0.tar.gz"
  [ -f "$tarball" ] || { echo "missing $tarball"; return 1; }
  if tar -tzf "$tarball" | grep -E '(^|/)(\.ci|\.cache|\.venv[^/]*|\.git|\.pytest_cache|\.ruff_cache|\.hypothesis|__pycache__|molecule|tests/unit|benchmarks|lab|scripts)(/|$)'; then
    echo "development files found in $tarball (above)"; rc=1
  fi
  echo "$(tar -tzf "$tarball" | wc -l) entries in $tarball"
  rm -rf "$out"
  return $rc
}

layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(setup lint sanity unit integration build molecule)
for l in "${layers[@]}"; do
  case "$l" in
    setup|lint|sanity|unit|integration|molecule|build) stage "$l" "layer_$l" ;;
    *) echo "unknown layer: $l (setup lint sanity unit integration molecule build)" >&2; exit 2 ;;
  esac
  if [ "$l" = setup ] && [ $failed -ne 0 ]; then break; fi
done

printf '\n===== summary =====\n'
column -t -s $'\t' "$summary" 2>/dev/null || cat "$summary"
passed=$(grep -c $'\tpassed\t' "$summary"); total=$(wc -l <"$summary")
if [ $failed -eq 0 ]; then echo "$passed passed, 0 failed"; else echo "$passed passed, $((total - passed)) failed"; fi
exit $failed
