# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""offender_stats detectors and aggregation, driven by the annotated sample logs in tests/fixtures/logs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import gzip
import json
import multiprocessing
import os
import signal
import sqlite3
import time
from collections import Counter

import compressors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fleetguard.webshield.plugins.module_utils import _plan, _stats, _stats_collect
from ansible_collections.fleetguard.webshield.plugins.module_utils._logformat import PRESETS
from ansible_collections.fleetguard.webshield.plugins.module_utils._stats_collect import collect

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "logs")


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Error-log and fail2ban times are host-local: run every test in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def options(**kw):
    opts = dict(
        access_logs=[],
        access_format="combined",
        error_logs=[],
        fail2ban_logs=[],
        fail2ban_db=None,
        detectors=list(_stats.DETECTORS),
        script_patterns=[r"^/cgi-bin/", r"\.(?:cgi|pl|php|py|sh|asp|aspx|jsp)$"],
        script_statuses=[404],
        redirect_paths=[],
        redirect_allow_hosts=["www.example.com"],
        flood_windows=[{"seconds": 60, "requests": 3}],
        tripwire_paths=["/wp-login.php", "/.env", "/cgi-bin/old.cgi"],
        tripwire_markers=[],
        fail2ban_ignore_jails=["recidive", "webshield-recidive"],
        state_file=None,
        missing="warn",
        top=0,
        top_pages=10,
        top_networks=0,
        prefixes=[24, 16],
        prefixes6=[64, 48],
        workers=1,
    )
    opts.update(kw)
    return opts


def run(**kw):
    result, _old, new_state, warnings = collect(options(**kw))
    return result, new_state, warnings


def failjson(name):
    """(expected charges per host, number of log lines, number of match:false lines) of a sample log."""
    expected = Counter()
    lines = nomatch = 0
    pending = None
    with open(os.path.join(FIXTURES, name), "rb") as fobj:
        for raw in fobj:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if text.startswith("# failJSON:"):
                pending = json.loads(text.split(":", 1)[1])
                continue
            if text.startswith("#"):
                continue
            lines += 1
            if pending is not None:
                if pending.get("match"):
                    expected[pending["host"]] += 1
                else:
                    nomatch += 1
            pending = None
    return expected, lines, nomatch


def charged(result, detector):
    return Counter(
        dict((c, info["offenses"][detector]) for c, info in result["clients"].items() if detector in info["offenses"])
    )


def log_lines(name):
    """The sample log without its comment lines (an access log has no comments)."""
    with open(os.path.join(FIXTURES, name), "rb") as fobj:
        return b"".join(line for line in fobj if not line.startswith(b"#"))


@pytest.mark.parametrize(
    "name, kind, detector",
    [
        ("webshield-noscript", "error_logs", "missing_script"),
        ("webshield-redirect", "access_logs", "open_redirect"),
        ("webshield-tripwire", "access_logs", "tripwire"),
        ("webshield-recidive", "fail2ban_logs", "fail2ban"),
    ],
)
def test_sample_log_charges_exactly_the_annotated_hosts(tmp_path, name, kind, detector):
    """A match:true line charges exactly its host under the detector; a match:false line charges nobody."""
    expected, _lines, _nomatch = failjson(name)
    path = tmp_path / name
    path.write_bytes(log_lines(name))
    result, _state, warnings = run(**{kind: [str(path)], "detectors": [detector]})
    assert warnings == []
    assert charged(result, detector) == expected
    assert result["summary"]["matched"] == sum(expected.values())


def test_flood_sample_log_charges_the_flooding_hosts(tmp_path):
    """Threshold of the header comment: more than 3 requests for one path within 60 s."""
    expected, _lines, _nomatch = failjson("webshield-flood")
    path = tmp_path / "access.log"
    path.write_bytes(log_lines("webshield-flood"))
    result, _state, _warnings = run(access_logs=[str(path)], detectors=["flood"])
    assert set(charged(result, "flood")) == set(expected)
    assert charged(result, "flood") == Counter({"203.0.113.30": 2, "2001:db8::30": 1})


@pytest.mark.parametrize(
    "name, malformed",
    [
        ("webshield-redirect", 1),  # the line that is not an access log line
        ("webshield-tripwire", 1),  # the truncated line
        ("webshield-flood", 3),  # truncated request, bad timestamp, HTML
    ],
)
def test_sample_access_logs_count_malformed_lines(tmp_path, name, malformed):
    path = tmp_path / name
    path.write_bytes(log_lines(name))
    result, _state, _warnings = run(access_logs=[str(path)])
    summary = result["summary"]
    assert summary["malformed"] == malformed
    assert summary["lines"] == failjson(name)[1]
    assert sum(c["hits"] for c in result["clients"].values()) == summary["lines"] - malformed


def test_injected_addresses_are_never_charged(tmp_path):
    """198.51.100.7 and 1.2.3.4 appear only inside URLs, referers, user agents and CGI messages."""
    for name, kind in (
        ("webshield-noscript", "error_logs"),
        ("webshield-redirect", "access_logs"),
        ("webshield-tripwire", "access_logs"),
        ("webshield-flood", "access_logs"),
    ):
        path = tmp_path / name
        path.write_bytes(log_lines(name))
        result, _state, _warnings = run(**{kind: [str(path)]})
        assert "198.51.100.7" not in result["clients"], name
        assert "1.2.3.4" not in result["clients"], name
        assert "203.0.113.99" not in result["clients"], name


def test_escaped_quotes_in_user_agent_still_count_the_request(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(log_lines("webshield-tripwire"))
    result, _state, _warnings = run(access_logs=[str(path)])
    assert result["clients"]["192.0.2.55"]["hits"] == 1
    assert result["clients"]["192.0.2.55"]["offenses"] == {}
    assert result["clients"]["198.51.100.23"]["offenses"] == {"tripwire": 1}


ACCESS = '%s - - [03/Feb/2021:10:%02d:%02d +0000] "GET %s HTTP/1.1" %d 100 "%s" "UA"\n'


ACCESS_UA = '192.0.2.7 - - [03/Feb/2021:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "%s"\n'


def access_line(client, minute, second, *, path="/", status=200, referer="-"):
    return ACCESS % (client, minute, second, path, status, referer)


@pytest.mark.parametrize(
    "content, malformed",
    [
        (b"\x00\x01\x02binary\xff\xfe\n", 1),
        (b'192.0.2.1 - - [03/Feb/2021:10:00:00 +0000] "GET /\xff\xfe HTTP/1.1" 200 1 "-" "UA"\n', 1),
        (b"", 0),
        (b"\n", 1),
        (b"x" * 100000 + b"\n", 1),
        (b"not a log line at all\n" * 3, 3),
        (b'hostname.example - - [03/Feb/2021:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "UA"\n', 1),
    ],
)
def test_bad_input_is_counted_not_fatal(tmp_path, content, malformed):
    path = tmp_path / "access.log"
    path.write_bytes(content + access_line("192.0.2.9", 1, 0).encode())
    result, _state, _warnings = run(access_logs=[str(path)])
    assert result["summary"]["malformed"] == malformed
    assert result["clients"]["192.0.2.9"]["hits"] == 1


def test_over_long_lines_are_malformed_in_error_logs(tmp_path):
    path = tmp_path / "error.log"
    long_line = b"[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.1] " + b"x" * 70000 + b"\n"
    path.write_bytes(
        long_line + b"[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.2] script not found or "
        b"unable to stat: /x.cgi\n"
    )
    result, _state, _warnings = run(error_logs=[str(path)])
    assert result["summary"]["malformed"] == 1
    assert charged(result, "missing_script") == Counter({"192.0.2.2": 1})


@pytest.mark.parametrize(
    "query, host",
    [
        ("url=http://evil.example/", "evil.example"),
        ("url=http%3A%2F%2Fevil.example%2F", "evil.example"),
        ("url=http%253A%252F%252Fevil.example", "evil.example"),
        ("a=1&to=HTTPS://User@Evil.Example:8443/x", "evil.example"),
        ("next=//evil.example/", "evil.example"),
        ("next=%2F%2Fevil.example", "evil.example"),
        ("u=/local/path", None),
        ("q=httpd+tuning", None),
        ("q=http:/evil.example", None),
        ("", None),
    ],
)
def test_external_url_host(query, host):
    assert _stats.external_url_host(query) == host


@pytest.mark.parametrize(
    "text, expected",
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("192.0.2.256", None),
        ("192.0.2.01", None),
        ("example.com", None),
        ("", None),
    ],
)
def test_normalize_address(text, expected):
    assert _stats.normalize_address(text) == expected


