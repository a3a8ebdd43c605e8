# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Error-log and fail2ban parsing of offender_stats."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sqlite3
import time
from datetime import datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from zoneinfo import ZoneInfo

from ansible_collections.fleetguard.webshield.plugins.module_utils import _logerror, _stats, _stats_collect


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


T = 1612347072  # 2021-02-03T10:11:12Z


@pytest.mark.parametrize(
    "line, client, noscript, referer",
    [
        (
            "[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.1] script not found or unable to stat: /x.cgi",
            "192.0.2.1",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.123456 2021] [cgi:error] [pid 1234] [client 192.0.2.2:51234] AH01264: script not "
            "found or unable to stat: /usr/lib/cgi-bin/old.cgi",
            "192.0.2.2",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.123456 2021] [cgid:error] [pid 12:tid 34] [client 192.0.2.3:40000] AH01264: stderr "
            "from /usr/lib/cgi-bin/x.cgi: script not found or unable to stat",
            "192.0.2.3",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.1 2021] [cgi:error] [pid 1] [client 192.0.2.3:1] AH02811: script not found or unable "
            "to stat: /x.cgi, referer: http://ref.example/",
            "192.0.2.3",
            True,
            "http://ref.example/",
        ),
        (
            "[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.4:5678] AH01264: script not found or unable to stat: "
            "/var/www/cgi-bin/old.cgi",
            "192.0.2.4",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12 2021] [error] [client 198.51.100.8:40001] AH01215: script not found or unable to "
            "stat: at /var/www/cgi-bin/new.cgi line 12.: /var/www/cgi-bin/new.cgi",
            "198.51.100.8",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [cgi:error] [pid 1] [client 2001:db8::5:51234] AH01264: script not found "
            "or unable to stat: /x.cgi",
            "2001:db8::5",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [cgi:error] [pid 1] [client 2001:db8::5:1234] AH01264: script not found "
            "or unable to stat: /x.cgi",
            "2001:db8::5",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12 2021] [error] [client 2001:db8::5:1234] script not found or unable to stat: /x",
            "2001:db8::5:1234",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [cgi:error] [pid 1] [client ::ffff:192.0.2.12:50000] AH01264: script not "
            "found or unable to stat: /x.cgi",
            "192.0.2.12",
            True,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [ssl:info] [pid 1] [remote 203.0.113.20:1234] AH01964: Connection to child "
            "0 established",
            "203.0.113.20",
            False,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [core:error] [pid 1] (2)No such file or directory: [client 192.0.2.9:1] "
            "AH00035: access to /x denied",
            "192.0.2.9",
            False,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.34] Invalid method in request [client 198.51.100.7] "
            "script not found or unable to stat: /x.cgi",
            "192.0.2.34",
            False,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [core:error] [pid 1] [client 192.0.2.33:5002] AH00126: Invalid URI, "
            "referer: [client 198.51.100.7] script not found or unable to stat: /x.cgi",
            "192.0.2.33",
            False,
            "[client 198.51.100.7] script not found or unable to stat: /x.cgi",
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [mpm_event:notice] [pid 9:tid 10] AH00489: Apache configured",
            None,
            False,
            None,
        ),
        (  # ErrorLogFormat with the compact ISO time (%{cu}t, %{c}t): Apache 2.4 only, so the port is cut
            "[2021-02-03 10:11:12.123456] [cgid:error] [pid 9:tid 10] [client 2001:db8::5:51234] AH01264: stderr "
            "from /usr/lib/cgi-bin/x.cgi: script not found or unable to stat",
            "2001:db8::5",
            True,
            None,
        ),
        (
            "[2021-02-03 10:11:12] [error] [client 2001:db8::6:1234] script not found or unable to stat: /x",
            "2001:db8::6",
            True,
            None,
        ),
        (  # debug and trace levels: the source file and line before the client
            "[Wed Feb 03 10:11:12.123456 2021] [authz_core:debug] [pid 9:tid 10] mod_authz_core.c(820): "
            "[client 192.0.2.40:5000] AH01626: authorization result of Require all granted: granted",
            "192.0.2.40",
            False,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.123456 2021] [rewrite:trace2] [pid 9:tid 10] mod_rewrite.c(477): "
            "[client 2001:db8::41:5000] 2001:db8::41 - - [www.example.com/sid#1][rid#2/initial] init rewrite engine",
            "2001:db8::41",
            False,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.123456 2021] [proxy:debug] [pid 9] proxy_util.c(2153): (111)Connection refused: "
            "[client 192.0.2.42:5000] AH00957: HTTP: attempt to connect to 127.0.0.1:8080 failed",
            "192.0.2.42",
            False,
            None,
        ),
        (  # Apache 2.2 at debug level
            "[Wed Feb 03 10:11:12 2021] [debug] mod_deflate.c(615): [client 192.0.2.43] Zlib: Compressed 10 to 2",
            "192.0.2.43",
            False,
            None,
        ),
        (  # a source "file" that is not one: the client field must follow Apache's own prefix
            "[Wed Feb 03 10:11:12.5 2021] [cgi:error] [pid 1] [client 192.0.2.44:1] x.c(1): [client 198.51.100.7] "
            "script not found or unable to stat: /x.cgi",
            "192.0.2.44",
            False,
            None,
        ),
        (
            "[Wed Feb 03 10:11:12.5 2021] [core:notice] [pid 1] x y.c(1): [client 198.51.100.7] AH00094: z",
            None,
            False,
            None,
        ),
    ],
)
def test_parse_error_line(line, client, noscript, referer):
    parsed = _logerror.parse_error_line(line)
    assert parsed.client == client
    assert parsed.is_noscript() is noscript
    assert parsed.referer == referer
    assert parsed.epoch == T


