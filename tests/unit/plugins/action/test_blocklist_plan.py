# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import json
import os
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext

from ansible_collections.fleetguard.webshield.plugins.action.blocklist_plan import ActionModule

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "mmdb_writer", os.path.join(HERE, "..", "module_utils", "mmdb_writer.py")
)
mmdb_writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mmdb_writer)

NOW = "2026-01-01T00:00:00Z"


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def offender(clients):
    return {"clients": clients, "clients_total": len(clients), "summary": {}, "networks": {}}


def strong_24(prefix, count=40, servers=("web1", "web2", "web3")):
    """offender_stats results where ``prefix``.0/24 passes the /24 rule over the fleet."""
    out = {s: {} for s in servers}
    for i in range(count):
        out[servers[i % len(servers)]]["%s.%d" % (prefix, i + 1)] = {"hits": 2, "offenses": {"flood": 1}}
    return {s: offender(c) for s, c in out.items()}


def hostvars_for(stats, facts=None, env=None):
    hv = {}
    for host, result in stats.items():
        hv[host] = {
            "offender_stats": result,
            "ansible_facts": {
                "all_ipv4_addresses": (facts or {}).get(host, []),
                "all_ipv6_addresses": [],
                "env": (env or {}).get(host, {}),
            },
        }
    return hv


def run(args, task_vars=None, check_mode=False, diff=False):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.diff = diff
    task.action = "fleetguard.webshield.blocklist_plan"
    action = ActionModule(task, MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    action._display = MagicMock()
    return action.run(task_vars=task_vars or {}), action._display


def test_gathers_hostvars_and_protects_fleet_and_controller():
    stats = strong_24("45.1.2")
    facts = {"web1": ["45.1.2.10"]}  # a fleet host inside the strong /24
    env = {"web2": {"SSH_CLIENT": "45.1.2.20 51234 22"}}  # the controller as web2 sees it
    task_vars = {"hostvars": hostvars_for(stats, facts, env), "ansible_play_hosts_all": sorted(stats)}
    result, _display = run({"levels": {"24": {}}, "now": NOW}, task_vars)
    pushed = result["blocklist"]["ipv4"]
    assert pushed and "45.1.2.0/24" not in pushed
    assert result["excluded"][0]["why"] == ["controller", "fleet host"]
    assert result["excluded"][0]["protected"] == ["45.1.2.10/32", "45.1.2.20/32"]
    assert result["summary"]["servers"] == 3
    assert result["changed"] is True


@pytest.mark.parametrize(
    "args, expected",
    [
        ({"protect_fleet": False, "protect_controller": False}, ["45.1.2.0/24"]),
        ({"protect_fleet": False, "protect_controller": False, "trusted_networks": ["45.1.0.0/16"]}, []),
        ({"protect_fleet": False, "protect_controller": False, "on_protected": "drop"}, ["45.1.2.0/24"]),
        ({"on_protected": "drop"}, []),
    ],
)
def test_protection_switches(args, expected):
    stats = strong_24("45.1.2")
    task_vars = {
        "hostvars": hostvars_for(stats, {"web1": ["45.1.2.10"]}),
        "ansible_play_hosts_all": sorted(stats),
    }
    result, _d = run(dict(args, levels={"24": {}}, now=NOW), task_vars)
    assert result["blocklist"]["ipv4"] == expected


def test_webshield_trusted_networks_is_the_default():
    stats = strong_24("45.1.2")
    task_vars = {"webshield_trusted_networks": ["45.1.2.128/25"]}
    result, _d = run({"stats": stats, "levels": {"24": {}}, "now": NOW}, task_vars)
    assert result["blocklist"]["ipv4"] == ["45.1.2.0/25"]


def test_missing_registered_stats_warns():
    stats = strong_24("45.1.2")
    hv = hostvars_for(stats)
    hv["web4"] = {"ansible_facts": {}}
    result, display = run({"levels": {"24": {}}, "now": NOW}, {"hostvars": hv, "ansible_play_hosts_all": sorted(hv)})
    assert result["blocklist"]["ipv4"] == ["45.1.2.0/24"]
    messages = " ".join(call.args[0] for call in display.warning.call_args_list)
    assert "no 'offender_stats' registered on web4" in messages
    assert "no network facts for web1, web2, web3, web4: their own addresses" in messages


def test_state_file_written_but_not_in_check_mode(tmp_path):
    path = str(tmp_path / "state.json")
    args = {"stats": strong_24("45.1.2"), "levels": {"24": {}}, "now": NOW, "state_file": path}
    result, _d = run(args, check_mode=True, diff=True)
    assert result["added"] == ["45.1.2.0/24"]
    assert result["diff"]["after"] == "45.1.2.0/24\n" and result["diff"]["before"] == ""
    assert not os.path.exists(path)
    run(args)
    state = read_json(path)
    assert list(state["entries"]) == ["45.1.2.0/24"]
    result, _d = run(args)
    assert result["changed"] is False and result["added"] == []


def test_ban_protected_fails_clearly(tmp_path):
    with pytest.raises(AnsibleActionFail, match="refusing 127.0.0.1/32: it is or covers a protected address"):
        run({"ban": ["127.0.0.1"], "stats": {}, "now": NOW})


def test_ban_recorded_with_who(tmp_path):
    path = str(tmp_path / "state.json")
    run({"ban": ["45.3.3.3"], "who": "alice", "stats": {}, "now": NOW, "state_file": path})
    entry = read_json(path)["entries"]["45.3.3.3/32"]
    assert entry["reason"] == "manual" and entry["manual"]["by"] == "alice"


@pytest.mark.parametrize(
    "args, message",
    [
        ({"levels": {"8": {}}}, "broader than the policy allows"),
        ({"allow_special": ["nope"]}, "allow_special"),
        ({"protected_countries": ["JP"]}, "missing parameter\\(s\\) required by 'protected_countries': geoip_db"),
        ({"geoip_db": "/nonexistent.mmdb", "protected_countries": ["JP"]}, "cannot read /nonexistent.mmdb"),
        ({"now": "yesterday"}, "cannot read the time"),
    ],
)
def test_errors(args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        run(dict(args, stats={}))


def test_countries(tmp_path):
    path = tmp_path / "geo.mmdb"
    path.write_bytes(mmdb_writer.build([("45.1.2.0/26", mmdb_writer.country("JP"))]))
    args = {
        "stats": strong_24("45.1.2"),
        "levels": {"24": {}},
        "now": NOW,
        "geoip_db": str(path),
        "protected_countries": ["JP"],
    }
    result, _d = run(args)
    assert result["blocklist"]["ipv4"] == ["45.1.2.64/26", "45.1.2.128/25"]
