# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Error-log and fail2ban parsing of offender_stats."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sqlite3
import time

import pytest

from ansible_collections.fleetguard.webshield.plugins.module_utils import _logerror


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


def test_read_fail2ban_db_errors(tmp_path):
    with pytest.raises(sqlite3.Error):
        _logerror.read_fail2ban_db(str(tmp_path / "missing.sqlite3"))
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.Error):
        _logerror.read_fail2ban_db(str(bad))
