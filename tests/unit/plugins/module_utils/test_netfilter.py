# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr
from ansible_collections.fleetguard.webshield.plugins.module_utils import _netfilter as nf


@pytest.mark.parametrize(
    "count, expected", [(0, 65536), (1, 65536), (32768, 65536), (32769, 131072), (100000, 262144), (300000, 1048576)]
)
def test_maxelem_for(count, expected):
    assert nf.maxelem_for(count) == expected


@pytest.mark.parametrize(
    "count, per_bucket, expected", [(0, 4, 1024), (100000, 4, 32768), (100000, 2, 65536), (10**8, 2, 1 << 20)]
)
def test_hashsize_for(count, per_bucket, expected):
    assert nf.hashsize_for(count, per_bucket) == expected


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
    keys = nf.text_keys(4, sets["bl"]["entries"])  # how the module reads a set's entries
    assert nf.keys_to_ranges(4, keys) == [(0x01020300, 0x010203FF), (0x05050505, 0x05050505)]


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


def test_parse_ipset_list_reads_the_plain_listing_in_one_go_and_the_rest_like_save():
    listing = "create bl hash:net family inet hashsize 1024 maxelem 131072\nadd bl 1.2.3.0/24\nadd bl 5.5.5.5\n"
    assert nf.parse_ipset_list(listing, "bl") == nf.parse_ipset_save(listing)["bl"]
    assert nf.parse_ipset_list("create bl hash:net family inet6\n", "bl")["entries"] == []
    options = "create bl hash:net family inet timeout 300\nadd bl 1.2.3.0/24 timeout 20\nadd bl 5.5.5.5 timeout 9\n"
    assert nf.parse_ipset_list(options, "bl")["entries"] == ["1.2.3.0/24", "5.5.5.5"]
    with pytest.raises(nf.NetfilterError, match="does not hold the set bl"):
        nf.parse_ipset_list("create other hash:net family inet\n", "bl")


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
        (["0.0.0.0/0", "1.2.3.0/24", 5], ["1.2.3.0/24"], [], 2),  # the /0 is left out; 5 is no address
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


# --- set entries as integers -------------------------------------------------------------------------

CIDRS4 = st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 32)), max_size=25).map(
    lambda pairs: [str(ipaddress.ip_network((a, p), strict=False)) for a, p in pairs]
)


@settings(max_examples=200, deadline=None)
@given(CIDRS4)
def test_set_keys_are_the_set_entries(cidrs):
    ranges = _cidr.to_ranges(cidrs)[4]
    keys = nf.set_keys(4, ranges)
    texts = ["%s/%d" % (_cidr.format_address(4, k >> 8), k & 255) for k in keys]
    assert texts == nf.ranges_to_set_entries(4, ranges) and len(keys) == nf.count_blocks(4, ranges)
    assert nf.keys_to_ranges(4, reversed(keys)) == ranges


@settings(max_examples=300, deadline=None)
@given(CIDRS4, CIDRS4)
def test_set_difference_is_the_difference_of_the_addresses(wanted, live):
    """The live set may hold anything (overlapping, mergeable entries); only differing entries are looked at."""
    want = _cidr.to_ranges(wanted)[4]
    current = _cidr.to_ranges(live)[4]
    added, removed, added_count, removed_count = nf.set_difference(
        4, want, nf.set_keys(4, want), set(nf.text_keys(4, live))
    )
    assert added == _cidr.subtract_ranges(want, current)
    assert removed == _cidr.subtract_ranges(current, want)
    assert added_count in (None, nf.count_blocks(4, added)) and removed_count in (None, nf.count_blocks(4, removed))


