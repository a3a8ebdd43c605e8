# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdb_writer import build, country

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr, _mmdb, _plan

T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def client(hits, offenses, first="2026-01-01T00:00:00Z", last="2026-01-01T01:00:00Z"):
    return {
        "hits": hits,
        "offenses": {"missing_script": offenses} if offenses else {},
        "first_seen": first,
        "last_seen": last,
        "statuses": {"404": hits},
    }


def stats(clients, networks=None, total=None):
    out = {
        "summary": {"lines": 1},
        "clients": clients,
        "clients_total": total or len(clients),
        "pages": {},
        "days": {},
        "referers": {},
    }
    if networks is not None:
        out["networks"] = networks
    return out


def spread(prefix, count, servers, hits=2, *, offenses=1, start=1):
    """``count`` offending addresses in ``prefix``.0/24, dealt round-robin to ``servers`` hosts."""
    per = [{} for _i in range(servers)]
    for i in range(count):
        per[i % servers]["%s.%d" % (prefix, start + i)] = client(hits, offenses)
    return per


def fleet(*per_server_lists):
    merged = {}
    for lst in per_server_lists:
        for i, clients in enumerate(lst):
            merged.setdefault("web%d" % (i + 1), {}).update(clients)
    return {host: stats(c) for host, c in merged.items()}


def protection(trusted=(), special=True, allow=(), geo=None, countries=()):
    sources = [("trusted", list(trusted))]
    if special:
        sources.append(
            (
                "special",
                _cidr.RangeSet(ranges=_cidr.special_cidrs(allow)).to_cidrs()["ipv4"]
                + _cidr.RangeSet(ranges=_cidr.special_cidrs(allow)).to_cidrs()["ipv6"],
            )
        )
    return _plan.Protection(sources, geo=geo, countries=countries)


OPTS = {"levels": {"24": {}}}


@pytest.mark.parametrize(
    "hosts, hits, expected",
    [
        (30, 2, ["45.1.2.0/24"]),  # the report's rule: >= 50 hits and >= 30 hosts
        (29, 2, []),  # one host short
        (30, 1, []),  # 30 hits only
        (50, 1, ["45.1.2.0/24"]),
    ],
)
def test_report_rule_over_the_fleet(hosts, hits, expected):
    # no single server sees 30 hosts: only the fleet view passes the threshold
    data = fleet(spread("45.1.2", hosts, 3, hits=hits))
    result, _state = _plan.build_plan(data, protection(), OPTS, now=T0)
    assert result["blocklist"]["ipv4"] == expected
    if expected:
        entry = result["entries"][0]
        assert entry["reason"] == "network/24"
        assert entry["hosts"] == hosts
        assert entry["hits"] == hosts * hits
        assert entry["servers"] == ["web1", "web2", "web3"]
        assert entry["first_seen"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "levels, offenses, servers, expected",
    [
        ({"address": {"min_offenses": 5}}, 5, 1, ["45.9.9.9/32"]),
        ({"address": {"min_offenses": 5}}, 4, 1, []),
        ({"address": {"min_offenses": 4, "min_servers": 2}}, 2, 2, ["45.9.9.9/32"]),  # 2 + 2 over two servers
        ({"address": {"min_offenses": 4, "min_servers": 3}}, 2, 2, []),
        ({"24": {}}, 50, 1, []),  # the address level is off
    ],
)
def test_address_level(levels, offenses, servers, expected):
    data = {"web%d" % i: stats({"45.9.9.9": client(10, offenses)}) for i in range(servers)}
    result, _state = _plan.build_plan(data, protection(), {"levels": levels}, now=T0)
    assert result["blocklist"]["ipv4"] == expected


def test_networks_from_offender_stats_are_used_when_clients_are_capped():
    # each server only lists its top client, but reports the /24 with 20 offending hosts of its own
    networks = {"24": {"45.7.7.0/24": {"hits": 40, "offenses": 40, "hosts": 20, "offending_hosts": 20}}}
    data = {
        "web1": stats({"45.7.7.1": client(5, 5)}, networks=networks, total=20),
        "web2": stats({"45.7.7.2": client(5, 5)}, networks=networks, total=20),
    }
    result, _s = _plan.build_plan(data, protection(), {"levels": {"24": {"min_hits": 50, "min_hosts": 20}}}, now=T0)
    assert result["blocklist"]["ipv4"] == ["45.7.7.0/24"]
    assert result["entries"][0]["hits"] == 80
    assert result["summary"]["clients_capped"] is True
    assert any("capped" in w for w in result["warnings"])


