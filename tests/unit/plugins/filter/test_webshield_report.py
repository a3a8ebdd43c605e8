"""Unit tests of the report filters (model, CSV, script-safe JSON)."""

import csv
import io
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetguard.webshield.plugins.filter import webshield_report as mod


def stats(*, clients=None, days=None, pages=None, networks=None, referers=None, summary=None, **extra):
    result = {
        "summary": summary or {"lines": 10, "malformed": 1, "files": 1, "first": "2025-03-01T00:00:00Z"},
        "clients": clients or {},
        "days": days or {},
        "pages": pages or {},
        "networks": networks or {},
        "referers": referers or {},
    }
    result.update(extra)
    return result


def client(hits, offenses=None, first="", last="", **extra):
    row = {"hits": hits, "offenses": offenses or {}, "first_seen": first, "last_seen": last}
    row.update(extra)
    return row


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ""),
        (12, "12"),
        ("plain", "plain"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("nul\x00", "nul\\x00"),
        ("tab\tkept", "tab\tkept"),
        ("line\u2028sep", "line\\u2028sep"),
        (b"\xff\xfeok", "\\xff\\xfeok"),
        ("x" * 3000, "x" * 1999 + "\u2026"),
    ],
)
def test_text_is_displayable(value, expected):
    assert mod._text(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"/a": 3, "/b": {"hits": 2}}, [("/a", {"hits": 3}), ("/b", {"hits": 2})]),
        ([{"page": "/a", "hits": 3}], [("/a", {"page": "/a", "hits": 3})]),
        ([["/a", 4]], [("/a", {"hits": 4})]),
        ([{"nope": 1}], []),
        ("garbage", []),
    ],
)
def test_pairs_accepts_the_usual_shapes(value, expected):
    assert mod._pairs(value, ("page",)) == expected


@pytest.mark.parametrize(
    "offenses, expected",
    [
        ({"flood": 3, "fail2ban": 0}, {"flood": 3}),
        (5, {"total": 5}),
        (0, {}),
        ({"missing_script": "2"}, {"missing_script": 2}),
    ],
)
def test_offenses_normalised(offenses, expected):
    assert mod._offenses(offenses) == expected


def test_fleet_merges_servers():
    results = {
        "web1": stats(
            clients={"192.0.2.1": client(5, {"flood": 5}, "2025-03-02T10:00:00Z", "2025-03-02T11:00:00Z")},
            days={"2025-03-02": {"hits": 5, "offenses": {"flood": 5}, "clients": ["192.0.2.1"]}},
        ),
        "web2": stats(
            clients={"192.0.2.1": client(7, {"missing_script": 2}, "2025-03-01T10:00:00Z", "2025-03-01T12:00:00Z")},
            days={"2025-03-02": {"hits": 7, "offenses": {"missing_script": 2}, "clients": ["192.0.2.1"]}},
        ),
    }
    model = mod.webshield_report(results, generated="now")
    fleet = model["scopes"][0]
    assert [s["name"] for s in model["scopes"]] == ["Fleet", "web1", "web2"]
    row = fleet["clients"][0]
    assert row["hits"] == 12
    assert row["detectors"] == {"flood": 5, "missing_script": 2}
    assert row["offenses"] == 7
    assert row["first_seen"] == "2025-03-01T10:00:00Z"
    assert row["last_seen"] == "2025-03-02T11:00:00Z"
    assert row["servers"] == ["web1", "web2"]
    assert fleet["days"] == [
        {"day": "2025-03-02", "hits": 12, "offenses": 7, "detectors": {"flood": 5, "missing_script": 2}, "clients": 1}
    ]
    assert model["summary"]["lines"] == 20
    assert model["summary"]["malformed"] == 2
    assert model["summary"]["total_offending_hosts"] == 1