def test_set_difference_counts_without_counting_in_the_usual_case():
    want = _cidr.to_ranges(["10.0.0.0/24", "10.0.2.0/24", "2.0.0.1"])[4]
    live = set(nf.text_keys(4, ["10.0.0.0/24", "10.0.4.0/24", "10.0.6.0/24"]))
    added, removed, added_count, removed_count = nf.set_difference(4, want, nf.set_keys(4, want), live)
    assert (added_count, removed_count) == (2, 2)
    # live entries that merge into a range of two blocks: 2 removed, not 1
    live = set(nf.text_keys(4, ["10.9.0.128/25", "10.9.1.0/24"]))
    added, removed, added_count, removed_count = nf.set_difference(4, want, nf.set_keys(4, want), live)
    assert removed_count in (None, 2) and nf.count_blocks(4, removed) == 2
    assert nf.set_difference(4, want, nf.set_keys(4, want), set(nf.set_keys(4, want))) == ([], [], 0, 0)


def test_text_keys():
    assert nf.text_keys(4, ["1.2.3.4", "1.2.3.0/24"]) == [0x01020304 << 8 | 32, 0x01020300 << 8 | 24]
    assert nf.text_keys(6, ["2001:db8::1"]) == [(0x20010DB8 << 96 | 1) << 8 | 128]
    for texts in (["1.2.3.4,tcp:80"], ["2001:db8::/64"]):
        with pytest.raises(nf.NetfilterError):
            nf.text_keys(4, texts)


# --- ipset over netlink: checked against the layout written out here -----------------------------------