@pytest.mark.parametrize(
    "on_protected, trusted, expected",
    [
        ("split", ["45.1.2.77"], _cidr.address_exclude_text("45.1.2.0/24", ["45.1.2.77"])),
        ("split", ["45.1.2.0/25"], ["45.1.2.128/25"]),
        ("drop", ["45.1.2.77"], []),
        ("split", ["45.1.0.0/16"], []),
        ("split", ["45.1.3.1"], ["45.1.2.0/24"]),
    ],
)
def test_protected_addresses_are_never_pushed(on_protected, trusted, expected):
    data = fleet(spread("45.1.2", 40, 3))
    opts = dict(OPTS, on_protected=on_protected)
    result, _s = _plan.build_plan(data, protection(trusted=trusted), opts, now=T0)
    assert result["blocklist"]["ipv4"] == expected
    pushed = _cidr.RangeSet(result["blocklist"]["ipv4"])
    for text in trusted:
        _v, start, end = _cidr.parse_cidr(text)
        assert pushed.overlapping(4, start, end) == []
    if trusted != ["45.1.3.1"]:
        assert result["excluded"][0]["why"] == ["trusted"]


@pytest.mark.parametrize(
    "prefix, allow, planned",
    [
        ("10.1.2", (), False),
        ("127.0.5", (), False),
        ("203.0.113", (), False),
        ("203.0.113", ("documentation",), True),
        ("127.0.5", ("loopback",), True),
        ("192.168.1", ("loopback",), False),
    ],
)
def test_special_ranges(prefix, allow, planned):
    data = fleet(spread(prefix, 40, 2))
    result, _s = _plan.build_plan(data, protection(allow=allow), OPTS, now=T0)
    assert bool(result["blocklist"]["ipv4"]) is planned


def test_countries_from_mmdb(tmp_path):
    path = tmp_path / "geo.mmdb"
    path.write_bytes(build([("45.1.2.0/25", country("JP")), ("45.1.2.128/25", country("CN"))]))
    geo = _mmdb.Reader(str(path))
    data = fleet(spread("45.1.2", 200, 3))
    result, _s = _plan.build_plan(data, protection(geo=geo, countries=["jp"]), OPTS, now=T0)
    assert result["blocklist"]["ipv4"] == ["45.1.2.128/25"]
    assert result["excluded"][0]["why"] == ["country JP"]


@pytest.mark.parametrize(
    "levels, broadest, message",
    [
        ({"8": {}}, 16, "broader than the policy allows"),
        ({"48": {}}, 16, None),
        ({"12": {}}, 16, "unknown level"),
        ({"24": {"min_hitz": 3}}, 16, "unknown threshold"),
        ({"24": {"min_hits": "many"}}, 16, "must be an integer"),
        ({"8": {}}, 8, None),
    ],
)
def test_level_policy(levels, broadest, message):
    opts = {"levels": levels, "broadest_prefix": broadest}
    if message:
        with pytest.raises(_plan.PlanError, match=message):
            _plan.build_plan({}, protection(), opts, now=T0)
    else:
        result, _s = _plan.build_plan({}, protection(), opts, now=T0)
        assert result["blocklist"] == {"ipv4": [], "ipv6": []}


def test_sixteen_level_and_merge_stays_within_policy():
    per = []
    for third in range(0, 256, 8):
        per.extend(spread("45.2.%d" % third, 10, 1))
        per.extend(spread("45.3.%d" % third, 10, 1))
    clients = {}
    for c in per:
        clients.update(c)
    data = {"web1": stats(clients)}
    levels = {"16": {"min_hits": 100, "min_hosts": 100}}
    result, _s = _plan.build_plan(data, protection(), {"levels": levels}, now=T0)
    # 45.2.0.0/16 and 45.3.0.0/16 are adjacent: a /15 would be broader than the policy (/16)
    assert result["blocklist"]["ipv4"] == ["45.2.0.0/16", "45.3.0.0/16"]
    assert result["summary"]["networks"] == 2


