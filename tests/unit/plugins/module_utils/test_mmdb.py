# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from mmdb_writer import build, country, encode, pointer

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr, _mmdb

NETWORKS = [
    ("203.0.113.0/25", country("JP")),
    ("203.0.113.128/26", country("US")),
    ("198.51.100.0/24", {"registered_country": {"iso_code": "de"}}),
    ("2001:db8:1::/48", country("FR")),
]


@pytest.fixture(params=[(6, 24), (6, 28), (6, 32), (4, 28)], ids=lambda p: "v%d-r%d" % p)
def db(request, tmp_path):
    ip_version, record_size = request.param
    nets = [n for n in NETWORKS if ip_version == 6 or ":" not in n[0]]
    path = tmp_path / "test.mmdb"
    path.write_bytes(build(nets, ip_version=ip_version, record_size=record_size))
    return _mmdb.Reader(str(path))


@pytest.mark.parametrize(
    "address, code, prefix",
    [
        ("203.0.113.1", "JP", 25),
        ("203.0.113.127", "JP", 25),
        ("203.0.113.130", "US", 26),
        ("203.0.113.200", None, None),
        ("198.51.100.77", "DE", 24),
        ("192.0.2.1", None, None),
    ],
)
def test_lookup_ipv4(db, address, code, prefix):
    record, plen = db.lookup(address)
    assert _mmdb.country_of(record) == code
    if code:
        assert plen == prefix


def test_lookup_ipv6(tmp_path):
    path = tmp_path / "v6.mmdb"
    path.write_bytes(build(NETWORKS, ip_version=6, record_size=28))
    reader = _mmdb.Reader(str(path))
    assert _mmdb.country_of(reader.lookup("2001:db8:1:2::5")[0]) == "FR"
    assert reader.lookup("2001:db8:2::1")[0] is None
    assert reader.metadata["database_type"] == "Webshield-Test-Country"


def test_ipv6_lookup_in_ipv4_database_fails_clearly(tmp_path):
    path = tmp_path / "v4.mmdb"
    path.write_bytes(build(NETWORKS[:3], ip_version=4))
    with pytest.raises(_mmdb.MmdbError, match="IPv4-only"):
        _mmdb.Reader(str(path)).lookup("2001:db8::1")


def test_networks_within(db):
    _v, start, _e = _cidr.parse_cidr("203.0.113.0/24")
    found = sorted((_cidr.format_cidr(4, s, p), _mmdb.country_of(r)) for s, p, r in db.networks_within(4, start, 24))
    assert found == [("203.0.113.0/25", "JP"), ("203.0.113.128/26", "US")]
    # a query inside one record yields the query network itself
    _v, start, _e = _cidr.parse_cidr("203.0.113.16/28")
    assert [(p, _mmdb.country_of(r)) for _s, p, r in db.networks_within(4, start, 28)] == [(28, "JP")]
    # nothing there
    _v, start, _e = _cidr.parse_cidr("192.0.2.0/24")
    assert list(db.networks_within(4, start, 24)) == []


@pytest.mark.parametrize(
    "value",
    [0, 1, 300, 70000, 2**40, 2**100, -5, True, False, 1.5, "x" * 40, "y" * 300, "z" * 70000, b"\x00\x01", [1, "a"]],
)
def test_decoder_round_trip(value):
    raw = encode({"v": value})
    decoded, end = _mmdb._Decoder(raw, 0).decode(0)
    assert decoded == {"v": value}
    assert end == len(raw)


@pytest.mark.parametrize("target", [5, 3000, 600000])
def test_decoder_follows_pointers(target):
    payload = encode("hello")
    buf = b"\x00" * target + payload
    raw = encode("k")[:0] + bytes([0xE1]) + encode("k") + pointer(target)  # map of one pair, value is a pointer
    decoded, end = _mmdb._Decoder(buf + raw, 0).decode(len(buf))
    assert decoded == {"k": "hello"}
    assert end == len(buf) + len(raw)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a database", "no metadata marker"),
        (b"\x00" * 10 + _mmdb.METADATA_MARKER + encode({"node_count": 1}), "metadata lacks"),
        (
            b"\x00" * 10
            + _mmdb.METADATA_MARKER
            + encode({"node_count": 100, "record_size": 24, "ip_version": 6, "binary_format_major_version": 2}),
            "truncated",
        ),
        (
            _mmdb.METADATA_MARKER + encode({"node_count": 1, "record_size": 20, "ip_version": 6}),
            "unsupported record size",
        ),
    ],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.mmdb"
    path.write_bytes(content)
    with pytest.raises(_mmdb.MmdbError, match=message):
        _mmdb.Reader(str(path))


def test_missing_file_names_it(tmp_path):
    with pytest.raises(_mmdb.MmdbError, match="cannot read .*nope.mmdb"):
        _mmdb.Reader(str(tmp_path / "nope.mmdb"))
