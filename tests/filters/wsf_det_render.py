# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the detection roles' templates with Ansible's own Templar, as the template module would.

Variables are layered like a play does: role defaults, then the OS vars file the role would pick
(first found), then role vars/main.yml, then the caller's overrides (extra vars win). Shared by
tests/filters (filters rendered with the sample-log settings) and tests/render (EL 7, EL 9, Debian).
Also names the fail2ban releases the tests run: this machine's (1.x) and 0.11.2 (EPEL 7, Debian 11), the
latter extracted by scripts/fetch-fail2ban.sh and run under the same python3 (FAIL2BANS).
"""

import os
import shlex

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:  # ansible-core >= 2.19: only trusted strings are templated
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core templates every string

    def trust_as_template(value):
        return value


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = os.path.join(ROOT, "roles")
F2B_PYTHON = "/usr/bin/python3"
# fail2ban 0.11.2 as scripts/fetch-fail2ban.sh extracts it (WEBSHIELD_FAIL2BAN_011_ROOT: another root).
F2B_011_ROOT = os.environ.get("WEBSHIELD_FAIL2BAN_011_ROOT") or os.path.join(
    ROOT, ".cache", "fail2ban-0.11", "0.11.2-2", "root"
)
# sitecustomize that gives 0.11.2 what Python 3.10/3.11 removed (see its docstring); no fail2ban file is edited.
F2B_011_COMPAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "f2b011_compat")


class Fail2ban:
    """One fail2ban release: its stock config dir, how to run its tools and its Python API."""

    def __init__(self, name, version_prefix, root="/"):
        self.name = name  # test id
        self.version_prefix = version_prefix  # what fail2ban.version.version must start with
        self.root = root
        self.confdir = os.path.join(root, "etc", "fail2ban")
        self.system = root == "/"

    @property
    def available(self):
        return os.path.isfile(os.path.join(self.root, "usr", "bin", "fail2ban-client")) and os.path.isfile(F2B_PYTHON)

    def env(self, **extra):
        """Environment for F2B_PYTHON so that `import fail2ban` finds this release."""
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **extra)
        if not self.system:
            path = [F2B_011_COMPAT, os.path.join(self.root, "usr", "lib", "python3", "dist-packages")]
            env["PYTHONPATH"] = os.pathsep.join(path + [p for p in [env.get("PYTHONPATH")] if p])
        return env

    def command(self, tool):
        """argv prefix of one of its tools (fail2ban-client, fail2ban-regex)."""
        path = os.path.join(self.root, "usr", "bin", tool)
        return [path] if self.system else [F2B_PYTHON, path]

    def shell_command(self, tool):
        """The same for `sh -c`, with the environment set inline."""
        env = "" if self.system else "PYTHONPATH=%s " % shlex.quote(self.env()["PYTHONPATH"])
        return env + shlex.join(self.command(tool))


FAIL2BAN_SYSTEM = Fail2ban("f2b-system", "1.")
FAIL2BAN_011 = Fail2ban("f2b-0.11", "0.11.2", F2B_011_ROOT)
# Parameters for the tests that run fail2ban itself, once per release.
FAIL2BANS = [
    pytest.param(f2b, id=f2b.name, marks=pytest.mark.skipif(not f2b.available, reason=reason))
    for f2b, reason in [
        (FAIL2BAN_SYSTEM, "needs this machine's fail2ban and python3"),
        (FAIL2BAN_011, "needs fail2ban 0.11.2: run scripts/fetch-fail2ban.sh"),
    ]
]

# Facts of the platforms the tests render for (only what the roles read).
PLATFORMS = {
    "el7": {"distribution": "CentOS", "distribution_major_version": "7", "os_family": "RedHat"},
    "el9": {"distribution": "Rocky", "distribution_major_version": "9", "os_family": "RedHat"},
    "debian12": {"distribution": "Debian", "distribution_major_version": "12", "os_family": "Debian"},
}


def _trust(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: _trust(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trust(item) for item in value]
    return value


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def os_vars_file(role, facts):
    """The vars file the role loads: <Distribution>_<major> -> <Distribution> -> <os_family>_<major> -> <os_family>."""
    names = [
        "{distribution}_{distribution_major_version}.yml",
        "{distribution}.yml",
        "{os_family}_{distribution_major_version}.yml",
        "{os_family}.yml",
    ]
    for name in names:
        path = os.path.join(ROLES, role, "vars", name.format(**facts))
        if os.path.isfile(path):
            return path
    raise LookupError("no vars file for %s in role %s" % (facts, role))


def role_variables(role, platform, overrides=None, extra_roles=()):
    facts = dict(PLATFORMS[platform])
    facts.setdefault("env", {})
    variables = {}
    for name in tuple(extra_roles) + (role,):
        variables.update(_load(os.path.join(ROLES, name, "defaults", "main.yml")))
    variables.update(_load(os_vars_file(role, facts)))
    main_vars = os.path.join(ROLES, role, "vars", "main.yml")
    if os.path.isfile(main_vars):
        variables.update(_load(main_vars))
    variables.update(overrides or {})
    variables["ansible_facts"] = facts
    variables["ansible_managed"] = "Ansible managed (test render)"
    variables["role_path"] = os.path.join(ROLES, role)
    return variables


def render(role, template, variables):
    """Render roles/<role>/templates/<template> with the given variables; return the text."""
    path = os.path.join(ROLES, role, "templates", template)
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    templar = Templar(loader=DataLoader(), variables=_trust(variables))
    text = templar.template(trust_as_template(source))
    # The template module keeps the template's trailing newline.
    if source.endswith("\n") and not text.endswith("\n"):
        text += "\n"
    return text


def value(variables, name):
    """One variable, templated (e.g. an effective value from vars/main.yml)."""
    templar = Templar(loader=DataLoader(), variables=_trust(variables))
    return templar.template(_trust(variables[name]))
