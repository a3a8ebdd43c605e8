# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.fleetguard.webshield.plugins.module_utils import _netfilter as nf


@pytest.mark.parametrize(
    "count, expected", [(0, 65536), (1, 65536), (32768, 65536), (32769, 131072), (100000, 262144), (300000, 1048576)]
)
def test_maxelem_for(count, expected):
    assert nf.maxelem_for(count) == expected


@pytest.mark.parametrize(
    "name, expected", [("webshield", "webshield-new"), ("a" * 27, "a" * 27 + "-new"), ("b" * 31, "b" * 27 + "-new")]
)
def test_temp_name_fits_ipset_limit(name, expected):
    assert nf.temp_name(name) == expected and len(expected) <= nf.IPSET_NAME_MAX


SAVE = """create bl hash:net family inet hashsize 1024 maxelem 131072 bucketsize 12 initval 0x036a43a9
add bl 1.2.3.0/24
add bl 5.5.5.5
create bl6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x283b595e
add bl6 2001:db8::/64
"""


def test_parse_ipset_save():
    sets = nf.parse_ipset_save(SAVE)
    assert sets["bl"]["type"] == "hash:net" and sets["bl"]["family"] == "inet" and sets["bl"]["maxelem"] == 131072
    assert sets["bl"]["entries"] == ["1.2.3.0/24", "5.5.5.5"]
    assert sets["bl6"]["family"] == "inet6"
    assert nf.set_ranges(sets["bl"]["entries"])[4] == [(0x01020300, 0x010203FF), (0x05050505, 0x05050505)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("add bl 1.2.3.4\n", "unknown set"),
        ("garbage here\n", "not ipset save"),
        ("create x hash:net maxelem z\n", "bad"),
    ],
)
def test_parse_ipset_save_errors(text, message):
    with pytest.raises(nf.NetfilterError, match=message):
        nf.parse_ipset_save(text)


def test_restore_script():
    script = nf.ipset_restore_script("bl-new", 6, ["2001:db8::/64"])
    assert script == "create bl-new hash:net family inet6 hashsize 1024 maxelem 65536\nadd bl-new 2001:db8::/64\n"


@pytest.mark.parametrize(
    "entries, v4, v6, errors",
    [
        (["1.2.3.4/24", "1.2.3.9"], ["1.2.3.0/24"], [], 0),
        (["::ffff:1.2.3.4", "2001:db8::1"], ["1.2.3.4/32"], ["2001:db8::1/128"], 0),
        (["0.0.0.0/0", "x"], [], [], 2),
        (["0.0.0.0/1", "128.0.0.0/1"], ["0.0.0.0/1", "128.0.0.0/1"], [], 0),  # merged, but never a /0
    ],
)
def test_split_entries(entries, v4, v6, errors):
    ranges, errs = nf.split_entries(entries)
    assert nf.ranges_to_set_entries(4, ranges[4]) == v4
    assert nf.ranges_to_set_entries(6, ranges[6]) == v6
    assert len(errs) == errors


@pytest.mark.parametrize(
    "ports, spec",
    [
        ([], ["-m", "set", "--match-set", "bl", "src", "-j", "DROP"]),
        (
            ["80", "443"],
            [
                "-p",
                "tcp",
                "-m",
                "set",
                "--match-set",
                "bl",
                "src",
                "-m",
                "multiport",
                "--dports",
                "80,443",
                "-j",
                "DROP",
            ],
        ),
    ],
)
def test_rule_spec(ports, spec):
    assert nf.rule_spec("bl", "DROP", ports) == spec


def test_rule_spec_bad_ports():
    with pytest.raises(nf.NetfilterError, match="ports must be numbers"):
        nf.rule_spec("bl", "DROP", ["80;rm"])


OURS = "-A INPUT -m set --match-set bl src -j DROP"


@pytest.mark.parametrize(
    "lines, present, first, stale",
    [
        ([OURS, "-A INPUT -j ACCEPT"], True, True, 0),
        (["-A INPUT -j ACCEPT", OURS], True, False, 0),
        (["-A INPUT -j LOG", OURS, "-A INPUT -j ACCEPT"], True, True, 0),
        ([OURS, OURS], True, True, 1),
        (["-A INPUT -m set --match-set bl src -j REJECT --reject-with icmp-port-unreachable"], False, False, 1),
        (["-A INPUT -m set --match-set other src -j DROP"], False, False, 0),
        ([], False, False, 0),
    ],
)
def test_rule_status(lines, present, first, stale):
    rules = nf.parse_rules("-P INPUT ACCEPT\n" + "\n".join(lines), "INPUT")
    got = nf.rule_status(rules, "INPUT", "bl", nf.rule_spec("bl"))
    assert got[0] is present and got[1] is first and len(got[2]) == stale


