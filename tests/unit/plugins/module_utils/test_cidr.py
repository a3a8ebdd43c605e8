# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.2.3.4", (4, 0x01020304, 0x01020304)),
        (" 1.2.3.4 ", (4, 0x01020304, 0x01020304)),
        ("1.2.3.4/24", (4, 0x01020300, 0x010203FF)),
        ("0.0.0.0/0", (4, 0, 0xFFFFFFFF)),
        ("::ffff:1.2.3.4", (4, 0x01020304, 0x01020304)),
        ("2001:db8::1", (6, 0x20010DB8 << 96 | 1, 0x20010DB8 << 96 | 1)),
        ("2001:db8::/32", (6, 0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1))),
        ("fe80::1%eth0", (6, 0xFE80 << 112 | 1, 0xFE80 << 112 | 1)),
    ],
)
def test_parse_cidr(text, expected):
    assert _cidr.parse_cidr(text) == expected


@pytest.mark.parametrize("text", ["", "1.2.3", "1.2.3.4/33", "1.2.3.4/x", "2001:db8::/129", "host.example", None, 5])
def test_parse_cidr_rejects(text):
    with pytest.raises(_cidr.CidrError):
        _cidr.parse_cidr(text)


def test_parse_cidr_strict_names_the_fix():
    with pytest.raises(_cidr.CidrError, match="did you mean 1.2.3.0/24"):
        _cidr.parse_cidr("1.2.3.4/24", strict=True)


@pytest.mark.parametrize(
    "cidrs, ipv4, ipv6",
    [
        ([], [], []),
        (["1.2.3.4"], ["1.2.3.4/32"], []),
        (["1.2.3.0/25", "1.2.3.128/25"], ["1.2.3.0/24"], []),
        (["1.2.3.0/24", "1.2.3.7", "1.2.3.64/26"], ["1.2.3.0/24"], []),
        (["1.2.2.0/24", "1.2.3.0/24", "1.2.4.0/24"], ["1.2.2.0/23", "1.2.4.0/24"], []),
        (["10.0.0.1", "10.0.0.2"], ["10.0.0.1/32", "10.0.0.2/32"], []),
        (["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"], ["10.0.0.0/30"], []),
        (["2001:db8::/64", "2001:db8:0:1::/64", "1.1.1.1"], ["1.1.1.1/32"], ["2001:db8::/63"]),
        (["::ffff:9.9.9.9", "9.9.9.9/32"], ["9.9.9.9/32"], []),
    ],
)
def test_collapse(cidrs, ipv4, ipv6):
    assert _cidr.collapse(cidrs) == {"ipv4": ipv4, "ipv6": ipv6}


def test_collapse_caps_the_broadest_prefix():
    # two adjacent /16s would become a /15; with min_prefix4=16 they stay two /16s
    assert _cidr.collapse(["1.2.0.0/16", "1.3.0.0/16"], min_prefix4=16) == {
        "ipv4": ["1.2.0.0/16", "1.3.0.0/16"],
        "ipv6": [],
    }
    assert _cidr.collapse(["1.2.0.0/16", "1.3.0.0/16"])["ipv4"] == ["1.2.0.0/15"]


@pytest.mark.parametrize(
    "network, protected, expected",
    [
        ("203.0.113.0/24", [], ["203.0.113.0/24"]),
        ("203.0.113.0/24", ["203.0.113.7"], None),  # compared against ipaddress.address_exclude below
        ("203.0.113.0/24", ["203.0.113.0/24"], []),
        ("203.0.113.0/24", ["203.0.0.0/16"], []),
        ("203.0.113.0/24", ["198.51.100.1"], ["203.0.113.0/24"]),
        ("2001:db8::/48", ["2001:db8::1"], None),
    ],
)
def test_address_exclude_matches_stdlib(network, protected, expected):
    got = _cidr.address_exclude_text(network, protected)
    if expected is None:
        net = ipaddress.ip_network(network)
        expected = sorted(net.address_exclude(ipaddress.ip_network(protected[0])))
        expected = [str(n) for n in expected]
    assert got == expected
    assert not any(_cidr.RangeSet(got).contains_text(p) for p in protected)


@pytest.mark.parametrize(
    "ranges, holes, expected",
    [
        ([(0, 10)], [(3, 4)], [(0, 2), (5, 10)]),
        ([(0, 10)], [(0, 10)], []),
        ([(0, 10)], [(11, 20)], [(0, 10)]),
        ([(5, 10)], [(0, 5), (10, 12)], [(6, 9)]),
        ([(0, 3), (8, 12)], [(2, 9)], [(0, 1), (10, 12)]),
        ([(0, 100)], [(10, 10), (20, 30), (99, 200)], [(0, 9), (11, 19), (31, 98)]),
    ],
)
def test_subtract_ranges(ranges, holes, expected):
    assert _cidr.subtract_ranges(ranges, holes) == expected