@pytest.mark.parametrize(
    "line, expected",
    [
        (" at /var/www/cgi-bin/new.cgi line 12.", "continuation"),
        ("client 1.2.3.4 script not found or unable to stat: /x", "continuation"),
        (
            " [Wed Feb 03 10:11:12 2021] [error] [client 198.51.100.7] script not found or unable to stat: /x",
            "continuation",
        ),
        ("", None),
        ("\x00\x01binary garbage\x1b[0m", None),
        ("[Wed Feb 03 10:11:12 2021] [error] [client not-an-address] script not found or unable to stat: /x", None),
        ("[Wed Foo 03 10:11:12 2021] [error] [client 192.0.2.1] x", None),
        ("[Wed Feb 33 10:11:12 2021] [error] [client 192.0.2.1] x", None),
        ("[Wed Feb 03 10:11:12] [error] [client 192.0.2.1] x", None),
        ("[2021-13-03 10:11:12] [error] [client 192.0.2.1] x", None),
        ("[2021-02-03 10:11:12 2021] [error] [client 192.0.2.1] x", None),
        ("[2021-02-03 24:11:12.5] [core:error] [client 192.0.2.1:1] x", None),
        ("[garbage", None),
    ],
)
def test_parse_error_line_rejects(line, expected):
    assert _logerror.parse_error_line(line) == expected


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            "2021-02-03 10:11:12,345 fail2ban.actions        [1234]: NOTICE  [sshd] Ban 192.0.2.1",
            (T, "sshd", "Ban", "192.0.2.1"),
        ),
        (
            "2021-02-03 10:11:12,345 fail2ban.actions [1]: NOTICE [web] Restore Ban 2001:DB8::1",
            (T, "web", "Restore Ban", "2001:db8::1"),
        ),
        (
            "2021-02-03 10:11:12,345 fail2ban.actions [1]: NOTICE [web] Unban 192.0.2.1",
            (T, "web", "Unban", "192.0.2.1"),
        ),
        (
            "2021-02-03 10:11:12,345 fail2ban.filter  [1]: INFO    [web] Found 192.0.2.1 - 2021-02-03 10:11:12",
            (T, "web", "Found", "192.0.2.1"),
        ),
        ("2021-02-03 10:11:12,345 fail2ban.actions [1]: NOTICE [web] 192.0.2.8 already banned", None),
        ("2021-02-03 10:11:12,345 fail2ban.actions [1]: NOTICE [web] Ban not-an-ip", None),
        ("garbage", None),
    ],
)
def test_parse_fail2ban_line(line, expected):
    assert _logerror.parse_fail2ban_line(line) == expected


