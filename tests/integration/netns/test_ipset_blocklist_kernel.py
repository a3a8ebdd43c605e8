# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real-kernel tests of ipset_blocklist, each in network namespaces it creates and always removes.

The module runs inside the namespace (``ip netns exec``) exactly as Ansible would run it on a host. The only
addresses used exist inside these namespaces (198.51.100.0/24 on a veth pair, TEST-NET-2).
Needs root, ipset, iptables (nf_tables or legacy) and nft; skipped otherwise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
MODULE = "ansible_collections.fleetguard.webshield.plugins.modules.ipset_blocklist"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(b) for b in ("ip", "ipset", "iptables", "ip6tables", "nft")),
        reason="needs root, iproute2, ipset, iptables and nft",
    ),
]


RECORD = """
import atexit, importlib, json, sys
log, name, sys.argv = %r, %r, ["module", %r]
module = importlib.import_module(name)
calls, run = [], module.Blocklist.run
def record(self, args, data=None, **kwargs):
    calls.append([args[1:], data])
    return run(self, args, data, **kwargs)
module.Blocklist.run = record
atexit.register(lambda: open(log, "w").write(json.dumps(calls)))
module.main()
"""


class Netns:
    def __init__(self, name):
        self.name = name

    def sh(self, *args, check=True, data=None):
        proc = subprocess.run(
            ["ip", "netns", "exec", self.name] + list(args),
            input=data,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError("%s failed: %s %s" % (args, proc.stdout, proc.stderr))
        return proc

    def module(self, tmp_path, check_mode=False, diff=True, commands=None, **args):
        """Run the module; with a path ``commands``, the commands it runs (and their input) are written there."""
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        path = tmp_path / ("args-%s.json" % secrets.token_hex(4))
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        env_cmd = ["env", "PYTHONPATH=" + COLLECTIONS, sys.executable]
        if commands:
            env_cmd += ["-c", RECORD % (str(commands), MODULE, str(path))]
        else:
            env_cmd += ["-m", MODULE, str(path)]
        proc = self.sh(*env_cmd, check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module output is not JSON: %s %s" % (proc.stdout, proc.stderr))
        assert "Traceback" not in proc.stderr
        return result

    def set_entries(self, name):
        proc = self.sh("ipset", "list", name, "-o", "save", check=False)
        if proc.returncode != 0:
            return None
        return sorted(line.split()[2] for line in proc.stdout.splitlines() if line.startswith("add "))

    def set_header(self, name):
        proc = self.sh("ipset", "list", name, "-o", "save")
        return proc.stdout.splitlines()[0]

    def rules(self, binary="iptables", chain="INPUT"):
        return [line for line in self.sh(binary, "-S", chain).stdout.splitlines() if line.startswith("-A ")]


def _add_netns():
    name = "wsf-bl-" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def _del_netns(name):
    subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def ns():
    name = _add_netns()
    try:
        yield Netns(name)
    finally:
        _del_netns(name)


@pytest.fixture
def pair():
    """Two namespaces joined by a veth pair: server 198.51.100.1 (HTTP on :8080), client 198.51.100.2."""
    server, client = _add_netns(), _add_netns()
    proc = None
    try:
        veth_a, veth_b = "wsfa" + secrets.token_hex(3), "wsfb" + secrets.token_hex(3)
        subprocess.run(["ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b], check=True)
        subprocess.run(["ip", "link", "set", veth_a, "netns", server], check=True)
        subprocess.run(["ip", "link", "set", veth_b, "netns", client], check=True)
        for ns_name, dev, addr in ((server, veth_a, "198.51.100.1/24"), (client, veth_b, "198.51.100.2/24")):
            subprocess.run(["ip", "-n", ns_name, "addr", "add", addr, "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns_name, "link", "set", dev, "up"], check=True)
            subprocess.run(["ip", "-n", ns_name, "link", "set", "lo", "up"], check=True)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", server, sys.executable, "-m", "http.server", "--bind", "198.51.100.1", "8080"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        s, c = Netns(server), Netns(client)
        for _i in range(50):  # wait until the server listens
            if reachable(c):
                break
            time.sleep(0.1)
        yield s, c
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        _del_netns(server)
        _del_netns(client)


def reachable(client):
    code = "import socket; socket.create_connection(('198.51.100.1', 8080), timeout=1).close()"
    return client.sh(sys.executable, "-c", code, check=False).returncode == 0


ENTRIES = ["45.1.2.0/24", "45.1.3.0/24", "45.9.9.9", "2a00:1::/64"]


def test_apply_then_idempotent(ns, tmp_path):
    result = ns.module(tmp_path, name="wsbl", entries=ENTRIES)
    assert result["changed"] is True
    assert result["added"] == ["45.1.2.0/23", "45.9.9.9/32", "2a00:1::/64"]
    assert ns.set_entries("wsbl") == ["45.1.2.0/23", "45.9.9.9"]
    assert ns.set_entries("wsbl6") == ["2a00:1::/64"]
    assert ns.rules() == ["-A INPUT -m set --match-set wsbl src -j DROP"]
    assert ns.rules("ip6tables") == ["-A INPUT -m set --match-set wsbl6 src -j DROP"]
    again = ns.module(tmp_path, name="wsbl", entries=ENTRIES)
    assert again["changed"] is False and again["reloaded"] == [] and again["rules_changed"] == []
    assert ns.set_entries("wsbl-new") is None  # no temporary set left behind


def test_check_mode_changes_nothing(ns, tmp_path):
    result = ns.module(tmp_path, check_mode=True, name="wsbl", entries=ENTRIES)
    assert result["changed"] is True and result["added"]
    assert "45.9.9.9/32" in result["diff"]["after"]
    assert ns.set_entries("wsbl") is None and ns.rules() == []
    ns.module(tmp_path, name="wsbl", entries=ENTRIES)
    result = ns.module(tmp_path, check_mode=True, name="wsbl", entries=["45.9.9.9", "45.7.7.0/24"])
    assert result["added"] == ["45.7.7.0/24"] and result["removed"] == ["45.1.2.0/23", "2a00:1::/64"]
    assert ns.set_entries("wsbl") == ["45.1.2.0/23", "45.9.9.9"]


def test_swap_is_atomic(ns, tmp_path):
    """While the set is reloaded with 30k more entries, an address in both lists never stops matching."""
    ns.module(tmp_path, name="wsbl", entries=["45.9.9.9"], family="ipv4")
    big = ["45.9.9.9"] + ["46.%d.%d.0/24" % (i // 256, i % 256) for i in range(30000)]
    probe = subprocess.Popen(
        [
            "ip", "netns", "exec", ns.name, "sh", "-c",
            "n=0; while [ ! -e %s ]; do ipset test wsbl 45.9.9.9 2>/dev/null || echo MISS; n=$((n+1)); done; "
            "echo probes=$n" % (tmp_path / "stop"),
        ],
        stdout=subprocess.PIPE,
        universal_newlines=True,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        result = ns.module(tmp_path, name="wsbl", entries=big, family="ipv4")
        small = ns.module(tmp_path, name="wsbl", entries=["45.9.9.9"], family="ipv4")
    finally:
        (tmp_path / "stop").write_text("")
        out, _err = probe.communicate(timeout=30)
    assert result["reloaded"] == ["ipv4"] and small["reloaded"] == ["ipv4"]
    assert "MISS" not in out
    assert int(out.strip().split("probes=")[1]) > 10
    assert len(ns.set_entries("wsbl")) == 1


def test_thousands_of_entries_of_both_families_are_loaded_exactly(ns, tmp_path):
    """Several netlink messages per set; prefixes of every length; then half of them changed."""
    v4 = ["%d.%d.%d.0/%d" % (50 + i % 7, i // 256, i % 256, 24 + i % 9) for i in range(6000)]
    v6 = ["2a00:%x:%x::/%d" % (i // 100, i % 100, 48 + i % 81) for i in range(3000)]
    result = ns.module(tmp_path, name="wsbl", entries=v4 + v6, diff=False)
    want4 = [str(n) for n in ipaddress.collapse_addresses(ipaddress.ip_network(c, strict=False) for c in v4)]
    want6 = [str(n) for n in ipaddress.collapse_addresses(ipaddress.ip_network(c, strict=False) for c in v6)]
    assert result["entries"] == {"ipv4": len(want4), "ipv6": len(want6)} and result["added_total"] == len(want4 + want6)
    assert ns.set_entries("wsbl") == sorted(c.replace("/32", "") for c in want4)
    assert ns.set_entries("wsbl6") == sorted(c.replace("/128", "") for c in want6)
    changed = ns.module(tmp_path, name="wsbl", entries=v4[3000:] + v6[:1500], diff=False)
    left4 = {str(n) for n in ipaddress.collapse_addresses(ipaddress.ip_network(c, strict=False) for c in v4[3000:])}
    assert changed["reloaded"] == ["ipv4", "ipv6"] and changed["removed_total"] > 0
    assert ns.set_entries("wsbl") == sorted(c.replace("/32", "") for c in left4)
    again = ns.module(tmp_path, name="wsbl", entries=v4[3000:] + v6[:1500], diff=False)
    assert again["changed"] is False


def test_entries_go_over_netlink_not_through_ipset_text(ns, tmp_path):
    """On a real kernel the sets are read and filled over netlink: the ipset tool only creates, swaps, renames."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    ns.module(tmp_path, commands=first, name="wsbl", entries=ENTRIES)
    result = ns.module(tmp_path, commands=second, name="wsbl", entries=ENTRIES[:2] + ["45.7.0.0/16"])
    assert result["added"] == ["45.7.0.0/16"] and result["removed"] == ["45.9.9.9/32", "2a00:1::/64"]
    assert ns.set_entries("wsbl") == ["45.1.2.0/23", "45.7.0.0/16"] and ns.set_entries("wsbl6") == []
    calls = json.loads(first.read_text()) + json.loads(second.read_text())
    ipset = [(args, data) for args, data in calls if args[0] in ("list", "restore", "rename", "swap", "destroy")]
    assert ["restore"] in [args for args, _data in ipset] and ["rename", "wsbl-new", "wsbl"] in [a for a, _d in ipset]
    assert "swap wsbl-new wsbl\ndestroy wsbl-new\n" in [data for _args, data in ipset]
    assert not [args for args, _data in ipset if args[0] == "list"]
    assert not [data for _args, data in ipset if data and "\nadd " in "\n" + data]


def test_a_set_with_entry_options_is_read_with_ipset_list(ns, tmp_path):
    """Entries with a timeout are not what the netlink reader takes: ipset list reads them, the result is the same."""
    ns.sh("ipset", "create", "wsbl", "hash:net", "family", "inet", "timeout", "0")
    ns.sh("ipset", "add", "wsbl", "45.1.2.0/24", "timeout", "0")
    ns.sh("ipset", "add", "wsbl", "45.8.8.8", "timeout", "600")
    result = ns.module(tmp_path, name="wsbl", entries=["45.1.2.0/24", "45.9.9.9"], family="ipv4")
    assert result["added"] == ["45.9.9.9/32"] and result["removed"] == ["45.8.8.8/32"]
    assert result["reloaded"] == ["ipv4"] and ns.set_entries("wsbl") == ["45.1.2.0/24", "45.9.9.9"]
    assert " timeout " not in ns.set_header("wsbl")
    assert ns.module(tmp_path, name="wsbl", entries=["45.1.2.0/24", "45.9.9.9"], family="ipv4")["changed"] is False


def test_maxelem_grows_and_type_change_is_handled(ns, tmp_path):
    # a set of another type (hash:ip) with our rule: swap is impossible, the module replaces it
    ns.sh("ipset", "create", "wsbl", "hash:ip", "family", "inet")
    ns.sh("ipset", "add", "wsbl", "45.9.9.9")
    ns.sh("iptables", "-I", "INPUT", "1", "-m", "set", "--match-set", "wsbl", "src", "-j", "DROP")
    result = ns.module(tmp_path, name="wsbl", entries=["45.1.2.0/24"], family="ipv4")
    assert result["reloaded"] == ["ipv4"]
    assert " hash:net " in ns.set_header("wsbl")
    assert ns.set_entries("wsbl") == ["45.1.2.0/24"]
    assert ns.rules() == ["-A INPUT -m set --match-set wsbl src -j DROP"]
    assert ns.set_entries("wsbl-new") is None
    # asking for a bigger capacity: a new set is swapped in
    result = ns.module(tmp_path, name="wsbl", entries=["45.1.2.0/24"], family="ipv4", maxelem=262144)
    assert result["reloaded"] == ["ipv4"] and "maxelem 262144" in ns.set_header("wsbl")


def test_rule_goes_before_accept_rules_and_ports(ns, tmp_path):
    ns.sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "ACCEPT")
    ns.module(tmp_path, name="wsbl", entries=ENTRIES)
    assert ns.rules()[0] == "-A INPUT -m set --match-set wsbl src -j DROP"
    ns.sh("iptables", "-I", "INPUT", "1", "-j", "ACCEPT")  # someone puts an accept rule on top
    result = ns.module(tmp_path, name="wsbl", entries=ENTRIES)
    assert result["rules_changed"] == ["ipv4"] and result["changed"] is True
    assert ns.rules()[0] == "-A INPUT -m set --match-set wsbl src -j DROP"
    assert len([r for r in ns.rules() if "wsbl" in r]) == 1
    # ports: the old rule is replaced, not duplicated
    ns.module(tmp_path, name="wsbl", entries=ENTRIES, ports=["80", "443"])
    ours = [r for r in ns.rules() if "wsbl" in r]
    assert ours == ["-A INPUT -p tcp -m set --match-set wsbl src -m multiport --dports 80,443 -j DROP"]
    assert ns.rules()[0] == ours[0]
    again = ns.module(tmp_path, name="wsbl", entries=ENTRIES, ports=["80", "443"])
    assert again["changed"] is False


def test_absent_removes_rule_and_sets(ns, tmp_path):
    ns.module(tmp_path, name="wsbl", entries=ENTRIES)
    result = ns.module(tmp_path, name="wsbl", state="absent")
    assert result["changed"] is True and "45.9.9.9/32" in result["removed"]
    assert ns.set_entries("wsbl") is None and ns.set_entries("wsbl6") is None
    assert ns.rules() == [] and ns.rules("ip6tables") == []
    assert ns.module(tmp_path, name="wsbl", state="absent")["changed"] is False


@pytest.mark.parametrize(
    "args, message",
    [
        ({"entries": ["45.1.2.0/24", "not-an-ip"]}, "not addresses or networks"),
        ({"entries": ["2a00::/64"], "family": "ipv4"}, "family is ipv4"),
        ({"entries": ["0.0.0.0/0"]}, "whole address space"),
        ({"entries": [], "name": "x" * 40}, "is not valid"),
        ({"entries": [], "ports": ["http"]}, "ports must be numbers"),
        ({"entries": [], "chain": "NOPE"}, "the chain must exist|-S NOPE failed"),
        ({"entries": ["45.1.2.3", "45.1.2.5"], "maxelem": 1}, "2 ipv4 entries do not fit in maxelem 1"),
    ],
)
def test_errors_are_clear(ns, tmp_path, args, message):
    result = ns.module(tmp_path, **dict({"name": "wsbl"}, **args))
    assert result.get("failed") is True
    assert re.search(message, result["msg"] + result.get("hint", "")), result["msg"]
    assert ns.set_entries("wsbl") is None


def test_a_listed_address_is_really_dropped(pair, tmp_path):
    server, client = pair
    assert reachable(client)
    server.module(tmp_path, name="wsbl", entries=["198.51.100.2", "45.1.2.0/24"])
    assert not reachable(client)
    server.module(tmp_path, name="wsbl", entries=["198.51.100.128/25"])  # the client is no longer inside
    assert reachable(client)
    server.module(tmp_path, name="wsbl", entries=["198.51.100.0/30"], ports=["22"])  # other port only
    assert reachable(client)
    server.module(tmp_path, name="wsbl", entries=["198.51.100.0/30"], ports=["8080"])
    assert not reachable(client)


def test_nftables_backend_drops_and_is_idempotent(pair, tmp_path):
    server, client = pair
    args = {"name": "wsbl", "backend": "nftables", "entries": ["198.51.100.2", "45.1.2.0/24", "2a00:1::/64"]}
    result = server.module(tmp_path, **args)
    assert result["changed"] is True
    assert not reachable(client)
    listed = json.loads(server.sh("nft", "-j", "list", "set", "inet", "webshield", "wsbl").stdout)
    elems = [i["set"] for i in listed["nftables"] if "set" in i][0]["elem"]
    assert {"prefix": {"addr": "45.1.2.0", "len": 24}} in elems and "198.51.100.2" in elems
    chain = json.loads(server.sh("nft", "-j", "list", "chain", "inet", "webshield", "wsbl_input").stdout)
    hooks = [i["chain"] for i in chain["nftables"] if "chain" in i][0]
    assert hooks["hook"] == "input" and hooks["prio"] == -10
    assert server.module(tmp_path, **args)["changed"] is False
    result = server.module(tmp_path, **dict(args, entries=["45.1.2.0/24"]))
    assert result["removed"] == ["198.51.100.2/32", "2a00:1::/64"]
    assert reachable(client)
    result = server.module(tmp_path, **dict(args, state="absent"))
    assert result["changed"] is True
    assert server.sh("nft", "list", "table", "inet", "webshield", check=False).returncode != 0


RULES_V4 = """# user rules
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
COMMIT
"""


def test_persist_keeps_user_rules(ns, tmp_path):
    files = {
        "persist_ipset_file": str(tmp_path / "ipsets"),
        "persist_rules_v4": str(tmp_path / "rules.v4"),
        "persist_rules_v6": str(tmp_path / "rules.v6"),
    }
    (tmp_path / "rules.v4").write_text(RULES_V4)
    (tmp_path / "ipsets").write_text(
        "create other hash:ip family inet hashsize 1024 maxelem 65536\nadd other 1.1.1.1\n"
    )
    ns.sh("ipset", "create", "other", "hash:ip")
    result = ns.module(tmp_path, name="wsbl", entries=ENTRIES, persist=True, **files)
    assert sorted(result["persisted"]) == sorted(files.values())
    v4 = (tmp_path / "rules.v4").read_text().splitlines()
    assert v4.index("-A INPUT -m set --match-set wsbl src -j DROP") < v4.index("-A INPUT -i lo -j ACCEPT")
    assert "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in v4 and "*nat" in v4
    ipsets = (tmp_path / "ipsets").read_text()
    assert "add other 1.1.1.1" in ipsets and "add wsbl 45.1.2.0/23" in ipsets and "add wsbl6 2a00:1::/64" in ipsets
    assert "-A INPUT -m set --match-set wsbl6 src -j DROP" in (tmp_path / "rules.v6").read_text()
    # the files restore in a fresh namespace
    fresh = Netns(_add_netns())
    try:
        fresh.sh("ipset", "restore", data=ipsets)
        fresh.sh("iptables-restore", "--test", data="\n".join(v4) + "\n")
    finally:
        _del_netns(fresh.name)
    again = ns.module(tmp_path, name="wsbl", entries=ENTRIES, persist=True, **files)
    assert again["changed"] is False and again["persisted"] == []
    ns.module(tmp_path, name="wsbl", state="absent", persist=True, **files)
    assert "wsbl" not in (tmp_path / "rules.v4").read_text() and "wsbl" not in (tmp_path / "ipsets").read_text()
    assert "-A INPUT -i lo -j ACCEPT" in (tmp_path / "rules.v4").read_text()


def test_persist_nftables(ns, tmp_path):
    files = {"persist_nft_file": str(tmp_path / "d" / "webshield.nft"), "persist_nft_main": str(tmp_path / "main.nft")}
    (tmp_path / "main.nft").write_text("#!/usr/sbin/nft -f\nflush ruleset\ntable inet filter {\n}\n")
    args = dict(name="wsbl", backend="nftables", entries=ENTRIES, persist=True, **files)
    result = ns.module(tmp_path, **args)
    assert sorted(result["persisted"]) == sorted(files.values())
    main = (tmp_path / "main.nft").read_text().splitlines()
    assert main[2] == 'include "%s"' % files["persist_nft_file"]
    # the main file loads in a fresh namespace and gives the same set
    fresh = Netns(_add_netns())
    try:
        fresh.sh("nft", "-f", str(tmp_path / "main.nft"))
        listed = fresh.sh("nft", "list", "set", "inet", "webshield", "wsbl").stdout
        assert "45.1.2.0/23" in listed and "45.9.9.9" in listed
    finally:
        _del_netns(fresh.name)
    assert ns.module(tmp_path, **args)["changed"] is False
