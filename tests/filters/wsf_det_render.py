# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the detection roles' templates with Ansible's own Templar, as the template module would.

Variables are layered like a play does: role defaults, then the OS vars file the role would pick
(first found), then role vars/main.yml, then the caller's overrides (extra vars win). Shared by
tests/filters (filters rendered with the sample-log settings) and tests/render (EL 7, EL 9, Debian).
"""

import os

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