def attrs(data, offset=0):
    """(type, flags, value) of netlink attributes."""
    out = []
    while offset < len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        out.append((kind & 0x3FFF, kind & 0xC000, data[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    return out


def nla(kind, payload):
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-(4 + len(payload)) % 4)


def decode_add(message):
    """Set name, family and CIDR texts of an IPSET_CMD_ADD message."""
    length, kind, flags, seq, _port = struct.unpack_from("=IHHII", message)
    assert length == len(message) and kind == 6 << 8 | 9 and flags == 0x1 | 0x4
    family = message[16]
    top = {k: (f, v) for k, f, v in attrs(message, 20)}
    assert top[1][1] == b"\x06" and 9 in top and top[8][0] == 0x8000  # protocol, lineno, nested ADT
    cidrs = []
    for kind, flags, data in attrs(top[8][1]):
        assert (kind, flags) == (7, 0x8000)
        inner = {k: v for k, _f, v in attrs(data)}
        ((addr_kind, _flags, addr),) = attrs(inner[1])
        cidrs.append(
            "%s/%d" % (socket.inet_ntop(socket.AF_INET if addr_kind == 1 else socket.AF_INET6, addr), inner[3][0])
        )
    return top[2][1].rstrip(b"\0").decode(), family, seq, cidrs


def test_add_messages_carry_every_entry_in_batches():
    ranges = _cidr.to_ranges(["10.%d.0.0/16" % i for i in range(0, 250, 2)] + ["192.0.2.1"])[4]
    messages = list(nf.ipset_add_messages("bl-new", 4, nf.set_keys(4, ranges), per_message=50))
    assert [seq for seq, _m in messages] == [1, 2, 3]
    decoded = [decode_add(m) for _s, m in messages]
    assert [d[:3] for d in decoded] == [("bl-new", socket.AF_INET, i) for i in (1, 2, 3)]
    assert [c for d in decoded for c in d[3]] == nf.ranges_to_set_entries(4, ranges)
    six = _cidr.to_ranges(["2001:db8::/32", "2001:db9:1::1"])[6]
    ((_seq, message),) = nf.ipset_add_messages("bl6", 6, nf.set_keys(6, six))
    assert decode_add(message)[1:] == (socket.AF_INET6, 1, ["2001:db8::/32", "2001:db9:1::1/128"])
    assert list(nf.ipset_add_messages("bl", 4, [])) == []


def dump_reply(typename, family, maxelem, cidrs, *, per_message=2, extra=b""):
    """What the kernel answers an IPSET_CMD_LIST of a set (message payloads), made from the protocol here."""
    nfproto = {"inet": 2, "inet6": 10}[family]
    head = struct.pack("=BBH", nfproto, 0, 0) + nla(1, b"\x06") + nla(2, b"bl\0")
    first = (
        head
        + nla(3, typename.encode() + b"\0")
        + nla(4, b"\x07")
        + nla(5, bytes([nfproto]))
        + nla(7 | 0x8000, nla(18 | 0x4000, struct.pack(">I", 1024)) + nla(19 | 0x4000, struct.pack(">I", maxelem)))
    )
    payloads = [first]
    for i in range(0, len(cidrs), per_message):
        entries = b""
        for text in cidrs[i : i + per_message]:
            net = ipaddress.ip_network(text)
            addr = (
                nla(1 | 0x4000, net.network_address.packed) if net.version == 4 else nla(2, net.network_address.packed)
            )
            entries += nla(7 | 0x8000, nla(1 | 0x8000, addr) + nla(3, bytes([net.prefixlen])) + extra)
        payloads.append(head + nla(8 | 0x8000, entries))
    return payloads


def test_parse_ipset_dump():
    cidrs = ["1.2.3.0/24", "5.5.5.5/32", "10.0.0.0/8"]
    info = nf.parse_ipset_dump(dump_reply("hash:net", "inet", 131072, cidrs))
    assert (info["type"], info["family"], info["maxelem"], info["version"]) == ("hash:net", "inet", 131072, 4)
    assert info["keys"] == nf.text_keys(4, cidrs)
    six = ["2001:db8::/32", "2001:db8:1::1/128"]
    info = nf.parse_ipset_dump(dump_reply("hash:net", "inet6", 65536, six))
    assert info["family"] == "inet6" and info["keys"] == nf.text_keys(6, six)
    assert nf.parse_ipset_dump(dump_reply("hash:net", "inet", 65536, []))["keys"] == []


@pytest.mark.parametrize(
    "payloads",
    [
        dump_reply("hash:ip", "inet", 65536, ["1.2.3.4/32"]),  # another type
        dump_reply("hash:net", "inet", 65536, ["1.2.3.0/24"], extra=nla(6 | 0x4000, struct.pack(">I", 30))),  # timeout
        dump_reply("hash:net", "inet", 65536, ["1.2.3.0/24"], extra=nla(8 | 0x4000, struct.pack(">I", 1))),  # nomatch
        # three entries with a timeout each: as long as four plain entries
        dump_reply(
            "hash:net",
            "inet",
            65536,
            ["1.0.0.0/8", "2.0.0.0/8", "3.0.0.0/8"],
            per_message=3,
            extra=nla(6, struct.pack(">I", 5)),
        ),
    ],
)
def test_parse_ipset_dump_leaves_other_sets_to_the_ipset_tool(payloads):
    with pytest.raises(nf.NetfilterError):
        nf.parse_ipset_dump(payloads)


def nlmsg(kind, seq, payload, flags=0):
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def test_netlink_replies():
    ack = nlmsg(2, 3, struct.pack("=i", 0) + b"\0" * 16)
    error = nlmsg(2, 4, struct.pack("=i", -4103) + b"\0" * 16)
    assert nf.netlink_ack(ack, 3) == 0 and nf.netlink_ack(ack + error, 4) == 4103
    with pytest.raises(nf.NetfilterError, match="no acknowledgement"):
        nf.netlink_ack(ack, 5)
    assert [m[:3] for m in nf.netlink_messages(nlmsg(6 << 8 | 7, 1, b"data") + nlmsg(3, 1, b"\0" * 4))] == [
        (6 << 8 | 7, 1, None),
        (3, 1, None),
    ]
    for data, message in ((ack[:-4], "cut short"), (nlmsg(6 << 8 | 7, 1, b"x", flags=0x10), "changed while")):
        with pytest.raises(nf.NetfilterError, match=message):
            list(nf.netlink_messages(data))


def test_list_message():
    message = nf.ipset_list_message("bl6", 6)
    length, kind, flags, seq, _port = struct.unpack_from("=IHHII", message)
    assert (length, kind, flags, seq) == (len(message), 6 << 8 | 7, 0x301, 1)
    assert message[16] == socket.AF_INET6
    assert [(k, v) for k, _f, v in attrs(message, 20)] == [(1, b"\x06"), (2, b"bl6\0")]