@pytest.mark.parametrize(
    "plan",
    [
        {"blocklist": {"ipv4": [{"cidr": "198.51.100.0/24", "hits": 60, "hosts": 31}], "ipv6": ["2001:db8::/64"]}},
        {"blocklist": ["198.51.100.0/24", "2001:db8::/64"], "evidence": {"198.51.100.0/24": {"hits": 60, "hosts": 31}}},
        {"plan": {"entries": [{"network": "198.51.100.0/24", "evidence": {"hits": 60, "hosts": 31}}, "2001:db8::/64"]}},
    ],
)
def test_plan_shapes_give_the_same_entries(plan):
    results = {"w": stats(clients={"198.51.100.9": client(3, {"open_redirect": 3}), "192.0.2.5": client(1)})}
    model = mod.webshield_report(results, plan)
    entries = {e["cidr"]: e for e in model["blocklist"]["entries"]}
    assert set(entries) == {"198.51.100.0/24", "2001:db8::/64"}
    assert (entries["198.51.100.0/24"]["hits"], entries["198.51.100.0/24"]["hosts"]) == (60, 31)
    assert entries["2001:db8::/64"]["family"] == "ipv6"
    blocked = {c["address"]: c["blocked_by"] for c in model["scopes"][0]["clients"]}
    assert blocked == {"198.51.100.9": "198.51.100.0/24", "192.0.2.5": ""}


@pytest.mark.parametrize(
    "summary, expected",
    [
        (
            {"total_offending_hosts": 20226, "hosts_covered": 3001, "networks": 55, "network_hosts": 14080},
            {
                "total_offending_hosts": 20226,
                "hosts_covered": 3001,
                "drop_rate": 0.148,
                "networks": 55,
                "network_hosts": 14080,
            },
        ),
        (
            {"offending_hosts": 10, "covered_hosts": 5, "drop_rate": 0.5},
            {"total_offending_hosts": 10, "hosts_covered": 5, "drop_rate": 0.5},
        ),
    ],
)
def test_plan_summary_figures(summary, expected):
    model = mod.webshield_report({}, {"blocklist": [], "summary": summary})
    for key, value in expected.items():
        assert model["summary"][key] == value


def test_state_fills_gaps_and_added_marked():
    plan = {"blocklist": ["203.0.113.0/24", "192.0.2.0/24"], "added": ["192.0.2.0/24"], "removed": ["198.51.100.0/25"]}
    state = {"entries": {"203.0.113.0/24": {"first_seen": "2025-01-01", "expires": "2025-02-01"}}}
    model = mod.webshield_report({}, plan, state)
    entries = {e["cidr"]: e for e in model["blocklist"]["entries"]}
    assert entries["203.0.113.0/24"]["expires"] == "2025-02-01"
    assert entries["203.0.113.0/24"]["status"] == "kept"
    assert entries["192.0.2.0/24"]["status"] == "added"
    assert model["blocklist"]["removed"] == ["198.51.100.0/25"]


@pytest.mark.parametrize(
    "result, warning",
    [
        ({"failed": True, "msg": "cannot read /var/log/apache2/access.log: Permission denied"}, "Permission denied"),
        ("unreachable", "no offender_stats result"),
        ({"failed": False, "msg": "cannot read /x: Permission denied", "rc": 1}, "failed: cannot read /x"),
        ({"skipped": True, "changed": False}, "did not run"),
        (stats(warnings=["glob /x/*.log matched nothing"]), "matched nothing"),
    ],
)
def test_bad_host_results_become_warnings(result, warning):
    model = mod.webshield_report({"web1": result})
    assert any(warning in w and w.startswith("web1: ") for w in model["warnings"])


def test_values_of_other_shapes_make_a_report_not_a_traceback():
    """Results and plans not written by the collection (a number where a list belongs, NaN or infinite
    counts) are shown as far as they go."""
    result = stats(
        clients={"192.0.2.1": client(float("nan"), {"flood": float("inf")}, servers=5)},
        files=3.5,
        warnings="not a list",
        summary={"lines": float("inf"), "files": 1},
    )
    plan = {"blocklist": {"ipv4": 7}, "excluded": 1, "entries": [{"cidr": "192.0.2.0/24", "hits": float("nan")}]}
    model = mod.webshield_report({"web1": result}, plan)
    fleet = model["scopes"][0]
    assert fleet["clients"][0]["address"] == "192.0.2.1" and fleet["clients"][0]["hits"] == 0
    assert model["blocklist"]["entries"][0]["hits"] == 0
    json.dumps(model)


