#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection with one ansible-core: copy the checkout under a temporary
# ansible_collections/fleetguard/webshield path (ansible-test requires it), without development caches and
# without the development-only folders that galaxy.yml's build_ignore keeps out of the built collection
# (benchmarks, lab, scripts, molecule, the pytest suites run against real services); ruff and yamllint
# check those in the lint layer. tests/unit and tests/integration stay: they are ansible-test's own.
# Usage: scripts/sanity.sh VENV_DIR      (e.g. .venv-core216 or .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: scripts/sanity.sh VENV_DIR}
tmp=$(mktemp -d /var/tmp/webshield-sanity.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/ansible_collections/fleetguard/webshield"
mkdir -p "$dest"
tar -c --exclude=./.git --exclude=./.cache --exclude='./.venv*' --exclude=./.pytest_cache \
  --exclude=./.ruff_cache --exclude=./.hypothesis --exclude='*/__pycache__' --exclude=./tests/output \
  --exclude='*.tar.gz' \
  --exclude=./benchmarks --exclude=./lab --exclude=./scripts --exclude=./molecule \
  --exclude=./tests/filters --exclude=./tests/render --exclude=./tests/report . | tar -C "$dest" -x
# ansible-test bootstraps pip in its venvs from a cached get-pip script it would otherwise download.
for v in $(grep -hoE "^\s*pip='[0-9.]+'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | grep -oE "[0-9.]+"); do
  mkdir -p ~/.ansible/test/cache
  cp scripts/ansible_test_get_pip.py ~/.ansible/test/cache/get_pip_${v//./_}.py
done
core=$("$PWD/$venv/bin/python" -c "import ansible.release as r; print(\"ansible-core \" + r.__version__)")
echo "[sanity] $core"
cd "$dest"
# --venv: ansible-test makes its own pinned environments for each sanity test (from PyPI).
# Only the controller's Python is present on this machine; vermin checks the Python 3.6 floor of the modules.
PATH="$OLDPWD/$venv/bin:$PATH" ansible-test sanity --venv --python "$("$OLDPWD/$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no "${@:2}"