# fail2ban's schemas, written from its database.py (0.9.x: version 2; 0.11+: version 4 adds bantime,
# bancount and the bips table).
SCHEMA_09 = """
CREATE TABLE fail2banDb(version INTEGER);
CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0,
  FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, UNIQUE(jail, path), UNIQUE(jail, path, firstlinemd5));
CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON,
  FOREIGN KEY(jail) REFERENCES jails(name));
INSERT INTO fail2banDb(version) VALUES (2);
"""
SCHEMA_011 = """
CREATE TABLE fail2banDb(version INTEGER);
CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0,
  FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, UNIQUE(jail, path), UNIQUE(jail, path, firstlinemd5));
CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL,
  bancount INTEGER NOT NULL default 1, data JSON, FOREIGN KEY(jail) REFERENCES jails(name));
CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL,
  bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail), FOREIGN KEY(jail) REFERENCES jails(name));
INSERT INTO fail2banDb(version) VALUES (4);
"""


def make_db(path, schema, rows):
    conn = sqlite3.connect(str(path))
    conn.executescript(schema)
    conn.execute("INSERT INTO jails(name) VALUES ('sshd')")
    for jail, ip, tob in rows:
        if "bantime" in schema:
            conn.execute(
                "INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES (?,?,?,600,1,'{}')",
                (jail, ip, tob),
            )
            conn.execute(
                "INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime) VALUES (?,?,?,600)", (ip, jail, tob)
            )
        else:
            conn.execute("INSERT INTO bans(jail, ip, timeofban, data) VALUES (?,?,?,'{}')", (jail, ip, tob))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("schema", [SCHEMA_09, SCHEMA_011], ids=["0.9", "0.11"])
def test_read_fail2ban_db(tmp_path, schema):
    db = tmp_path / "fail2ban.sqlite3"
    make_db(
        db,
        schema,
        [
            ("sshd", "192.0.2.1", T),
            ("sshd", "::ffff:192.0.2.2", T + 10),
            ("web", "192.0.2.1", T + 20),
            ("sshd", "garbage", T + 30),
        ],
    )
    before = db.read_bytes()
    assert _logerror.read_fail2ban_db(str(db)) == [
        (T, "sshd", "192.0.2.1"),
        (T + 10, "sshd", "192.0.2.2"),
        (T + 20, "web", "192.0.2.1"),
    ]
    assert _logerror.read_fail2ban_db(str(db), since=T + 5, until=T + 20) == [(T + 10, "sshd", "192.0.2.2")]
    assert db.read_bytes() == before  # opened read-only


@pytest.mark.parametrize("name", ["f2b%20db.sqlite3", "f2b%3f?#.sqlite3", "f2b db.sqlite3"])
def test_read_fail2ban_db_at_a_path_with_uri_characters(tmp_path, name):
    """The path is given to SQLite as a URI: "%", "?" and "#" in it are the file's own characters."""
    make_db(tmp_path / name, SCHEMA_011, [("sshd", "192.0.2.1", T)])
    assert _logerror.read_fail2ban_db(str(tmp_path / name)) == [(T, "sshd", "192.0.2.1")]


def test_read_fail2ban_db_errors(tmp_path):
    with pytest.raises(sqlite3.Error):
        _logerror.read_fail2ban_db(str(tmp_path / "missing.sqlite3"))
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.Error):
        _logerror.read_fail2ban_db(str(bad))