def test_minimal_set_merges_adjacent_and_covered():
    data = fleet(spread("45.1.2", 40, 2), spread("45.1.3", 40, 2), [{"45.1.2.9": client(50, 50)}])
    levels = {"24": {}, "address": {"min_offenses": 5}}
    result, _s = _plan.build_plan(data, protection(), {"levels": levels}, now=T0)
    assert result["blocklist"]["ipv4"] == ["45.1.2.0/23"]
    assert sorted(e["cidr"] for e in result["entries"]) == ["45.1.2.0/24", "45.1.3.0/24"]


def test_ipv6_levels():
    per = {}
    for i in range(1, 8):
        per["2a00:1:2:3::%x" % i] = client(10, 2)
    per["2a00:9::1"] = client(10, 9)
    data = {"web1": stats(per)}
    levels = {"64": {"min_hits": 50, "min_hosts": 5}, "address": {"min_offenses": 5}}
    result, _s = _plan.build_plan(data, protection(), {"levels": levels}, now=T0)
    assert result["blocklist"]["ipv6"] == ["2a00:1:2:3::/64", "2a00:9::1/128"]


def test_max_entries_fails_before_anything_is_pushed():
    data = {"web1": stats({"45.9.9.%d" % i: client(9, 9) for i in range(1, 20, 2)})}
    opts = {"levels": {"address": {}}, "max_entries": 5}
    with pytest.raises(_plan.PlanError, match="10 ipv4 entries, more than max_entries"):
        _plan.build_plan(data, protection(), opts, now=T0)


def test_summary_figures():
    extra = [{"45.8.8.8": client(9, 9), "45.8.8.9": client(3, 0)}]
    data = fleet(spread("45.1.2", 40, 2), spread("45.1.5", 10, 2), extra)
    levels = {"24": {}, "address": {"min_offenses": 5}}
    result, _s = _plan.build_plan(data, protection(), {"levels": levels}, now=T0)
    summary = result["summary"]
    assert summary["offending_hosts"] == 51  # 40 + 10 + 1; 45.8.8.9 has no offense
    assert summary["hosts_covered"] == 41
    assert summary["drop_rate"] == round(41 / 51, 4)
    assert summary["networks"] == 1
    assert summary["hosts_in_networks"] == 40
    assert summary["addresses"] == 1
    assert summary["servers"] == 2


def test_bad_results_are_skipped_with_a_warning():
    data = {"web1": {"failed": True, "msg": "boom"}, "web2": "junk", "web3": stats({"not-an-ip": client(1, 1)})}
    result, _s = _plan.build_plan(data, protection(), OPTS, now=T0)
    assert result["summary"]["servers"] == 1
    assert len(result["warnings"]) == 3


def test_state_expiry_and_refresh(tmp_path):
    data = fleet(spread("45.1.2", 40, 2))
    opts = dict(OPTS, expire_after="30d")
    result, state = _plan.build_plan(data, protection(), opts, now=T0)
    assert result["added"] == ["45.1.2.0/24"]
    entry = state["entries"]["45.1.2.0/24"]
    assert entry["added"] == "2026-01-01T00:00:00Z"
    assert entry["expires"] == "2026-01-31T00:00:00Z"
    # ten days later, no evidence: kept, nothing changes
    result, state = _plan.build_plan({}, protection(), opts, state=state, now=T0 + 10 * DAY)
    assert result["blocklist"]["ipv4"] == ["45.1.2.0/24"] and not result["changed"]
    # seen again on day 20: expiry moves on
    result, state = _plan.build_plan(data, protection(), opts, state=state, now=T0 + 20 * DAY)
    assert state["entries"]["45.1.2.0/24"]["expires"] == "2026-02-20T00:00:00Z"
    assert state["entries"]["45.1.2.0/24"]["added"] == "2026-01-01T00:00:00Z"
    # day 51: expired
    result, state = _plan.build_plan({}, protection(), opts, state=state, now=T0 + 51 * DAY)
    assert result["blocklist"]["ipv4"] == []
    assert result["removed"] == ["45.1.2.0/24"] and result["expired"] == ["45.1.2.0/24"]
    assert state["entries"] == {}