def test_unparsable_blocklist_entry_is_warned():
    model = mod.webshield_report({}, {"blocklist": ["not-a-network"]})
    assert model["blocklist"]["entries"][0]["cidr"] == "not-a-network"
    assert "not an address or network" in model["warnings"][0]


def test_drill_down_per_day_with_details():
    days = {
        "2025-03-10": {
            "hits": 9,
            "pages": {
                "/sw.js": {"hits": 8, "clients": {"192.0.2.77": 8}},
                "/": {"hits": 1, "clients": {"10.0.0.1": 1}},
            },
        }
    }
    clients = {
        "192.0.2.77": client(8, {"flood": 8}, referers={"http://r.example/": 8}, lines=["l1", "l2"]),
        "10.0.0.1": client(1),
    }
    model = mod.webshield_report({"w": stats(clients=clients, days=days)}, lines=1)
    drill = model["scopes"][1]["drill"]
    assert [d["day"] for d in drill["days"]] == ["2025-03-10"]
    assert [p["page"] for p in drill["days"][0]["pages"]] == ["/sw.js", "/"]
    assert drill["days"][0]["pages"][0]["clients"] == [{"address": "192.0.2.77", "hits": 8}]
    assert drill["details"]["192.0.2.77"]["referers"] == [{"referer": "http://r.example/", "hits": 8}]
    assert drill["details"]["192.0.2.77"]["lines"] == ["l1"]
    fleet_lines = model["scopes"][0]["drill"]["details"]["192.0.2.77"]["lines"]
    assert fleet_lines == ["[w] l1"]


def test_drill_down_without_per_day_pages_uses_all_days():
    clients = {"192.0.2.1": client(4, pages={"/a.cgi": 3, "/": 1}), "192.0.2.2": client(2, pages={"/a.cgi": 2})}
    pages = {"/a.cgi": {"hits": 5}, "/": {"hits": 1}}
    model = mod.webshield_report({"w": stats(clients=clients, pages=pages)})
    day = model["scopes"][1]["drill"]["days"][0]
    assert day["day"] == "all days"
    assert day["pages"][0]["page"] == "/a.cgi"
    assert day["pages"][0]["clients"] == [{"address": "192.0.2.1", "hits": 3}, {"address": "192.0.2.2", "hits": 2}]


def test_top_caps_tables_and_counts_the_rest():
    clients = {"192.0.2.%d" % i: client(i) for i in range(1, 11)}
    model = mod.webshield_report({"w": stats(clients=clients)}, top=3)
    scope = model["scopes"][1]
    assert [c["address"] for c in scope["clients"]] == ["192.0.2.10", "192.0.2.9", "192.0.2.8"]
    assert scope["truncated"]["clients"] == 7


@pytest.mark.parametrize(
    "args, message",
    [
        (("not a dict",), "expected a dict"),
        (({}, "plan"), "plan must be a dict"),
        (({}, None, None, {"top": 0}), "top must be >= 1"),
        (({}, None, None, {"top": "many"}), "must be integers"),
    ],
)
def test_bad_arguments_raise_clear_errors(args, message):
    kwargs = args[3] if len(args) > 3 else {}
    with pytest.raises(AnsibleFilterError, match=message):
        mod.webshield_report(*args[:3], **kwargs)