def test_read_fail2ban_db_skips_bans_whose_time_is_not_a_time(tmp_path):
    """A row whose timeofban is text, infinite or outside the years 1900-9999 (a hand-edited or damaged
    database) is left out and listed; the other rows are read."""
    db = tmp_path / "f2b.sqlite3"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban NOT NULL, data JSON)")
    bad = ["yesterday", 1.5e20, float("inf"), 10**17, 10**13, -(10**13)]
    conn.executemany("INSERT INTO bans VALUES ('web', ?, ?, '{}')", [("192.0.2.%d" % i, v) for i, v in enumerate(bad)])
    conn.execute("INSERT INTO bans VALUES ('web', '192.0.2.9', ?, '{}')", (T,))
    conn.execute("INSERT INTO bans VALUES ('web', '192.0.2.10', ?, '{}')", (-5,))  # a clock at 1970
    conn.commit()
    conn.close()
    skipped = []
    assert _logerror.read_fail2ban_db(str(db), skipped=skipped) == [(-5, "web", "192.0.2.10"), (T, "web", "192.0.2.9")]
    assert sorted(addr for _jail, addr, _value in skipped) == ["192.0.2.%d" % i for i in range(6)]


@pytest.mark.parametrize(
    "stamp",
    [
        "Mon Jan 01 00:00:00 0001",
        "Fri Dec 31 23:59:59.000000 9999",
        "Sat Jan 01 00:00:00 10000",
        "Sun Dec 31 23:59:59 1899",
    ],
)
def test_error_times_outside_the_years_1900_to_9999_are_not_times(stamp):
    assert _logerror.parse_error_time(stamp) is None
    assert _logerror.parse_error_time("Mon Jan 01 00:00:00 1900") is not None


# -- the block reader must count every block as the line-by-line reader does -----------------------

_STAMPS = ["Wed Feb 03 10:11:12 2021", "Wed Feb 03 10:11:12.123456 2021", "Thu Feb 04 00:00:59 2021",
           "Wed Feb 33 10:11:12 2021", "Wed Feb 03 10:11:1: 2021", "Wed Feb 03 10:11:61 2021",
           "Wed Feb  3 23:59:60 2021", "Wed Feb 03 10:11:12", "2021-02-03 10:11:12", "2021-02-03 10:11:12.123456",
           "2021-02-04 00:00:59", "2021-13-03 10:11:12", "2021-02-03 10:11:12 2021", "2021-02-03 10:61:12"]  # fmt: skip
_LEVELS = ["error", "cgi:error", "cgid:error", "core:info", "ssl:info", "-"]
_PIDS = ["", " [pid 1234]", " [pid 1234:tid 5678]", " [pid 1] (2)No such file or directory:",
         " [pid 1:tid 2] mod_authz_core.c(820):", " [pid 1] proxy_util.c(2153): (111)Connection refused:",
         " mod_deflate.c(615):", " [pid 1] mod_x.cc(1):"]  # fmt: skip
_CLIENT_FIELDS = ["", " [client 192.0.2.4]", " [client 192.0.2.4:5678]", " [client 2001:db8::5:51234]",
                  " [client 2001:db8::5]", " [client ::ffff:192.0.2.12:50000]", " [remote 203.0.113.20:1234]",
                  " [client not-an-address]", " [client 198.51.100.7:1]"]  # fmt: skip
_MESSAGES = [
    "AH01264: script not found or unable to stat: /usr/lib/cgi-bin/x.cgi",
    "script not found or unable to stat: /x",
    "AH01215: script not found or unable to stat: at /x.cgi line 12.: /x.cgi",
    "AH01264: stderr from /x.cgi: script not found or unable to stat",
    "AH01264: stderr from /x.cgi: other, referer: http://a/: script not found or unable to stat",
    "AH00126: Invalid URI, referer: [client 198.51.100.7] script not found or unable to stat: /x.cgi",
    "AH00128: File does not exist: /var/www/html/TRIPWIRE-MARK",
    "AH01264: AH01264: script not found or unable to stat: /x",
    "",
]
# Other lines: a block of plain ones is still read from the block's rows; one non-plain line sends its
# whole block line by line.
_PLAIN_OTHER_LINES = [" at /x.cgi line 12.", "client 1.2.3.4 script not found", "", "   ", "[garbage", "x\ry"]
_OTHER_LINES = _PLAIN_OTHER_LINES + [
    "[Wed Feb 03 10:11:12 2021] [err\x01or] [client 192.0.2.1] x", "caf\xe9 au lait", "\xff\xfe",
    "[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.5] " + "x" * 70000]  # fmt: skip