def test_state_file_atomic_and_previous_kept(tmp_path):
    path = str(tmp_path / "sub" / "state.json")
    assert _plan.load_state(path)["entries"] == {}
    _plan.save_state(path, {"version": 1, "entries": {"a": 1}})
    _plan.save_state(path, {"version": 1, "entries": {"b": 2}})
    assert read_json(path)["entries"] == {"b": 2}
    assert read_json(path + ".prev")["entries"] == {"a": 1}
    assert [n for n in os.listdir(str(tmp_path / "sub")) if n.endswith(".tmp")] == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "cannot read"),
        ('{"x": 1}', "not a blocklist state"),
        # edited by hand: an error that names the field, not a traceback
        ('{"entries": {"203.0.113.0/24": null}}', 'entries["203.0.113.0/24"] is null, not a mapping'),
        ('{"entries": {"203.0.113.0/24": {"hits": "x"}}}', 'entries["203.0.113.0/24"].hits is "x"'),
        ('{"entries": {"203.0.113.0/24": {"expires": "soon"}}}', '.expires is "soon", not a time'),
        ('{"entries": {"203.0.113.0/24": {"servers": [1]}}}', ".servers is [1]"),
        ('{"entries": {"203.0.113.0/24": {"manual": {"at": 5}}}}', ".manual.at is 5"),
        ('{"entries": {}, "unbanned": {"x": {}}}', 'unbanned["x"] is not an address or network'),
        ('{"entries": {}, "unbanned": []}', "unbanned is [], not a mapping"),
        ('{"entries": {}, "blocklist": {"ipv4": "1.2.3.4"}}', "blocklist is"),
    ],
)
def test_corrupt_state_file(tmp_path, content, message):
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(_plan.PlanError, match=re.escape(message)):
        _plan.load_state(str(path))


def test_manual_ban_and_unban():
    opts = {"levels": {"24": {}}, "ban": ["45.20.1.1", "2a00:5::/64"], "who": "alice", "comment": "report 2"}
    result, state = _plan.build_plan({}, protection(), opts, now=T0)
    assert result["blocklist"] == {"ipv4": ["45.20.1.1/32"], "ipv6": ["2a00:5::/64"]}
    entry = state["entries"]["45.20.1.1/32"]
    assert entry["reason"] == "manual" and entry["manual"]["by"] == "alice" and entry["expires"] is None
    # manual bans do not expire by default
    result, state = _plan.build_plan({}, protection(), {"levels": {"24": {}}}, state=state, now=T0 + 400 * DAY)
    assert result["blocklist"]["ipv4"] == ["45.20.1.1/32"]
    result, state = _plan.build_plan({}, protection(), {"unban": ["45.20.1.1"], "who": "bob"}, state=state, now=T0)
    assert result["blocklist"]["ipv4"] == [] and result["removed"] == ["45.20.1.1/32"]
    assert state["unbanned"]["45.20.1.1/32"]["by"] == "bob"


def test_unban_holds_against_automatic_planning():
    data = fleet(spread("45.1.2", 40, 2))
    result, state = _plan.build_plan(data, protection(), dict(OPTS, unban=["45.1.2.7"]), now=T0)
    assert "45.1.2.7/32" not in result["blocklist"]["ipv4"]
    assert not _cidr.RangeSet(result["blocklist"]["ipv4"]).contains(4, _cidr.parse_address("45.1.2.7")[1])
    assert len(result["blocklist"]["ipv4"]) == 8  # the /24 split around one address


@pytest.mark.parametrize(
    "ban, message",
    [
        (["127.0.0.1"], "protected address \\(special\\)"),
        (["45.1.0.0/16"], "protected address \\(trusted\\)"),
        (["45.0.0.0/8"], "broader than the policy"),
        (["nonsense"], "ban: not an IPv4"),
    ],
)
def test_manual_ban_refuses_protected(ban, message):
    with pytest.raises(_plan.PlanError, match=message):
        _plan.build_plan({}, protection(trusted=["45.1.2.3"]), {"ban": ban}, now=T0)


@pytest.mark.parametrize(
    "value, seconds",
    [(3600, 3600), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600), ("0", 0), (" 7 d ", None)],
)
def test_parse_duration(value, seconds):
    if seconds is None:
        assert _plan.parse_duration(value) == 7 * DAY
    else:
        assert _plan.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "1y", True, "-1d"])
def test_parse_duration_rejects(value):
    with pytest.raises(_plan.PlanError, match="duration"):
        _plan.parse_duration(value)