@pytest.mark.parametrize(
    "address, prefix, version, cidr",
    [
        ("192.0.2.77", 24, 4, "192.0.2.0/24"),
        ("192.0.2.77", 16, 4, "192.0.0.0/16"),
        ("192.0.2.77", 8, 4, "192.0.0.0/8"),
        ("192.0.2.77", 20, 4, "192.0.0.0/20"),
        ("192.0.2.77", 64, 6, None),
        ("2001:db8:1:2:3::4", 64, 6, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3::4", 48, 6, "2001:db8:1::/48"),
        ("2001:db8:1:2:3::4", 24, 4, None),
    ],
)
def test_network_of(address, prefix, version, cidr):
    assert _stats.network_of(address, prefix, version) == cidr


@pytest.mark.parametrize(
    "times, windows, first_new, expected",
    [
        ([0, 10, 20, 30], [(60, 3)], 0, 1),
        ([0, 10, 20, 30, 40], [(60, 3)], 0, 2),
        ([0, 30, 60, 90, 120], [(60, 3)], 0, 0),  # never more than 2 within 60 s
        ([0, 1, 2, 3], [(60, 3)], 3, 1),  # context events are not charged again
        ([0, 1, 2, 3], [(60, 3)], 4, 0),
        ([0, 100, 200, 300], [(60, 3), (400, 3)], 0, 1),  # the second window catches it
        ([5, 5, 5, 5, 5], [(1, 4)], 0, 1),
    ],
)
def test_flood_offences(times, windows, first_new, expected):
    assert len(_stats.flood_offences(times, windows, first_new)) == expected


def test_flood_offences_are_the_times_of_the_events_that_overflow():
    assert _stats.flood_offences([0, 10, 20, 30, 40, 200], [(60, 3)]) == [30, 40]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_flood_over_midnight_charges_each_day_its_own_offences(tmp_path, monkeypatch, workers):
    """A flood from 23:59:50 to 00:00:09: the offences of each side of midnight count on their own day
    (not all on the day of the last request), with one process or two."""
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    lines = [
        '192.0.2.9 - - [03/Feb/2021:23:59:%02d +0000] "GET /p HTTP/1.1" 200 5 "-" "UA"\n' % s for s in range(50, 60)
    ]
    lines += ['192.0.2.9 - - [04/Feb/2021:00:00:%02d +0000] "GET /p HTTP/1.1" 200 5 "-" "UA"\n' % s for s in range(10)]
    (tmp_path / "access.log").write_text("".join(lines))
    result, _state, _warnings = run(access_logs=[str(tmp_path / "access.log")], detectors=["flood"], workers=workers)
    assert charged(result, "flood") == Counter({"192.0.2.9": 17})  # all but the first 3 requests
    assert dict((day, v["offenses"]) for day, v in result["days"].items()) == {"2021-02-03": 7, "2021-02-04": 10}


def test_flood_spans_blocks_and_files(tmp_path):
    """The flood window is kept across the rotation boundary: 2 requests in the old file, 3 in the new."""
    old = tmp_path / "access.log.1"
    new = tmp_path / "access.log"
    old.write_text(access_line("192.0.2.5", 0, 0, path="/x") + access_line("192.0.2.5", 0, 10, path="/x"))
    new.write_text("".join(access_line("192.0.2.5", 0, 20 + i, path="/x") for i in range(3)))
    result, _state, _warnings = run(access_logs=[str(tmp_path / "access.log*")], detectors=["flood"])
    assert charged(result, "flood") == Counter({"192.0.2.5": 2})


def test_result_structure_and_networks(tmp_path):
    path = tmp_path / "access.log"
    lines = [access_line("192.0.2.%d" % i, 0, i, path="/wp-login.php", status=404) for i in range(1, 6)]
    lines += [access_line("192.0.2.200", 1, i, path="/index.html", referer="http://ref.example/") for i in range(7)]
    lines += [access_line("198.51.100.1", 2, 0, path="/index.html")]
    path.write_text("".join(lines))
    result, _state, _warnings = run(
        access_logs=[str(path)], top=3, top_networks=1, flood_windows=[{"seconds": 60, "requests": 100}]
    )
    assert list(result["clients"]) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]  # offenders first, then hits
    assert len(result["clients"]) == 3
    assert result["clients_total"] == 7
    info = result["clients"]["192.0.2.1"]
    assert info["hits"] == 1
    assert info["offenses"] == {"tripwire": 1, "missing_script": 1}
    assert info["statuses"] == {"404": 1}
    assert info["pages"] == [{"page": "/wp-login.php", "hits": 1}]
    assert info["first_seen"] == info["last_seen"] == "2021-02-03T10:00:01+00:00"
    assert result["networks"]["24"] == {"192.0.2.0/24": {"hits": 12, "offenses": 10, "hosts": 6, "offending_hosts": 5}}
    assert result["networks"]["16"] == {"192.0.0.0/16": {"hits": 12, "offenses": 10, "hosts": 6, "offending_hosts": 5}}
    assert result["days"] == {"2021-02-03": {"hits": 13, "offenses": 10, "clients": 7}}
    assert result["pages"][0] == {"page": "/index.html", "hits": 8}
    assert result["referers"] == [{"referer": "http://ref.example/", "hits": 7}]
    assert result["summary"]["first"] == "2021-02-03T10:00:01+00:00"
    assert result["summary"]["last"] == "2021-02-03T10:02:00+00:00"


def test_since_until_window(tmp_path):
    path = tmp_path / "access.log"
    path.write_text("".join(access_line("192.0.2.%d" % m, m, 0) for m in range(1, 6)))
    start = 1612346400  # 2021-02-03T10:00:00Z
    result, _state, _warnings = run(access_logs=[str(path)], since_epoch=start + 120, until_epoch=start + 240)
    assert sorted(result["clients"]) == ["192.0.2.2", "192.0.2.3"]


@pytest.mark.parametrize(
    "fmt, line, expected",
    [
        ("common", '192.0.2.1 - - [03/Feb/2021:10:00:00 +0000] "GET /a HTTP/1.1" 200 5', ("192.0.2.1", "/a", "200")),
        (
            "vhost_combined",
            'www.example.com:443 192.0.2.2 - - [03/Feb/2021:10:00:00 +0000] "GET /b HTTP/1.1" 404 5 "-" "UA"',
            ("192.0.2.2", "/b", "404"),
        ),
        (
            "combined_duration",
            '192.0.2.3 - - [03/Feb/2021:10:00:00 +0000] "GET /c HTTP/1.1" 200 5 "-" "UA" 1234',
            ("192.0.2.3", "/c", "200"),
        ),
        (  # %r is not quoted here and the request has a space too many: malformed
            '%h %a %l %u %t "%m %U%q %H" %>s %b',
            '10.0.0.1 2001:db8::9 - - [03/Feb/2021:10:00:00 +0000] "GET /d ?x=1 HTTP/1.1" 200 5',
            None,
        ),
        (
            '%a %{c}a %l %u %t "%m %U%q %H" %>s %b %D',
            '2001:db8::9 10.0.0.1 - - [03/Feb/2021:10:00:00 +0000] "GET /d?x=1 HTTP/1.1" 301 5 77',
            ("2001:db8::9", "/d", "301"),
        ),
    ],
)
def test_access_formats(tmp_path, fmt, line, expected):
    log = tmp_path / "access.log"
    log.write_text(line + "\n")
    result, _state, _warnings = run(access_logs=[str(log)], access_format=fmt)
    if expected is None:
        assert result["summary"]["malformed"] == 1
        return
    client, path, status = expected
    assert result["summary"]["malformed"] == 0
    info = result["clients"][client]
    assert info["pages"][0]["page"] == path
    assert info["statuses"] == {status: 1}


# -- property tests ------------------------------------------------------------------------------

CLIENTS = ["192.0.2.%d" % i for i in range(1, 6)] + ["2001:db8::%d" % i for i in range(1, 3)] + ["::ffff:192.0.2.1"]
PATHS = ["/", "/wp-login.php", "/cgi-bin/old.cgi", "/cgi-bin/jump.cgi?url=http://evil.example/", "/x.html"]

line_st = st.tuples(
    st.sampled_from(CLIENTS), st.integers(0, 59), st.sampled_from(PATHS), st.sampled_from([200, 302, 404])
)


def _lines(rows):
    out = []
    for k, (client, minute, path, status) in enumerate(sorted(rows, key=lambda r: r[1])):
        out.append(ACCESS % (client, minute, k % 60, path, status, "-"))
    return "".join(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(line_st, max_size=60), garbage=st.lists(st.binary(max_size=40), max_size=5))
