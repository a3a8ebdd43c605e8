# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve the ban actions of a `fail2ban-client -d` dump into the shell commands the server would run.

Runs under the interpreter that has fail2ban (PYTHONPATH picks the release, e.g. 0.11.2), never inside the
test venv. Usage:

    fail2ban-client -d -c CONFDIR | f2b_action_probe.py

Every `['multi-set', JAIL, 'action', ACTION, [[option, value], ...]]` line of the dump is given, option by
option, to a fresh fail2ban CommandAction (the server does the same on `multi-set`), and each operation is
interpolated by fail2ban's own code for the families inet4 and inet6 (conditional options such as
`blocktype?family=inet6` included). The `<ip>` tag stays in place. Output: one JSON object
{"version": ..., "jails": {JAIL: {ACTION: {"inet4": {OPERATION: COMMAND}, "inet6": {...}}}}}.
"""

import ast
import json
import sys

from fail2ban.server.action import CommandAction
from fail2ban.version import version

OPERATIONS = ("actionstart", "actionban", "actioncheck", "actionunban", "actionstop")
FAMILIES = ("inet4", "inet6")


def resolve(jail, name, options):
    action = CommandAction(None, name)
    for key, value in options:
        action[key] = value
    out = {}
    for family in FAMILIES:
        out[family] = {op: action._getOperation("<%s>" % op, family) for op in OPERATIONS}
    return out


def main(stream):
    jails = {}
    for line in stream:
        line = line.strip()
        if not line.startswith("['multi-set'"):
            continue
        item = ast.literal_eval(line)
        if len(item) == 5 and item[2] == "action":
            jails.setdefault(item[1], {})[item[3]] = resolve(item[1], item[3], item[4])
    json.dump({"version": version, "jails": jails}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.stdin)