apache_line_st = st.builds(
    lambda stamp, level, pid, client, msg, cr: "[%s] [%s]%s%s %s%s" % (stamp, level, pid, client, msg, cr),
    st.sampled_from(_STAMPS),
    st.sampled_from(_LEVELS),
    st.sampled_from(_PIDS),
    st.sampled_from(_CLIENT_FIELDS),
    st.sampled_from(_MESSAGES),
    st.sampled_from(["", "\r"]),
)
error_line_st = st.one_of(apache_line_st, st.sampled_from(_OTHER_LINES))
plain_line_st = st.one_of(apache_line_st, st.sampled_from(_PLAIN_OTHER_LINES))


def _error_stats(buf, reader, markers):
    stats = _stats.Stats(_stats.Config(tripwire_markers=markers, sample_lines=2))
    reader(stats, buf)
    result = stats.result(top=0)
    counts = dict((k, getattr(stats, k)) for k in ("lines", "bytes", "malformed", "continued", "matched"))
    return counts, result


@settings(max_examples=400, deadline=None)
@given(
    lines=st.one_of(st.lists(plain_line_st, min_size=1, max_size=30), st.lists(error_line_st, min_size=1, max_size=30)),
    markers=st.sampled_from([[], ["TRIPWIRE-MARK"]]),
)
# a compact ISO time is Apache 2.4's: the port is cut even without a module in the level or an AH code
@example(lines=["[2021-02-03 10:11:12] [error] [client 2001:db8::5:51234] script not found or unable to stat: /x"],
         markers=[])  # fmt: skip
def test_the_block_reader_counts_as_the_line_reader(lines, markers):
    """Clients, offences, times, days, raw lines, malformed and continued lines: the same through the block
    reader (rows from one findall; blocks of other bytes go line by line) as line by line."""
    buf = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
    fast = _error_stats(buf, _stats_collect.add_error_block, markers)
    assert fast == _error_stats(buf, _stats_collect._add_error_lines, markers)


def test_the_block_reader_takes_plain_blocks_and_leaves_the_others():
    plain = b"[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.4] script not found or unable to stat: /x\n"
    assert _logerror.error_rows(plain * 3, 3) is not None
    for odd in (b"caf\xc3\xa9\n", b"\x1b[0m\n", b"a\x00b\n"):
        assert _logerror.error_rows(plain + odd, 2) is None


_F2B_CACHE = {}  # shared by the examples below: later ones read the minutes earlier ones converted


@settings(max_examples=300, deadline=None)
@given(
    fields=st.tuples(
        st.integers(2019, 2022),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 99),
    )  # fmt: skip
)
@example(fields=(2021, 3, 28, 2, 30, 15))  # a minute summer time skips
@example(fields=(2021, 10, 31, 2, 30, 15))  # a minute that comes twice
@example(fields=(2021, 12, 31, 23, 59, 60))
@example(fields=(2021, 12, 31, 23, 59, 61))
@example(fields=(2021, 2, 29, 10, 0, 0))
def test_fail2ban_times_converted_once_a_minute_are_the_times_of_strptime(fields):
    """Host-local times (a zone with summer time), bad dates and seconds 60-99 included; a minute that comes
    twice is the first of the two, as Python's zone data reads it (``fold=0``)."""
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        stamp = "%04d-%02d-%02d %02d:%02d:%02d" % fields
        try:
            time.strptime(stamp, "%Y-%m-%d %H:%M:%S")  # what fail2ban's own time reading accepts
            # the minute read with Python's zone data, the earlier of two readings when it comes twice (fold=0)
            minute = datetime(*fields[:5], tzinfo=ZoneInfo("Europe/Berlin"))
            expected = int(minute.timestamp()) + fields[5]
        except ValueError:
            expected = None
        line = "%s,123 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.7" % stamp
        got = _logerror.parse_fail2ban_line(line, _F2B_CACHE)
        assert (got[0] if got else None) == expected
    finally:
        os.environ["TZ"] = "UTC"  # as the utc fixture set it
        time.tzset()