def test_rule_status_ignores_reject_options():
    rules = nf.parse_rules("-A INPUT -m set --match-set bl src -j REJECT --reject-with icmp-port-unreachable", "INPUT")
    assert nf.rule_status(rules, "INPUT", "bl", nf.rule_spec("bl", "REJECT"))[:2] == (True, True)


USER_RULES = """*filter
:INPUT DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m set --match-set bl src -p tcp -j DROP
COMMIT
"""


@pytest.mark.parametrize(
    "text, line, expected",
    [
        (
            None,
            OURS,
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + OURS + "\nCOMMIT\n",
        ),
        (
            USER_RULES,
            OURS,
            "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" + OURS + "\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
        ),
        (USER_RULES, None, "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"),
        ("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", OURS, "*filter\n:INPUT ACCEPT [0:0]\n" + OURS + "\nCOMMIT\n"),
        ("*nat\nCOMMIT\n", None, "*nat\nCOMMIT\n"),
    ],
)
def test_update_rules_file(text, line, expected):
    assert nf.update_rules_file(text, "INPUT", "bl", line) == expected
    # idempotent
    assert nf.update_rules_file(expected, "INPUT", "bl", line) == expected


def test_update_ipset_file_keeps_other_sets():
    text = "create other hash:ip family inet\nadd other 1.1.1.1\n" + SAVE
    new = nf.update_ipset_file(text, {"bl": nf.ipset_restore_script("bl", 4, ["9.9.9.0/24"]), "bl6": None})
    assert new == (
        "create other hash:ip family inet\nadd other 1.1.1.1\n"
        "create bl hash:net family inet hashsize 1024 maxelem 65536\nadd bl 9.9.9.0/24\n"
    )


NFT_SET = {
    "nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {
            "set": {
                "family": "inet",
                "name": "bl",
                "table": "webshield",
                "type": "ipv4_addr",
                "flags": ["interval"],
                "elem": [
                    {"prefix": {"addr": "1.2.3.0", "len": 24}},
                    "5.5.5.5",
                    {"range": ["6.0.0.1", "6.0.0.9"]},
                    {"elem": {"val": "7.7.7.7", "timeout": 30}},
                ],
            }
        },
    ]
}


def test_nft_set_parse():
    typ, flags, ranges = nf.nft_set_type_and_ranges(json.dumps(NFT_SET), 4)
    assert typ == "ipv4_addr" and flags == ["interval"]
    assert ranges == [(0x01020300, 0x010203FF), (0x05050505, 0x05050505), (0x06000001, 0x06000009), (0x07070707,) * 2]


@pytest.mark.parametrize("text", ["not json", json.dumps({"nftables": []})])
def test_nft_set_parse_errors(text):
    with pytest.raises(nf.NetfilterError):
        nf.nft_set_type_and_ranges(text, 4)


def test_nft_script_is_one_transaction():
    sets = {4: "bl", 6: "bl6"}
    rules = nf.nft_rules(sets, "DROP", ["80", "8000:8080"], "tcp", "webshield:x")
    assert rules == [
        'ip saddr @bl tcp dport { 80, 8000-8080 } drop comment "webshield:x"',
        'ip6 saddr @bl6 tcp dport { 80, 8000-8080 } drop comment "webshield:x"',
    ]
    script = nf.nft_script(
        "webshield", "bl_input", "input", -10, sets=sets, wanted={4: ["1.2.3.0/24"], 6: []}, rules=rules
    )
    lines = script.splitlines()
    assert lines[0] == "add table inet webshield"
    assert "add chain inet webshield bl_input { type filter hook input priority -10; policy accept; }" in lines
    assert lines.index("flush chain inet webshield bl_input") < lines.index("flush set inet webshield bl")
    assert "add element inet webshield bl { 1.2.3.0/24 }" in lines
    assert not any(line.startswith("add element inet webshield bl6") for line in lines)  # no empty element list
    assert lines[-1].startswith("add rule inet webshield bl_input ip6 saddr @bl6")


def test_nft_signature_changes_with_config():
    base = {"sets": {4: "bl"}, "target": "DROP", "ports": [], "protocol": "tcp"}
    a = nf.nft_signature("webshield", "bl_input", "input", -10, **base)
    assert a == nf.nft_signature("webshield", "bl_input", "input", -10, **base)
    other = dict(base)
    other["ports"] = ["80"]
    assert a != nf.nft_signature("webshield", "bl_input", "input", -10, **other)


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, 'include "/x.nft"\n'),
        ("flush ruleset\ntable inet f {\n}\n", 'flush ruleset\ninclude "/x.nft"\ntable inet f {\n}\n'),
        ('include "/x.nft"\n', 'include "/x.nft"\n'),
    ],
)
def test_ensure_include(text, expected):
    assert nf.ensure_include(text, "/x.nft") == expected
    assert 'include "/x.nft"' not in nf.remove_include(expected, "/x.nft")