def test_chart_geometry():
    days = [{"day": "2025-03-%02d" % d, "hits": h, "offenses": h // 2} for d, h in ((1, 10), (2, 300), (3, 0))]
    chart = mod._chart(days)
    assert [b["day"] for b in chart["bars"]] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    tallest = max(chart["bars"], key=lambda b: b["h"])
    assert tallest["day"] == "2025-03-02"
    assert all(b["y"] + b["h"] == pytest.approx(chart["base"], abs=0.11) for b in chart["bars"])
    values = [t["value"] for t in chart["ticks"]]
    assert values == sorted(values) and values[0] == 0 and values[-1] >= 300


@pytest.mark.parametrize("table", sorted(mod.CSV_TABLES))
def test_csv_tables_have_their_header(table):
    model = mod.webshield_report(
        {"w": stats(clients={"192.0.2.1": client(1, {"flood": 1})})}, {"blocklist": ["192.0.2.0/24"]}
    )
    rows = list(csv.reader(io.StringIO(mod.webshield_report_csv(model, table))))
    assert tuple(rows[0]) == mod.CSV_TABLES[table]


@pytest.mark.parametrize(
    "cell, expected",
    [("=1+1", "'=1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("+x", "'+x"), ("-5", "-5"), ("-1.5", "-1.5"), ("plain", "plain")],
)
def test_csv_cells_cannot_start_formulas(cell, expected):
    assert mod._csv_cell(cell) == expected


def test_csv_rejects_unknown_table():
    with pytest.raises(AnsibleFilterError, match="unknown table"):
        mod.webshield_report_csv(mod.webshield_report({}), "nope")


@pytest.mark.parametrize(
    "value",
    ["</script><script>alert(1)</script>", "<!--", "a&b", "\u2028", {"k": "</SCRIPT>"}],
)
def test_jsonscript_cannot_close_the_script_element(value):
    text = mod.webshield_report_jsonscript(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_filter_module_exports():
    assert set(mod.FilterModule().filters()) == {
        "webshield_report",
        "webshield_report_csv",
        "webshield_report_jsonscript",
    }


def test_blocklist_plan_shape_with_collapsed_entries():
    # blocklist_plan: ``blocklist`` holds the collapsed CIDRs, ``entries`` the planned ones with evidence.
    plan = {
        "blocklist": {"ipv4": ["127.66.2.0/23"], "ipv6": []},
        "entries": [
            {"cidr": "127.66.2.0/24", "reason": "network/24", "hits": 90, "hosts": 45, "pushed": ["127.66.2.0/23"]},
            {"cidr": "127.66.3.0/24", "reason": "network/24", "hits": 90, "hosts": 45, "pushed": ["127.66.3.0/24"]},
            {"cidr": "127.77.0.0/24", "reason": "network/24", "pushed": ["127.77.0.0/25", "127.77.0.192/26"]},
        ],
        "added": ["127.66.2.0/23"],
        "summary": {"offending_hosts": 158, "hosts_covered": 158, "drop_rate": 1.0, "hosts_in_networks": 90},
    }
    model = mod.webshield_report({"w": stats(clients={"127.66.3.7": client(2, {"missing_script": 2})})}, plan)
    entries = model["blocklist"]["entries"]
    assert [e["cidr"] for e in entries] == ["127.66.2.0/24", "127.66.3.0/24", "127.77.0.0/24"]
    assert [e["status"] for e in entries] == ["added", "added", "kept"]
    assert [e["pushed_as"] for e in entries] == [["127.66.2.0/23"], [], ["127.77.0.0/25", "127.77.0.192/26"]]
    assert model["blocklist"]["pushed"] == ["127.66.2.0/23"]
    assert model["summary"]["entries"] == 1
    assert model["summary"]["network_hosts"] == 90
    assert model["scopes"][0]["clients"][0]["blocked_by"] == "127.66.3.0/24"


def test_counts_only_results_make_a_report():
    """offender_stats with client_detail=false (what blocklist_push.yml registers) can be given as
    report_results: clients without detail, the day's pages without clients."""
    days = {
        "2025-03-10": {
            "hits": 9,
            "offenses": 8,
            "clients": 2,
            "pages": {"/sw.js": {"hits": 8}, "/": {"hits": 1}},
        }
    }
    clients = {"192.0.2.77": client(8, {"flood": 8}), "10.0.0.1": client(1)}
    model = mod.webshield_report({"w": stats(clients=clients, days=days)})
    scope = model["scopes"][1]
    assert [(r["hits"], r["offenses"]) for r in scope["clients"]] == [(8, 8), (1, 0)]
    pages = scope["drill"]["days"][0]["pages"]
    assert [(p["page"], p["clients"]) for p in pages] == [("/sw.js", []), ("/", [])]