@pytest.mark.parametrize(
    "ranges, others, expected",
    [([(0, 10)], [(5, 20)], [(5, 10)]), ([(0, 3), (6, 9)], [(2, 7)], [(2, 3), (6, 7)]), ([(0, 1)], [(2, 3)], [])],
)
def test_intersect_ranges(ranges, others, expected):
    assert _cidr.intersect_ranges(ranges, others) == expected


def test_rangeset_queries():
    rs = _cidr.RangeSet(["10.0.0.0/8", "192.0.2.5", "2001:db8::/32"])
    assert rs.contains(*_cidr.parse_address("10.1.2.3"))
    assert not rs.contains(*_cidr.parse_address("11.0.0.0"))
    assert rs.contains_text("192.0.2.5/32")
    assert not rs.contains_text("192.0.2.0/24")
    assert rs.contains_text("2001:db8:1::/48")
    _v, s, e = _cidr.parse_cidr("192.0.2.0/24")
    assert rs.overlapping(4, s, e) == [(s + 5, s + 5)]
    assert not _cidr.RangeSet([])


@pytest.mark.parametrize(
    "allow, inside, outside",
    [
        ([], ["127.0.0.1", "10.1.1.1", "::1", "fe80::1", "203.0.113.9", "224.0.0.1"], ["8.8.8.8", "2a00::1"]),
        (["documentation"], ["127.0.0.1"], ["203.0.113.9", "2001:db8::1"]),
        (["loopback"], ["10.0.0.1"], ["127.0.0.2", "::1"]),
        (["127.0.0.0/24"], ["127.0.1.1"], ["127.0.0.5"]),
    ],
)
def test_special_cidrs(allow, inside, outside):
    rs = _cidr.RangeSet(ranges=_cidr.special_cidrs(allow))
    for text in inside:
        assert rs.contains(*_cidr.parse_address(text)), text
    for text in outside:
        assert not rs.contains(*_cidr.parse_address(text)), text


def test_mapped_range_does_not_swallow_ipv4():
    rs = _cidr.RangeSet(ranges=_cidr.special_cidrs())
    assert not rs.contains(4, _cidr.parse_address("8.8.8.8")[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), max_size=30))
def test_collapse_equals_stdlib(pairs):
    nets = [str(ipaddress.ip_network((addr, plen), strict=False)) for addr, plen in pairs]
    expected = [str(n) for n in ipaddress.collapse_addresses(ipaddress.ip_network(n) for n in nets)]
    assert _cidr.collapse(nets)["ipv4"] == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**16 - 1), st.integers(16, 32)), max_size=10),
    st.lists(st.tuples(st.integers(0, 2**16 - 1), st.integers(16, 32)), max_size=10),
)
def test_subtract_covers_exactly_the_difference(cands, holes):
    def nets(pairs):
        return [str(ipaddress.ip_network((a << 8, p), strict=False)) for a, p in pairs]

    got = _cidr.to_ranges(nets(cands))[4]
    hole = _cidr.to_ranges(nets(holes))[4]
    result = _cidr.subtract_ranges(got, hole)
    assert _cidr.intersect_ranges(result, hole) == []
    assert _cidr.count_addresses(result) + _cidr.count_addresses(_cidr.intersect_ranges(got, hole)) == (
        _cidr.count_addresses(got)
    )


def test_bulk_ranges_parses_fast_and_long_spellings():
    texts = ["192.0.2.7/24", "192.0.2.9", "2001:db8::1/32", "::ffff:192.0.2.1", "192.0.2.0/024", "bad"]
    raw, errors = _cidr.bulk_ranges(texts)
    assert raw[4] == [(0xC0000200, 0xC00002FF), (0xC0000209, 0xC0000209), (0xC0000201, 0xC0000201)] + [
        (0xC0000200, 0xC00002FF)
    ]
    assert raw[6] == [(0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1))]
    assert len(errors) == 1 and "bad" in errors[0]


def test_merge_and_subtract_give_tuples_whatever_pairs_come_in():
    merged = _cidr.merge_ranges([[5, 6], [1, 2], (3, 3)])
    assert merged == [(1, 3), (5, 6)] and all(isinstance(r, tuple) for r in merged)
    rest = _cidr.subtract_ranges([[1, 10], [20, 30]], [(5, 6)])
    assert rest == [(1, 4), (7, 10), (20, 30)] and all(isinstance(r, tuple) for r in rest)