def test_property_totals_are_consistent(tmp_path_factory, rows, garbage):
    path = tmp_path_factory.mktemp("p") / "access.log"
    data = _lines(rows).encode() + b"".join(g.replace(b"\n", b" ") + b"\n" for g in garbage)
    path.write_bytes(data)
    result, _state, _warnings = run(access_logs=[str(path)])
    summary = result["summary"]
    hits = sum(c["hits"] for c in result["clients"].values())
    assert hits == len(rows) == summary["lines"] - summary["malformed"]
    assert sum(d["hits"] for d in result["days"].values()) == hits
    assert sum(p["hits"] for p in result["pages"]) == hits
    offenses = sum(sum(c["offenses"].values()) for c in result["clients"].values())
    assert offenses == summary["matched"] == sum(d["offenses"] for d in result["days"].values())
    v4 = sum(c["hits"] for a, c in result["clients"].items() if ":" not in a)
    assert sum(n["hits"] for n in result["networks"]["24"].values()) == v4
    assert sum(n["hosts"] for n in result["networks"]["64"].values()) == len([a for a in result["clients"] if ":" in a])
    assert "::ffff:192.0.2.1" not in result["clients"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(line_st, min_size=1, max_size=50),
    cut=st.floats(0, 1),
    mode=st.sampled_from(
        ["rename", "copytruncate", "rename+gz", "copytruncate+gz", "rename+bz2", "copytruncate+xz", "rename+zst"]
    ),
)
def test_property_rotation_loses_and_doubles_nothing(tmp_path_factory, rows, cut, mode):
    """First run reads part of the log, then the log rotates and grows: both runs add up to one full read."""
    d = tmp_path_factory.mktemp("rot")
    text = _lines(rows)
    lines = text.splitlines(True)
    k = int(len(lines) * cut)
    first, second, third = (
        "".join(lines[:k]),
        "".join(lines[k : (k + len(lines)) // 2]),
        "".join(lines[(k + len(lines)) // 2 :]),
    )
    live = d / "access.log"
    state = d / "state.json"
    live.write_text(first)
    opts = dict(access_logs=[str(d / "access.log*")], state_file=str(state), detectors=["tripwire", "missing_script"])
    r1, _old, s1, _w = collect(options(**opts))
    with open(str(state), "w") as fobj:
        json.dump(s1, fobj)
    with open(str(live), "a") as fobj:
        fobj.write(second)  # written after the first run, before rotation
    if mode.startswith("rename"):
        os.rename(str(live), str(d / "access.log.1"))
    else:
        with open(str(live), "rb") as src, open(str(d / "access.log.1"), "wb") as dst:
            dst.write(src.read())
        with open(str(live), "wb"):
            pass
    if "+" in mode:  # compressed after rotation, as logrotate's compresscmd does
        ext = mode.partition("+")[2]
        opener = compressors.OPEN["." + ext]
        with open(str(d / "access.log.1"), "rb") as src, opener(str(d / ("access.log.1." + ext)), "wb") as dst:
            dst.write(src.read())
        os.unlink(str(d / "access.log.1"))
    with open(str(live), "a") as fobj:
        fobj.write(third)
    r2, _old, _s2, _w = collect(options(**opts))
    full_path = d / "full.log"
    full_path.write_text(text)
    rf, _o, _s, _w = collect(options(access_logs=[str(full_path)], detectors=["tripwire", "missing_script"]))

    def per_client(r):
        return Counter(dict((c, i["hits"]) for c, i in r["clients"].items()))

    assert per_client(r1) + per_client(r2) == per_client(rf)
    assert r1["summary"]["matched"] + r2["summary"]["matched"] == rf["summary"]["matched"]


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_several_processes_give_the_same_result_as_one(tmp_path, monkeypatch, workers):
    """The children read the later parts of the bytes; merged, the result equals a one-process read."""
    rotated = tmp_path / "access.log.1.gz"
    live = tmp_path / "access.log"
    lines = []
    for i in range(3000):
        client = "192.0.2.%d" % (i % 37) if i % 5 else "2001:db8::%x" % (i % 11)
        path = ["/", "/wp-login.php", "/cgi-bin/old.cgi", "/go?u=http://evil.example/"][i % 4]
        lines.append(
            ACCESS % (client, (i // 60) % 60, i % 60, path, 404 if i % 3 == 0 else 200, "http://r%d/" % (i % 3))
        )
    with gzip.open(str(rotated), "wt") as fobj:
        fobj.write("".join(lines[:1000]))
    live.write_text("".join(lines[1000:]))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    opts = dict(access_logs=[str(tmp_path / "access.log*")], detectors=["missing_script", "open_redirect", "tripwire"])
    one, _s, _w = run(workers=1, **opts)
    two, _s, _w = run(workers=workers, **opts)
    for key in ("clients", "clients_total", "networks", "pages", "days", "referers"):
        assert two[key] == one[key], key
    for key in ("lines", "bytes", "malformed", "matched", "first", "last"):
        assert two["summary"][key] == one["summary"][key], key
    assert [f["offset"] for f in two["files"]] == [f["offset"] for f in one["files"]]


def _error_lines(n):
    """Apache 2.4 error-log lines of several clients: missing scripts, a tripwire marker, a CGI's two-line
    form (the raw continuation charges nobody), server lines."""
    out = []
    for i in range(n):
        client = "192.0.2.%d" % (i % 41) if i % 7 else "2001:db8::%x" % (i % 5)
        stamp = "Wed Feb 03 %02d:%02d:%02d.%06d 2021" % (10 + i // 3600, (i // 60) % 60, i % 60, i)
        kind = i % 5
        if kind == 0:
            out.append("[%s] [cgid:error] [pid 1:tid 2] [client %s:%d] AH01264: stderr from /usr/lib/cgi-bin/x.cgi: "
                       "script not found or unable to stat\n" % (stamp, client, 40000 + i))  # fmt: skip
        elif kind == 1:
            out.append("[%s] [core:error] [pid 1] [client %s:1] AH00128: File does not exist: /var/www/TRIP-%d\n"
                       % (stamp, client, i))  # fmt: skip
        elif kind == 2:
            out.append("[%s] [cgi:error] [pid 1] [client %s:2] AH01215: script not found or unable to stat:\n"
                       % (stamp, client))  # fmt: skip
            out.append(" at /usr/lib/cgi-bin/warn.pl line 3.\n")
        elif kind == 3:
            out.append("[%s] [mpm_event:notice] [pid 1] AH00489: Apache configured\n" % stamp)
        else:
            out.append("[%s] [ssl:info] [pid 1] [remote %s:443] AH01964: Connection established\n" % (stamp, client))
    return "".join(out)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("with_access", [True, False])
def test_error_logs_share_the_processes_with_the_same_result(tmp_path, monkeypatch, workers, with_access):
    """Error logs are cut among the processes as access logs are (alone, or after the access logs); merged,
    the result, the files' counts and the warnings equal a one-process read."""
    (tmp_path / "error.log.1").write_text(_error_lines(3000))
    (tmp_path / "error.log").write_text(_error_lines(1500))
    opts = dict(error_logs=[str(tmp_path / "error.log*")], tripwire_markers=["TRIP-"], sample_lines=2)
    if with_access:
        lines = [ACCESS % ("192.0.2.%d" % (i % 41), (i // 60) % 60, i % 60, "/cgi-bin/x.cgi", 404, "-")
                 for i in range(2000)]  # fmt: skip
        (tmp_path / "access.log").write_text("".join(lines))
        opts["access_logs"] = [str(tmp_path / "access.log")]
    one, _s, warn1 = run(workers=1, **opts)
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    two, _s, warn2 = run(workers=workers, **opts)
    assert two["summary"]["processes"] == workers and one["summary"]["processes"] == 1
    assert sum(1 for c in one["clients"].values() if c["offenses"].get("tripwire")) > 10
    for key in ("clients_total", "networks", "pages", "days", "referers"):
        assert two[key] == one[key], key
    for key in ("lines", "bytes", "malformed", "matched", "first", "last"):
        assert two["summary"][key] == one["summary"][key], key
    for c, info in one["clients"].items():
        mine = two["clients"][c]
        for key in ("hits", "offenses", "first_seen", "last_seen"):
            assert mine[key] == info[key], (c, key)
        assert len(mine.get("lines", [])) == len(info.get("lines", []))
    strip = [dict((k, v) for k, v in f.items()) for f in one["files"]]
    assert two["files"] == strip
    assert warn2 == warn1


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_given_as_access_and_as_error_log_is_read_as_each(tmp_path, monkeypatch, workers):
    log = tmp_path / "both.log"
    log.write_text(_error_lines(300) + "".join(ACCESS % ("192.0.2.9", 0, i, "/", 200, "-") for i in range(30)))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    result, state, _w = run(workers=workers, access_logs=[str(log)], error_logs=[str(log)])
    lines = len(log.read_text().splitlines())
    assert [(f["kind"], f["lines"]) for f in result["files"]] == [("access", lines), ("error", lines)]
    access, error = result["files"]
    assert access["malformed"] == lines - 30 and error["malformed"] == 0  # access lines: raw continuations
    assert [(e["kind"], e["offset"]) for e in state["files"]] == [("access", log.stat().st_size)] + [
        ("error", log.stat().st_size)
    ]


@pytest.mark.parametrize("workers", [2, 3])
def test_processes_merge_a_large_worker_result_part_by_part(tmp_path, monkeypatch, workers):
    """A worker result far larger than a pipe's buffer arrives container by container and merges to the
    one-process result."""
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            ACCESS
            % ("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255), (i // 600) % 60, i % 60, "/p%d" % (i % 7), 200, "-")
            for i in range(20000)
        )
    )
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    one, _s, _w = run(access_logs=[str(log)], workers=1, top=0)
    two, _s, _w = run(access_logs=[str(log)], workers=workers, top=0)
    assert two["clients"] == one["clients"] and two["days"] == one["days"] and len(one["clients"]) == 20000
    assert two["summary"]["lines"] == one["summary"]["lines"] == 20000


@pytest.mark.parametrize("failing, workers", [("parent", 2), ("parent", 4), ("later child", 4)])
def test_a_failure_stops_every_process_and_names_the_file(tmp_path, monkeypatch, failing, workers):
    """The parent stops the children (whose results would fill their pipes) without waiting for them and
    reports the error, its own or a child's, with the file."""
    log = tmp_path / "access.log"
    log.write_text("".join(ACCESS % ("10.0.%d.%d" % (i >> 8, i & 255), 0, i % 60, "/", 200, "-") for i in range(20000)))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    parent = os.getpid()
    real = _stats_collect._read_file

    def read_file(stats, job, info):
        if (os.getpid() == parent) == (failing == "parent") and (failing == "parent" or job[3] > 0):
            raise _stats_collect.SourceError(job[2], "simulated read error")
        return real(stats, job, info)

    monkeypatch.setattr(_stats_collect, "_read_file", read_file)
    signal.signal(signal.SIGALRM, lambda *_a: pytest.fail("the parent waited for a child"))
    signal.alarm(60)
    try:
        with pytest.raises(_stats_collect.SourceError, match="simulated read error") as err:
            run(access_logs=[str(log)], workers=workers)
    finally:
        signal.alarm(0)
    assert err.value.path == str(log)
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_processes_count_a_flood_across_their_splits(tmp_path, monkeypatch, workers):
    live = tmp_path / "access.log"
    lines = [access_line("192.0.2.%d" % (i % 50 + 1), i // 60, i % 60) for i in range(600)]
    # 192.0.2.200 asks for /x 8 times in 8 seconds around the middle of the file.
    lines[300:300] = [
        access_line("192.0.2.200", 4, 56 + i, path="/x") if i < 4 else access_line("192.0.2.200", 5, i - 4, path="/x")
        for i in range(8)
    ]
    live.write_text("".join(lines))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    opts = dict(access_logs=[str(live)], detectors=["flood"], flood_windows=[{"seconds": 60, "requests": 3}])
    one, _s, _w = run(workers=1, **opts)
    two, _s, _w = run(workers=workers, **opts)
    assert charged(one, "flood") == Counter({"192.0.2.200": 5})
    assert charged(two, "flood") == charged(one, "flood")


def test_a_flood_spread_over_three_processes_keeps_the_context_of_the_first(tmp_path, monkeypatch):
    """The middle process reads one second of the log: the last one's flood context reaches back past it
    into the first process's rows."""
    lines = [access_line("10.1.1.%d" % (i % 9 + 1), 0, i // 25, path="/p%04d" % i) for i in range(1000)]
    lines += [access_line("10.1.1.%d" % (i % 9 + 1), 0, 41, path="/p%04d" % i) for i in range(1000, 2000)]
    lines += [
        access_line("10.1.1.%d" % (i % 9 + 1), 0, 42 + (i - 2000) // 56, path="/p%04d" % i) for i in range(2000, 3000)
    ]
    # 192.0.2.200 asks for /x at 10:00:36 (first third), :41 (the middle third, all of it at :41), :43 and :45
    for at, second in ((2200, 45), (2100, 43), (1500, 41), (900, 36)):
        lines.insert(at, access_line("192.0.2.200", 0, second, path="/x"))
    live = tmp_path / "access.log"
    live.write_text("".join(lines))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    third = live.stat().st_size // 3
    assert "/x" in "".join(lines)[: third - 4000] and "/x" not in "".join(lines)[third - 4000 : third + 4000]
    opts = dict(access_logs=[str(live)], detectors=["flood"], flood_windows=[{"seconds": 60, "requests": 3}])
    one, _s, _w = run(workers=1, **opts)
    three, _s, _w = run(workers=3, **opts)
    assert charged(one, "flood") == Counter({"192.0.2.200": 1})
    assert charged(three, "flood") == charged(one, "flood")


@pytest.mark.parametrize(
    "case",
    [(4, 8, 1, 4), (4, 2, 1, 2), (4, 1, 1, 1), (8, 8, 20000, 3), (2, 8, 20000, 2), (4, 8, 10**9, None)],
)
def test_processes_are_bounded_by_cpus_and_input_size(tmp_path, monkeypatch, case):
    """``workers`` is an upper bound: no more processes than usable CPUs, none with less than half of
    PARALLEL_MIN_BYTES of input, and one process (no split at all) for inputs under PARALLEL_MIN_BYTES."""
    workers, cpus, min_bytes, expected = case
    log = tmp_path / "access.log"
    log.write_text("".join(access_line("192.0.2.%d" % (i % 200), 0, i % 60) for i in range(400)))
    assert 30000 < log.stat().st_size < 40000
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", min_bytes)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: cpus)
    asked = []
    real = _stats_collect._split_work

    def split_work(todo, weights, n):
        asked.append(n)
        return real(todo, weights, n)

    monkeypatch.setattr(_stats_collect, "_split_work", split_work)
    result, _s, _w = run(access_logs=[str(log)], workers=workers)
    assert asked == ([] if expected is None else [expected])
    assert result["summary"]["processes"] == (expected or 1)
    assert result["summary"]["lines"] == 400


@pytest.mark.parametrize("workers", [2, 3, 4, 7])
def test_work_is_cut_at_line_starts_into_ordered_runs(tmp_path, workers):
    """Every byte of every file is in exactly one run, runs follow the file order (access logs, then error
    logs), cuts fall at line starts and a .gz file is never cut."""
    todo, weights = [], []
    files = ((500, False, "access"), (40, True, "access"), (1200, False, "access"), (3, False, "access"))
    files += ((300, False, "error"),)
    for k, (nlines, gz, kind) in enumerate(files):
        path = tmp_path / ("%s.log.%d" % (kind, k))
        data = "".join(
            access_line("192.0.2.%d" % (i % 200), 0, i % 60, path="/%s" % ("a" * (i % 13))) for i in range(nlines)
        )
        path.write_text(data)
        size = path.stat().st_size
        todo.append((kind, str(path), 7 if k == 2 else 0, size, gz))
        weights.append(size * 4 if gz else size - todo[-1][2])
    runs = _stats_collect._split_work(todo, weights, workers)
    assert len(runs) == workers
    flat = [seg for run in runs for seg in run]
    assert [seg[:2] for seg in flat] == sorted(seg[:2] for seg in flat)  # file order (names sort the same here)
    for kind, path, start, _size, gz in todo:
        segs = [(s, e) for k, p, s, e in flat if p == path]
        assert all(k == kind for k, p, _s, _e in flat if p == path)
        assert segs[0][0] == start and segs[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(segs, segs[1:]))  # contiguous
        if gz:
            assert len(segs) == 1
        with open(path, "rb") as fobj:
            data = fobj.read()
        assert all(data[s - 1 : s] == b"\n" for s, _e in segs[1:])
    assert sum(1 for run in runs if run) > 1


def test_per_client_detail_is_bounded_to_the_heaviest_clients(tmp_path, monkeypatch):
    """With room for 3 clients, the detail of light clients is dropped; hits and offences stay exact."""
    real = _stats_collect.Config
    monkeypatch.setattr(_stats_collect, "Config", lambda **kw: real(**dict(kw, track_max=3)))
    lines = [access_line("192.0.2.1", 0, i, path="/heavy") for i in range(40)]
    lines += [access_line("192.0.2.2", 1, i, path="/wp-login.php", status=404) for i in range(2)]
    lines += [access_line("192.0.2.%d" % (10 + i), 2, i, path="/light") for i in range(20)]
    path = tmp_path / "access.log"
    path.write_text("".join(lines))
    result, _state, _warnings = run(access_logs=[str(path)], flood_windows=[{"seconds": 1, "requests": 100}])
    clients = result["clients"]
    assert result["clients_total"] == 22
    assert clients["192.0.2.2"]["offenses"] == {"tripwire": 2, "missing_script": 2}
    assert clients["192.0.2.2"]["pages"] == [{"page": "/wp-login.php", "hits": 2}]
    assert clients["192.0.2.1"]["pages"] == [{"page": "/heavy", "hits": 40}]
    assert clients["192.0.2.10"]["hits"] == 1
    assert clients["192.0.2.10"]["pages"] == []  # below the tracking floor: no detail kept
    assert result["days"]["2021-02-03"]["clients"] == 22


def add_bans(db, rows):
    """Rows ``(jail, ip, timeofban)`` added to the fail2ban database ``db`` (its bans table made when missing)."""
    conn = sqlite3.connect(str(db))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON)"
        )
        conn.executemany("INSERT INTO bans VALUES (?, ?, ?, '{}')", rows)
        conn.commit()
    finally:
        conn.close()


def run_with_state(state_file, **kw):
    """One run with ``state_file``, whose new state is written for the next: ``(result, old state, new state)``."""
    result, old, new, _w = collect(options(state_file=str(state_file), **kw))
    with open(str(state_file), "w") as fobj:
        json.dump(new, fobj)
    return result, old, new


def test_a_ban_in_log_and_database_counts_once(tmp_path):
    log = tmp_path / "fail2ban.log"
    log.write_text(
        "2021-02-03 10:11:12,345 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.1\n"
        "2021-02-03 10:11:12,345 fail2ban.actions [1]: NOTICE  [recidive] Ban 192.0.2.1\n"
        "2021-02-03 10:20:00,000 fail2ban.actions [1]: NOTICE  [web] Unban 192.0.2.1\n"
    )
    db = tmp_path / "fail2ban.sqlite3"
    add_bans(db, [("web", "192.0.2.1", 1612347073), ("web", "192.0.2.1", 1612350000), ("web", "192.0.2.2", 1612347072)])
    result, _state, _warnings = run(fail2ban_logs=[str(log)], fail2ban_db=str(db))
    assert charged(result, "fail2ban") == Counter({"192.0.2.1": 2, "192.0.2.2": 1})
    assert result["fail2ban"] == {"recidive": {"bans": 1}, "web": {"bans": 3, "unbans": 1}}


@pytest.mark.parametrize(
    "zone, wall, earlier, later",
    [
        ("Europe/Berlin", (2021, 10, 31, 2, 30, 5), "2021-10-31 00:30:05", "2021-10-31 01:30:05"),
        ("America/New_York", (2021, 11, 7, 1, 59, 59), "2021-11-07 05:59:59", "2021-11-07 06:59:59"),
        ("Australia/Lord_Howe", (2021, 4, 4, 1, 45, 0), "2021-04-03 14:45:00", "2021-04-03 15:15:00"),
    ],
)
def test_a_local_time_that_comes_twice_is_its_earlier_reading_whatever_came_before(zone, wall, earlier, later):
    """glibc's mktime picks one of the two readings from the calls made before it; local_epoch always gives
    the earlier (the first time the clock showed it), so every process and run reads a log alike."""
    os.environ["TZ"] = zone  # the utc fixture sets TZ back
    time.tzset()
    first, second = (calendar.timegm(time.strptime(t, "%Y-%m-%d %H:%M:%S")) for t in (earlier, later))
    for before in (first, second, first - 86400 * 180, second + 86400 * 180):
        time.mktime(time.localtime(before))  # what glibc remembers from the call before
        assert _stats.local_epoch(wall) == first
        assert _stats.local_epoch(time.localtime(second)) == first
    # times that are not ambiguous: as mktime reads them
    assert _stats.local_epoch((2021, 6, 1, 12, 0, 0)) == int(time.mktime((2021, 6, 1, 12, 0, 0, 0, 0, -1)))
    assert time.localtime(_stats.local_epoch(wall[:3] + (12, 0, 0)))[:6] == wall[:3] + (12, 0, 0)


@pytest.mark.parametrize(
    "zone, local, utc",
    [
        ("Europe/Berlin", "2021-10-31 02:30:00", "2021-10-31 00:30:00"),  # 02:30 CEST, then again as CET
        ("Europe/Berlin", "2021-10-31 02:30:00", "2021-10-31 01:30:00"),
        ("America/New_York", "2021-11-07 01:10:00", "2021-11-07 06:10:01"),  # and a second off the log's
        ("Australia/Lord_Howe", "2021-04-04 01:45:00", "2021-04-03 14:45:00"),  # clocks go back half an hour
        ("Australia/Lord_Howe", "2021-04-04 01:45:00", "2021-04-03 15:15:00"),
    ],
)
def test_a_ban_in_the_repeated_hour_counts_once_from_log_and_database(tmp_path, zone, local, utc):
    """fail2ban's log has local times without offset: a ban in the hour that repeats when the clocks go back
    is matched with its database row whichever of the two readings it is; other bans an hour apart are not."""
    os.environ["TZ"] = zone  # the utc fixture sets TZ back
    time.tzset()
    log = tmp_path / "fail2ban.log"
    log.write_text(
        "%s,345 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.1\n" % local
        + "2021-06-01 10:00:00,000 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.2\n"
    )
    db = tmp_path / "fail2ban.sqlite3"
    june = int(time.mktime((2021, 6, 1, 11, 0, 0, 0, 0, -1)))  # an hour after the log's ban of 192.0.2.2
    add_bans(
        db,
        [("web", "192.0.2.1", calendar.timegm(time.strptime(utc, "%Y-%m-%d %H:%M:%S"))), ("web", "192.0.2.2", june)],
    )
    result, _state, _warnings = run(fail2ban_logs=[str(log)], fail2ban_db=str(db))
    assert charged(result, "fail2ban") == Counter({"192.0.2.1": 1, "192.0.2.2": 2})
    assert result["fail2ban"] == {"web": {"bans": 3}}


def test_incremental_runs_count_each_ban_of_the_database_once(tmp_path):
    """With state_file, a run counts the database's bans added since the previous run, also one added later
    in the newest second that run read; a run with nothing new counts none and leaves the state as it was."""
    db = tmp_path / "fail2ban.sqlite3"

    def incremental():
        result, old, new = run_with_state(tmp_path / "state.json", fail2ban_db=str(db))
        return charged(result, "fail2ban"), old == new

    t0 = 1612347072  # 2021-02-03 10:11:12 UTC
    add_bans(db, [("web", "192.0.2.1", t0), ("web", "192.0.2.2", t0 + 10)])
    assert incremental() == (Counter({"192.0.2.1": 1, "192.0.2.2": 1}), False)
    add_bans(db, [("web", "192.0.2.3", t0 + 10), ("web", "192.0.2.1", t0 + 20)])  # one in the newest second read before
    assert incremental() == (Counter({"192.0.2.3": 1, "192.0.2.1": 1}), False)
    assert incremental() == (Counter(), True)
    # a mark that is not what the module writes (edited by hand): the whole database, no traceback
    for mark in ("x", {"path": str(db), "time": "1"}, {"path": str(db), "time": 1, "seen": [1, 2]}):
        state = {"version": _stats_collect.STATE_VERSION, "files": [], "fail2ban_db": mark}
        (tmp_path / "state.json").write_text(json.dumps(state))
        assert sum(incremental()[0].values()) == 4
    # without a state file, every ban of the database
    result, _state, _warnings = run(fail2ban_db=str(db))
    assert charged(result, "fail2ban") == Counter({"192.0.2.1": 2, "192.0.2.2": 1, "192.0.2.3": 1})


def test_a_ban_read_from_one_source_in_a_run_and_the_other_in_the_next_counts_once(tmp_path):
    """A ban fail2ban writes while a run reads (its log first, then its database) is in one of the two that run
    reads and in the other that the next run reads: it counts in one run only."""
    log = tmp_path / "fail2ban.log"
    log.write_text("")
    db = tmp_path / "fail2ban.sqlite3"
    add_bans(db, [])
    now = int(time.time()) - 60

    def log_ban(addr, epoch):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
        with open(str(log), "a") as fobj:
            fobj.write("%s,123 fail2ban.actions [1]: NOTICE  [web] Ban %s\n" % (stamp, addr))

    def db_ban(addr, epoch):
        add_bans(db, [("web", addr, epoch)])

    def incremental():
        result, _old, new = run_with_state(tmp_path / "state.json", fail2ban_logs=[str(log)], fail2ban_db=str(db))
        return charged(result, "fail2ban"), new

    log_ban("192.0.2.7", now)  # in the log when the first run reads, in the database only after
    db_ban("192.0.2.8", now + 1)  # the other way round
    assert incremental()[0] == Counter({"192.0.2.7": 1, "192.0.2.8": 1})
    db_ban("192.0.2.7", now + 1)  # fail2ban's database time may be a second off its log's
    log_ban("192.0.2.8", now + 1)
    counts, state = incremental()
    assert counts == Counter()
    assert state["fail2ban_recent"] == [["web", "192.0.2.7", now], ["web", "192.0.2.8", now + 1]]
    log_ban("192.0.2.7", now + 30)  # banned again later: a new ban
    db_ban("192.0.2.7", now + 30)
    counts, state = incremental()
    assert counts == Counter({"192.0.2.7": 1})
    # bans older than the run by more than RECENT_BANS are not kept; entries not written by the module are ignored
    old = now - _stats_collect.RECENT_BANS - 100
    state["fail2ban_recent"] += [["web", "192.0.2.9", old], ["web", 1, 2], "x", ["web", "192.0.2.9", True]]
    (tmp_path / "state.json").write_text(json.dumps(state))
    log_ban("192.0.2.9", old)
    counts, state = incremental()
    assert counts == Counter()  # the state's ban of 192.0.2.9
    assert [ban[1] for ban in state["fail2ban_recent"]] == ["192.0.2.7", "192.0.2.8", "192.0.2.7"]


def test_one_client_across_access_error_and_fail2ban_logs_is_one_client(tmp_path):
    """The same address, written three ways in three logs, adds up under one key."""
    access = tmp_path / "access.log"
    access.write_text(
        ACCESS % ("::ffff:192.0.2.50", 0, 1, "/", 200, "-")
        + ACCESS % ("192.0.2.50", 0, 2, "/wp-login.php", 404, "-")
        + ACCESS % ("2001:DB8:0:0::7", 0, 3, "/", 200, "-")
    )
    error = tmp_path / "error.log"
    error.write_text(
        "[Wed Feb 03 10:00:04.000000 2021] [cgid:error] [pid 5:tid 6] [client 192.0.2.50:4321] AH01264: "
        "script not found or unable to stat: /usr/lib/cgi-bin/x.cgi\n"
        "[Wed Feb 03 10:00:05.000000 2021] [cgid:error] [pid 5:tid 6] [client 2001:db8::7:4321] AH01264: "
        "script not found or unable to stat: /usr/lib/cgi-bin/y.cgi\n"
    )
    f2b = tmp_path / "fail2ban.log"
    f2b.write_text("2021-02-03 10:00:06,000 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.50\n")
    result, _state, _warnings = run(
        access_logs=[str(access)], error_logs=[str(error)], fail2ban_logs=[str(f2b)], tripwire_paths=["/wp-login.php"]
    )
    assert sorted(result["clients"]) == ["192.0.2.50", "2001:db8::7"]
    one = result["clients"]["192.0.2.50"]
    assert one["hits"] == 2
    # /wp-login.php answered 404 is a missing script too (a .php path)
    assert one["offenses"] == {"tripwire": 1, "missing_script": 2, "fail2ban": 1}
    assert result["clients"]["2001:db8::7"]["offenses"] == {"missing_script": 1}
    assert result["networks"]["24"]["192.0.2.0/24"]["hosts"] == 1
    assert result["networks"]["64"]["2001:db8::/64"]["hits"] == 1


def test_first_and_last_seen_across_logs_of_different_sites(tmp_path):
    """Two vhosts' logs are read one after the other; first/last seen are still the min/max times."""
    (tmp_path / "a_access.log").write_text(access_line("192.0.2.1", 5, 0) + access_line("192.0.2.1", 6, 0))
    (tmp_path / "b_access.log").write_text(access_line("192.0.2.1", 1, 0) + access_line("192.0.2.1", 2, 0))
    result, _state, _warnings = run(access_logs=[str(tmp_path / "*_access.log")])
    info = result["clients"]["192.0.2.1"]
    assert (info["first_seen"], info["last_seen"]) == ("2021-02-03T10:01:00+00:00", "2021-02-03T10:06:00+00:00")
    assert info["hits"] == 4


DAY_LINE = '%s - - [%02d/Feb/2021:10:%02d:00 +0000] "GET / HTTP/1.1" 200 100 "-" "UA"\n'
ERROR_DAY_LINE = (
    "[%s Feb %02d 11:%02d:00.000000 2021] [cgid:error] [pid 5:tid 6] [client %s:4321] AH01264: "
    "script not found or unable to stat: /usr/lib/cgi-bin/x.cgi\n"
)
WEEKDAY = {3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat"}
day_row_st = st.tuples(st.integers(0, 2), st.sampled_from(CLIENTS), st.integers(3, 6), st.integers(0, 59))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(day_row_st, min_size=1, max_size=40),
    events=st.lists(st.tuples(st.sampled_from(CLIENTS[:5]), st.integers(3, 6), st.integers(0, 59)), max_size=8),
    workers=st.sampled_from([1, 3]),
)
def test_property_clients_per_day_are_distinct_whatever_order_the_logs_come_in(
    tmp_path_factory, monkeypatch, rows, events, workers
):
    """Three vhosts' logs cover the same days, and the error log goes back over them once more: each day
    counts each client once, read by one process or split over three."""
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    d = tmp_path_factory.mktemp("days")
    for k in range(3):
        mine = sorted((day, minute, client) for log, client, day, minute in rows if log == k)
        (d / ("%s_access.log" % "abc"[k])).write_text("".join(DAY_LINE % (c, day, m) for day, m, c in mine))
    (d / "error.log").write_text(
        "".join(ERROR_DAY_LINE % (WEEKDAY[day], day, m, c) for c, day, m in sorted(events, key=lambda e: e[1:]))
    )
    result, _state, _warnings = run(
        access_logs=[str(d / "*_access.log")], error_logs=[str(d / "error.log")], workers=workers
    )
    expected = {}
    for client, day in [(r[1], r[2]) for r in rows] + [(e[0], e[1]) for e in events]:
        expected.setdefault("2021-02-%02d" % day, set()).add(client.replace("::ffff:", ""))
    assert dict((day, v["clients"]) for day, v in result["days"].items()) == dict(
        (day, len(v)) for day, v in expected.items()
    )
    assert sum(v["hits"] for v in result["days"].values()) == len(rows)


@pytest.mark.parametrize(
    "zone, utc_times",
    [
        # Summer time starts at 01:00 UTC (02:00 CET -> 03:00 CEST) and ends at 01:00 UTC
        ("Europe/Berlin", ["2021-03-27 23:30", "2021-03-28 00:59", "2021-03-28 01:00", "2021-03-28 21:30"]),
        ("Europe/Berlin", ["2021-10-30 22:30", "2021-10-31 00:59", "2021-10-31 01:00", "2021-10-31 22:30"]),
        ("America/New_York", ["2021-03-14 05:00", "2021-03-14 07:30", "2021-03-15 03:59", "2021-03-15 04:00"]),
        # The clock goes from 00:00 to 01:00 (that day has no midnight) and back from 00:00 to 23:00
        ("America/Santiago", ["2021-09-05 04:00", "2021-09-06 02:30", "2021-09-06 03:00"]),
        ("America/Santiago", ["2021-04-03 03:00", "2021-04-04 02:59", "2021-04-04 03:30"]),
        ("Australia/Lord_Howe", ["2021-04-03 13:00", "2021-04-03 14:59", "2021-04-03 15:00", "2021-04-04 13:29"]),
    ],
)
def test_a_day_with_a_clock_change_is_one_day(tmp_path, zone, utc_times):
    """On the day the clocks change, every line of the day is counted on that one day: its hits, its
    clients and its offences (access lines, in UTC, and error-log lines, in local time)."""
    os.environ["TZ"] = zone  # the utc fixture sets TZ back
    time.tzset()
    epochs = [calendar.timegm(time.strptime(t, "%Y-%m-%d %H:%M")) for t in utc_times]
    access, errors = [], []
    for k, e in enumerate(epochs):
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(e))
        access.append('192.0.2.%d - - [%s] "GET /.env HTTP/1.1" 404 9 "-" "UA"\n' % (k + 1, stamp))
        local = time.strftime("%a %b %d %H:%M:%S.000000 %Y", time.localtime(e))
        errors.append(
            "[%s] [cgid:error] [pid 5:tid 6] [client 198.51.100.%d:4321] AH01264: script not found or unable"
            " to stat: /usr/lib/cgi-bin/x.cgi\n" % (local, k + 1)
        )
    (tmp_path / "access.log").write_text("".join(access))
    (tmp_path / "error.log").write_text("".join(errors))
    result, _state, _warnings = run(
        access_logs=[str(tmp_path / "access.log")], error_logs=[str(tmp_path / "error.log")]
    )
    dates = Counter(time.strftime("%Y-%m-%d", time.localtime(e)) for e in epochs)
    assert len(dates) < len(epochs)  # the day of the change holds several lines
    expected = dict((day, {"hits": n, "offenses": 2 * n, "clients": 2 * n}) for day, n in dates.items())
    assert result["days"] == expected
    assert result["summary"]["matched"] == 2 * len(epochs)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_flood_is_counted_within_each_log_not_across_vhosts(tmp_path, monkeypatch, workers):
    """Two vhosts' logs cover the same minutes: each log's flood counts as if read alone (one log's newest
    requests are no flood context for the other's older ones), with one process or the logs split
    between several."""
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    filler = [access_line("10.0.0.%d" % (i % 9 + 1), i // 60, i % 60, path="/f%d" % i) for i in range(300)]
    a = [access_line("192.0.2.9", 5, i, path="/p") for i in range(8)]  # 10:05:00-07 on vhost a: 5 too many
    b = [access_line("192.0.2.9", 2, 50 + i, path="/p") for i in range(5)]  # 10:02:50-54 on vhost b: 2
    (tmp_path / "a_access.log").write_text("".join(filler[:200] + a))
    (tmp_path / "b_access.log").write_text("".join(b + filler[200:]))
    opts = dict(detectors=["flood"], flood_windows=[{"seconds": 60, "requests": 3}], workers=workers)
    alone = Counter()
    for name in ("a_access.log", "b_access.log"):
        result, _state, _warnings = run(access_logs=[str(tmp_path / name)], **opts)
        alone += charged(result, "flood")
    both, _state, _warnings = run(access_logs=[str(tmp_path / "*_access.log")], **opts)
    assert alone == Counter({"192.0.2.9": 7})
    assert charged(both, "flood") == alone


# -- drill-down data for the report: raw lines per offender, pages per day -----------------------


def fixture_lines(name):
    """The sample log's lines (comments left out) as text, without their newline."""
    return set(log_lines(name).decode("utf-8").splitlines())


@pytest.mark.parametrize(
    "name, kind, detector, sample_lines",
    [
        ("webshield-redirect", "access_logs", "open_redirect", 5),
        ("webshield-redirect", "access_logs", "open_redirect", 1),
        ("webshield-tripwire", "access_logs", "tripwire", 5),
        ("webshield-noscript", "error_logs", "missing_script", 5),
        ("webshield-noscript", "error_logs", "missing_script", 2),
        ("webshield-recidive", "fail2ban_logs", "fail2ban", 5),
        ("webshield-flood", "access_logs", "flood", 5),
        ("webshield-flood", "access_logs", "flood", 1),
    ],
)
def test_offenders_keep_the_raw_lines_that_charged_them(tmp_path, name, kind, detector, sample_lines):
    """Every charged client keeps min(offences, sample_lines) raw lines of the sample log, each naming it."""
    path = tmp_path / name
    path.write_bytes(log_lines(name))
    result, _state, _warnings = run(**{kind: [str(path)], "detectors": [detector], "sample_lines": sample_lines})
    source = fixture_lines(name)
    offenders = charged(result, detector)
    assert offenders
    for address, info in result["clients"].items():
        lines = info["lines"]
        if address not in offenders:
            assert lines == [], address
            continue
        assert len(lines) == min(offenders[address], sample_lines), address
        for line in lines:
            assert line in source, line
            assert address in line, line


@pytest.mark.parametrize(
    "name, kind",
    [
        ("webshield-redirect", "access_logs"),
        ("webshield-noscript", "error_logs"),
        ("webshield-recidive", "fail2ban_logs"),
    ],
)
def test_sample_lines_zero_keeps_no_lines(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(log_lines(name))
    result, _state, _warnings = run(**{kind: [str(path)], "sample_lines": 0})
    assert result["summary"]["matched"] > 0
    assert all(info["lines"] == [] for info in result["clients"].values())


@pytest.mark.parametrize(
    "before, offending, expected",
    [
        # Malformed lines and lines with escaped quotes shift rows against lines: the right line is found.
        (
            [b"garbage\n", b"\xff\xfe not utf-8\n", access_line("192.0.2.1", 0, 1).encode()],
            [b'192.0.2.7 - - [03/Feb/2021:10:00:02 +0000] "GET /.env HTTP/1.1" 404 1 "-" "a \\"q\\" b"\n'],
            ['192.0.2.7 - - [03/Feb/2021:10:00:02 +0000] "GET /.env HTTP/1.1" 404 1 "-" "a \\"q\\" b"'],
        ),
        (
            [b"not a line\n" * 3],
            [access_line("192.0.2.7", 0, 5, path="/wp-login.php", status=404).encode()],
            [access_line("192.0.2.7", 0, 5, path="/wp-login.php", status=404).rstrip("\n")],
        ),
        # An over-long line is cut to SAMPLE_MAX_CHARS characters.
        (
            [],
            [(access_line("192.0.2.7", 0, 5, path="/.env", status=404)[:-4] + "U" * 5000 + '"\n').encode()],
            [(access_line("192.0.2.7", 0, 5, path="/.env", status=404)[:-4] + "U" * 5000)[:1999] + "\u2026"],
        ),
        # CRLF line ends are not part of the sample.
        (
            [],
            [access_line("192.0.2.7", 0, 5, path="/.env", status=404).replace("\n", "\r\n").encode()],
            [access_line("192.0.2.7", 0, 5, path="/.env", status=404).rstrip("\n")],
        ),
    ],
)
def test_sample_lines_are_the_exact_offending_lines(tmp_path, before, offending, expected):
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(before + offending + [access_line("192.0.2.8", 0, 9).encode()]))
    result, _state, _warnings = run(access_logs=[str(path)], detectors=["tripwire"])
    assert result["clients"]["192.0.2.7"]["offenses"] == {"tripwire": 1}
    assert result["clients"]["192.0.2.7"]["lines"] == expected
    assert result["clients"]["192.0.2.8"]["lines"] == []


@pytest.mark.parametrize("agents", [("one", "two", "three"), ("one", 'a \\"q\\" b', "three")])
def test_a_sample_is_its_own_line_when_lines_near_it_hold_the_same_fields(tmp_path, agents):
    """The garbage line makes the block go through the regex, which skips it; the three requests differ only in
    the user agent (not a field the regex keeps; one with escaped quotes, which only the full regex reads): the
    one that overflows the window is the third."""
    lines = [ACCESS_UA % ua for ua in agents]
    path = tmp_path / "access.log"
    path.write_bytes("".join([lines[0], "garbage\n", lines[1], lines[2]]).encode())
    result, _state, _warnings = run(
        access_logs=[str(path)], detectors=["flood"], flood_windows=[{"seconds": 60, "requests": 2}]
    )
    assert result["summary"]["malformed"] == 1
    assert result["clients"]["192.0.2.7"]["offenses"] == {"flood": 1}
    assert result["clients"]["192.0.2.7"]["lines"] == [lines[2].rstrip("\n")]


def test_sample_lines_of_a_heavy_offender_are_its_first_offences(tmp_path):
    lines = [access_line("192.0.2.7", i // 60, i % 60, path="/wp-login.php", status=404) for i in range(50)]
    path = tmp_path / "access.log"
    path.write_text("".join(lines))
    result, _state, _warnings = run(access_logs=[str(path)], detectors=["tripwire"], sample_lines=3)
    assert result["clients"]["192.0.2.7"]["lines"] == [line.rstrip("\n") for line in lines[:3]]


DAY_LOG = (
    [access_line("192.0.2.1", 0, i, path="/a") for i in range(5)]
    + [access_line("192.0.2.2", 1, i, path="/a") for i in range(2)]
    + [access_line("192.0.2.3", 2, i, path="/b?x=%d" % i) for i in range(3)]
    + [access_line("192.0.2.4", 3, 0, path="/c")]
    + ['192.0.2.5 - - [04/Feb/2021:00:00:01 +0000] "GET /c HTTP/1.1" 200 1 "-" "UA"\n'] * 2
)


@pytest.mark.parametrize(
    "top_day_pages, expected",
    [
        (
            20,
            {
                "2021-02-03": {
                    "/a": {"hits": 7, "clients": {"192.0.2.1": 5, "192.0.2.2": 2}},
                    "/b": {"hits": 3, "clients": {"192.0.2.3": 3}},
                    "/c": {"hits": 1, "clients": {"192.0.2.4": 1}},
                },
                "2021-02-04": {"/c": {"hits": 2, "clients": {"192.0.2.5": 2}}},
            },
        ),
        (
            1,
            {
                "2021-02-03": {"/a": {"hits": 7, "clients": {"192.0.2.1": 5}}},
                "2021-02-04": {"/c": {"hits": 2, "clients": {"192.0.2.5": 2}}},
            },
        ),
        (0, None),
    ],
)
def test_pages_per_day_with_their_clients(tmp_path, top_day_pages, expected):
    path = tmp_path / "access.log"
    path.write_text("".join(DAY_LOG))
    result, _state, _warnings = run(access_logs=[str(path)], top_day_pages=top_day_pages)
    pages = dict((day, info.get("pages")) for day, info in result["days"].items())
    if expected is None:
        assert pages == {"2021-02-03": None, "2021-02-04": None}
    else:
        assert pages == expected
    assert result["days"]["2021-02-03"]["hits"] == 11


def test_pages_per_day_on_the_redirect_sample_log(tmp_path):
    """Per-day page hits add up to the day's hits; each page's clients are the sample log's own clients."""
    path = tmp_path / "access.log"
    path.write_bytes(log_lines("webshield-redirect"))
    result, _state, _warnings = run(access_logs=[str(path)], top_day_pages=50)
    for day, info in result["days"].items():
        assert sum(p["hits"] for p in info["pages"].values()) == info["hits"], day
        for page, row in info["pages"].items():
            assert "?" not in page
            assert sum(row["clients"].values()) <= row["hits"]
            assert set(row["clients"]) <= set(result["clients"])
    jump = result["days"]["2021-02-03"]["pages"]["/cgi-bin/jump.cgi"]
    assert jump["clients"]["203.0.113.5"] == 2


@pytest.mark.parametrize("workers", [2, 3])
def test_several_processes_give_the_same_drill_down_as_one(tmp_path, monkeypatch, workers):
    lines = []
    for i in range(3000):
        client = "192.0.2.%d" % (i % 37)
        path = ["/", "/wp-login.php", "/cgi-bin/old.cgi", "/go?u=http://evil.example/"][i % 4]
        lines.append(ACCESS % (client, (i // 60) % 60, i % 60, path, 404 if i % 3 == 0 else 200, "-"))
    live = tmp_path / "access.log"
    live.write_text("".join(lines))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    opts = dict(access_logs=[str(live)], detectors=["missing_script", "open_redirect", "tripwire"], top_day_pages=3)
    one, _s, _w = run(workers=1, **opts)
    two, _s, _w = run(workers=workers, **opts)
    assert two["days"] == one["days"]
    assert dict((c, i["lines"]) for c, i in two["clients"].items()) == dict(
        (c, i["lines"]) for c, i in one["clients"].items()
    )
    assert all(len(i["lines"]) == 5 for i in one["clients"].values())


@pytest.mark.parametrize(
    "addresses, prefix, version",
    [
        (["192.0.2.1", "10.20.30.40", "1.2.3.4"], 24, 4),
        (["192.0.2.1", "10.20.30.40", "1.2.3.4"], 16, 4),
        (["192.0.2.1", "10.20.30.40", "1.2.3.4"], 8, 4),
        (["192.0.2.1", "10.20.30.40", "1.2.3.4"], 20, 4),
        (["2001:db8::1", "2001:db8:1:2::5"], 64, 6),
        (["2001:db8::1", "2001:db8:1:2::5"], 48, 6),
    ],
)
def test_network_keys_match_network_of(addresses, prefix, version):
    assert list(_stats._network_keys(addresses, prefix, version)) == [
        _stats.network_of(a, prefix, version) for a in addresses
    ]


ESCAPED = '%s - - [03/Feb/2021:10:%02d:%02d +0000] "GET / HTTP/1.1" 200 1 "-" "a \\"quoted\\" agent"\n'


@pytest.mark.parametrize(
    "lines, first, last",
    [
        # A line with escaped quotes is matched by the full regex after the others: its time still counts.
        ([ESCAPED % ("192.0.2.1", 0, 1), access_line("192.0.2.1", 0, 5)], "10:00:01", "10:00:05"),
        ([access_line("192.0.2.1", 0, 1), ESCAPED % ("192.0.2.1", 0, 9)], "10:00:01", "10:00:09"),
        # A slow request is logged after later ones, with its start time.
        (
            [access_line("192.0.2.1", 0, 2), access_line("192.0.2.1", 0, 7), access_line("192.0.2.1", 0, 1)],
            "10:00:01",
            "10:00:07",
        ),
        ([access_line("192.0.2.1", 0, 3)], "10:00:03", "10:00:03"),
    ],
)
def test_first_and_last_seen_whatever_the_line_order(tmp_path, lines, first, last):
    path = tmp_path / "access.log"
    path.write_text("".join([access_line("192.0.2.9", 0, 0)] + lines))
    result, _state, _warnings = run(access_logs=[str(path)])
    info = result["clients"]["192.0.2.1"]
    assert (info["first_seen"], info["last_seen"]) == ("2021-02-03T%s+00:00" % first, "2021-02-03T%s+00:00" % last)


COUNTS = ("hits", "offenses", "first_seen", "last_seen")


def sample_log_options(tmp_path):
    """Every sample log, as the access, error and fail2ban log options of one run."""
    kinds = (
        ("access_logs", ("webshield-redirect", "webshield-tripwire", "webshield-flood")),
        ("error_logs", ("webshield-noscript",)),
        ("fail2ban_logs", ("webshield-recidive",)),
    )
    opts = {}
    for kind, names in kinds:
        opts[kind] = []
        for name in names:
            path = tmp_path / name
            path.write_bytes(log_lines(name))
            opts[kind].append(str(path))
    return opts


@pytest.mark.parametrize("workers", [1, 3])
def test_without_client_detail_the_counts_are_the_same(tmp_path, monkeypatch, workers):
    """client_detail=false leaves out each client's detail and the clients of the day's pages, nothing else."""
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    opts = sample_log_options(tmp_path)
    full, _s, _w = run(top_day_pages=5, workers=workers, **opts)
    lean, _s, _w = run(top_day_pages=5, workers=workers, client_detail=False, **opts)
    assert any(info["lines"] and info["pages"] and info["statuses"] for info in full["clients"].values())
    assert list(lean["clients"]) == list(full["clients"])
    assert lean["clients"] == dict((c, dict((k, info[k]) for k in COUNTS)) for c, info in full["clients"].items())
    for key in ("clients_total", "networks", "pages", "referers", "fail2ban"):
        assert lean[key] == full[key], key
    assert any(page["clients"] for day in full["days"].values() for page in day["pages"].values())
    for day in full["days"].values():
        day["pages"] = dict((path, {"hits": page["hits"]}) for path, page in day["pages"].items())
    assert lean["days"] == full["days"]
    for key in ("files", "lines", "bytes", "malformed", "matched", "first", "last"):
        assert lean["summary"][key] == full["summary"][key], key


def test_the_push_playbooks_lean_result_plans_the_same_blocklist(tmp_path):
    """blocklist_push.yml asks each server for every client, without detail and without network tables: the
    plan then counts the networks from the clients, and is the same plan as from the full result."""
    servers = {}
    for s in range(3):
        lines = []
        for i in range(240):
            if i % 48 == 1:
                client, path = "45.9.9.9", "/wp-login.php"  # one offender on its own
            elif i % 4 == 0:
                client, path = "45.1.2.%d" % (1 + (i + s) % 40), "/wp-login.php"  # offenders in one /24
            elif i % 4 == 1:
                client, path = "45.1.%d.%d" % (3 + i % 7, 1 + i % 50), "/"  # clean traffic around it
            elif i % 4 == 2:
                client, path = "2a01:4f8:1:2::%x" % (1 + (i * (s + 1)) % 9), "/.env"  # offenders in one /64
            else:
                client, path = "2a01:4f8:%x::%x" % (i % 5, 1 + i % 20), "/index.html"
            lines.append(access_line(client, (i // 60) % 60, i % 60, path=path))
        log = tmp_path / ("web%d.log" % s)
        log.write_text("".join(lines))
        full, _s, _w = run(access_logs=[str(log)], detectors=["tripwire"])
        lean, _s, _w = run(
            access_logs=[str(log)],
            detectors=["tripwire"],
            client_detail=False,
            prefixes=[],
            prefixes6=[],
            top_day_pages=0,
        )
        assert lean["networks"] == {} and full["networks"]["24"]
        servers["web%d" % s] = (full, lean)
    levels = {
        "address": {"min_offenses": 4},
        "24": {"min_hits": 30, "min_hosts": 20},
        "16": {"min_hits": 2000, "min_hosts": 300},
        "64": {"min_hits": 30, "min_hosts": 5},
        "48": {"min_hits": 5000, "min_hosts": 300},
    }
    plans = []
    for which in (0, 1):
        stats = dict((host, pair[which]) for host, pair in servers.items())
        protection = _plan.Protection([("trusted", [])])
        plans.append(_plan.build_plan(stats, protection, {"levels": levels, "broadest_prefix": 16}, now=1767225600))
    assert plans[1] == plans[0]
    assert sorted(e["reason"] for e in plans[0][0]["entries"]) == ["address", "network/24", "network/64"]


@pytest.mark.parametrize("workers", [1, 2])
def test_each_log_is_read_with_the_format_that_fits_it(tmp_path, monkeypatch, workers):
    """access_format as a list: CentOS's access_log (combined) and ssl_access_log (common) in one run, each
    read with its own format, also when a child process reads one of them."""
    combined = tmp_path / "access_log"
    common = tmp_path / "ssl_access_log"
    combined.write_text("".join(ACCESS % ("192.0.2.%d" % (i % 5), 0, i % 60, "/", 200, "-") for i in range(300)))
    common.write_text(
        "".join(
            '198.51.100.%d - - [03/Feb/2021:10:01:%02d +0000] "GET %s HTTP/1.1" %d 100\n'
            % (i % 3, i % 60, "/cgi-bin/x.cgi" if i % 10 == 0 else "/", 404 if i % 10 == 0 else 200)
            for i in range(200)
        )
    )
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    logs = [str(combined), str(common)]
    result, _s, warnings = run(access_logs=logs, access_format=["combined", "common"], workers=workers)
    assert warnings == [] and result["summary"]["processes"] == workers
    assert result["summary"]["lines"] == 500 and result["summary"]["malformed"] == 0
    assert result["clients_total"] == 8 and result["clients"]["198.51.100.0"]["offenses"]["missing_script"] == 7
    formats = dict((os.path.basename(f["path"]), f["format"]) for f in result["files"])
    assert formats == {"access_log": PRESETS["combined"], "ssl_access_log": PRESETS["common"]}
    # with the first format alone, the other file cannot be read and says so
    result, _s, warnings = run(access_logs=logs, access_format="combined", workers=workers)
    assert result["summary"]["malformed"] == 200
    assert len(warnings) == 1 and warnings[0].startswith("access log %s: 200 of 200 lines could not be read" % common)
    # neither format fits: the warning names the closest one of the list
    result, _s, warnings = run(access_logs=[str(common)], access_format=["vhost_combined", "combined_duration"])
    assert result["files"][0]["format"] == PRESETS["vhost_combined"]
    assert "with access_format %r (the best of its 2 formats)" % PRESETS["vhost_combined"] in warnings[0]


_ZONES = ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe", "Europe/Amsterdam"]


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(_ZONES),
    epochs=st.lists(
        st.one_of(
            st.integers(1577836800, 1735689600),  # 2020-2024
            st.sampled_from([1616893200 + d for d in (-901, -900, -1, 0, 1, 899, 900)]),  # Berlin, summer time
            st.integers(-2200000000, -1900000000),  # Amsterdam's offset of 19 min 32 s (1909-1937)
            st.sampled_from([-935022000 + d for d in (-60, -1, 0, 1, 60)]),  # Amsterdam, +00:20 to +02:00 at 23:40 UTC
            st.none(),
            st.floats(1.5e9, 1.6e9),
        ),
        max_size=30,
    ),
)
def test_iso_texts_are_the_texts_of_iso(zone, epochs):
    """What first_seen and last_seen are written with: the same text as iso(), in zones with summer time,
    half- and three-quarter-hour offsets and an offset in seconds."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        assert _stats.iso_texts(epochs) == dict((e, _stats.iso(e)) for e in epochs)
    finally:
        os.environ["TZ"] = old or "UTC"
        time.tzset()