@pytest.mark.parametrize(
    "text, epoch",
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T09:00:00+09:00", T0),
        ("2026-01-01 00:00:00", T0),
        ("2026-01-01", T0),
        (T0, T0),
        (str(T0), T0),
    ],
)
def test_parse_time(text, epoch):
    assert _plan.parse_time(text) == epoch


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30T00:00:00Z", "yesterday"])
def test_parse_time_refuses_what_is_not_a_time(text):
    with pytest.raises(_plan.PlanError, match="cannot read the time %r" % text):
        _plan.parse_time(text)


def test_counts_of_a_server_that_are_not_numbers_count_nothing():
    """A result that offender_stats did not write (hits as text, a client that is not a mapping, a network's
    counts that are not numbers) is planned without a traceback: what is not a number counts 0."""
    clients = {"203.0.113.%d" % i: client(2, 1) for i in range(1, 40)}
    clients["203.0.113.200"] = dict(client(2, 1), hits="many")
    clients["203.0.113.201"] = "x"
    plan, _state = _plan.build_plan({"web1": stats(clients)}, protection(special=False), OPTS, now=T0)
    assert [e["cidr"] for e in plan["entries"]] == ["203.0.113.0/24"]  # 39 clients with 2 hits each
    # the server's own network table is what counts for its /24: with no number in it, nothing is planned
    bad_table = {"24": {"203.0.113.0/24": {"hits": "x", "hosts": 1.5, "offending_hosts": None}}}
    plan, _state = _plan.build_plan(
        {"web1": stats(clients, networks=bad_table)}, protection(special=False), OPTS, now=T0
    )
    assert plan["entries"] == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 254), st.integers(1, 20)), min_size=1, max_size=200),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 255)), max_size=5),
)
def test_property_nothing_protected_is_ever_planned(hits, trusted):
    clients = {}
    for third, last, n in hits:
        clients["45.1.%d.%d" % (third, last)] = client(n, n)
    trusted_cidrs = ["45.1.%d.%d" % t for t in trusted]
    levels = {"24": {"min_hits": 10, "min_hosts": 3}, "address": {"min_offenses": 5}}
    result, _s = _plan.build_plan({"w": stats(clients)}, protection(trusted=trusted_cidrs), {"levels": levels}, now=T0)
    pushed = _cidr.RangeSet(result["blocklist"]["ipv4"])
    for text in trusted_cidrs:
        assert not pushed.contains(*_cidr.parse_address(text))
    # minimal: collapsing the plan again changes nothing
    assert _cidr.collapse(result["blocklist"]["ipv4"], min_prefix4=16)["ipv4"] == result["blocklist"]["ipv4"]


def test_first_and_last_seen_compare_instants_across_server_time_zones():
    """Servers write their local time: 10:30+02:00 is before 09:00+00:00, whatever the text says."""
    data = {
        "web1": stats({"45.7.7.7": client(3, 5, first="2026-01-01T10:30:00+02:00", last="2026-01-01T12:00:00+02:00")}),
        "web2": stats({"45.7.7.7": client(3, 5, first="2026-01-01T09:00:00+00:00", last="2026-01-01T10:30:00+00:00")}),
    }
    opts = {"levels": {"address": {"min_offenses": 5}}}
    result, _state = _plan.build_plan(data, protection(), opts, now=T0 + DAY)
    entry = result["entries"][0]
    assert entry["first_seen"] == "2026-01-01T10:30:00+02:00"  # 08:30 UTC
    assert entry["last_seen"] == "2026-01-01T10:30:00+00:00"  # 10:30 UTC, after 10:00 UTC


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("2026-01-01T10:00:00+01:00", "2026-01-01T09:30:00+00:00", True),
        ("2026-01-01T09:30:00+00:00", "2026-01-01T10:00:00+01:00", False),
        ("2026-01-01T09:00:00Z", "2026-01-01T09:00:00+00:00", True),
        ("2026-01-01T09:00:00+01:00", "2026-01-01T09:00:01+01:00", True),
        ("2026-01-01T09:59:59Z", "2026-01-01T10:00:00Z", True),
        ("2026-01-01T10:00:00Z", "2026-01-01T09:59:59Z", False),
        ("not a time", "still not", True),  # unreadable: text order, no error
    ],
)
def test_time_texts_compare_as_instants(a, b, expected):
    assert _plan._not_later(a, b) is expected
