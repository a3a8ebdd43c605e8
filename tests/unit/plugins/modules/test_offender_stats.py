# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""offender_stats run through its main() with module arguments (ansible-core 2.16 to 2.19+)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import gzip
import importlib.util
import json
import os
import re
import sqlite3
import time

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.fleetguard.webshield.plugins.filter import webshield_report
from ansible_collections.fleetguard.webshield.plugins.module_utils import _logsource
from ansible_collections.fleetguard.webshield.plugins.modules import offender_stats

_spec = importlib.util.spec_from_file_location(
    "compressors", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils", "compressors.py")
)
compressors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compressors)

try:  # ansible-core 2.19+
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.16 - 2.18: the classic set_module_args pattern

    @contextlib.contextmanager
    def patch_module_args(args):
        old = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = old


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "logs")


class Exit(Exception):
    pass


class Fail(Exception):
    pass


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def run_module(**args):
    with patch_module_args(args), pytest.raises((Exit, Fail)) as info:
        offender_stats.main()
    kind = "failed" if info.type is Fail else "ok"
    return kind, info.value.args[0]


LINE = '%s - - [03/Feb/2021:10:11:%02d +0000] "GET %s HTTP/1.1" %d 100 "-" "UA"\n'


def test_times_outside_the_years_1900_to_9999_are_malformed_not_a_failed_run(tmp_path):
    """Before, one such line or ban failed the whole run ("year 0 is out of range", "Value too large")."""
    access = tmp_path / "access.log"
    access.write_text(
        '192.0.2.1 - - [01/Jan/0001:00:00:00 +1400] "GET / HTTP/1.1" 200 5 "-" "UA"\n'
        '192.0.2.2 - - [31/Dec/9999:23:59:59 -1400] "GET / HTTP/1.1" 200 5 "-" "UA"\n'
        + LINE
        % ("192.0.2.3", 0, "/", 200)
    )
    epochs = tmp_path / "epochs.log"
    epochs.write_text('192.0.2.4 99999999999999999 "GET / HTTP/1.1"\n192.0.2.5 1612347060 "GET / HTTP/1.1"\n')
    db = tmp_path / "f2b.sqlite3"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON)")
    conn.executemany("INSERT INTO bans VALUES ('web', ?, ?, '{}')", [("192.0.2.6", 10**17), ("192.0.2.7", 1612347072)])
    conn.commit()
    conn.close()
    kind, res = run_module(access_logs=[str(access)], fail2ban_db=str(db))
    assert kind == "ok", res
    assert res["summary"]["malformed"] == 2 and sorted(res["clients"]) == ["192.0.2.3", "192.0.2.7"]
    assert [f["malformed"] for f in res["files"]] == [2, 1]
    assert any("%s: 1 bans skipped" % db in w and "timeofban 100000000000000000" in w for w in res["warnings_list"])
    kind, res = run_module(access_logs=[str(epochs)], access_format='%a %{sec}t "%r"')
    assert kind == "ok", res
    assert res["summary"]["malformed"] == 1 and sorted(res["clients"]) == ["192.0.2.5"]


def test_main_reads_access_error_and_fail2ban(tmp_path):
    access = tmp_path / "access.log"
    access.write_text("".join(LINE % ("203.0.113.5", i, "/wp-login.php", 404) for i in range(3)))
    db = tmp_path / "f2b.sqlite3"
    conn = sqlite3.connect(str(db))
    conn.executescript("CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON);")
    conn.execute("INSERT INTO bans VALUES ('sshd', '203.0.113.5', 1612347072, '{}')")
    conn.commit()
    conn.close()
    kind, res = run_module(
        access_logs=[str(access)],
        error_logs=[os.path.join(FIXTURES, "webshield-noscript")],
        fail2ban_logs=[os.path.join(FIXTURES, "webshield-recidive")],
        fail2ban_db=str(db),
        tripwire_paths=["/wp-login.php"],
    )
    assert kind == "ok", res
    assert res["changed"] is False
    offenses = res["clients"]["203.0.113.5"]["offenses"]
    assert offenses == {"tripwire": 3, "missing_script": 3, "fail2ban": 2}  # log ban + a different DB ban
    assert res["fail2ban"]["webshield-noscript"]["bans"] == 1
    assert res["summary"]["files"] == 4
    assert res["clients_total"] > 10
    assert set(res["networks"]) == {"24", "16", "64", "48"}
    assert res["warnings_list"] == []


def test_state_file_incremental_and_check_mode(tmp_path):
    access = tmp_path / "access.log"
    state = tmp_path / "state.json"
    access.write_text(LINE % ("192.0.2.1", 1, "/", 200))
    args = dict(access_logs=[str(tmp_path / "access.log*")], state_file=str(state))
    kind, res = run_module(_ansible_check_mode=True, **args)
    assert kind == "ok" and res["changed"] is True
    assert not state.exists()  # never written in check mode
    kind, res = run_module(**args)
    assert res["changed"] is True and res["summary"]["lines"] == 1
    assert state.exists()
    kind, res = run_module(**args)
    assert res["changed"] is False and res["summary"]["lines"] == 0
    assert res["files"][0]["status"] == "unchanged"
    with open(str(access), "a") as fobj:
        fobj.write(LINE % ("192.0.2.2", 2, "/", 200))
    os.rename(str(access), str(tmp_path / "access.log.1"))
    with gzip.open(str(tmp_path / "access.log.1.gz"), "wb") as fobj, open(str(tmp_path / "access.log.1"), "rb") as old:
        fobj.write(old.read())
    os.unlink(str(tmp_path / "access.log.1"))
    access.write_text(LINE % ("192.0.2.3", 3, "/", 200))
    kind, res = run_module(**args)
    assert res["changed"] is True
    assert sorted(res["clients"]) == ["192.0.2.2", "192.0.2.3"]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"access_logs": ["/nonexistent/access.log*"], "missing": "fail"}, "matches no file"),
        ({"access_logs": ["/etc/hostname"], "since": "yesterday"}, "since='yesterday' is not a time"),
        ({"access_logs": ["/etc/hostname"], "since": "-1h", "until": "-2h"}, "must be after since"),
        ({"access_logs": ["/etc/hostname"], "since": "-9999999999999999999w"}, "is out of range: a time in the years"),
        ({"access_logs": ["/etc/hostname"], "until": "1899-12-31"}, "until='1899-12-31' is out of range"),
        ({"access_logs": ["/etc/hostname"], "access_format": "%t %r"}, "no client field"),
        ({"access_logs": ["/etc/hostname"], "access_format": ["combined", "%t %r"]}, "'%t %r' has no client field"),
        ({"access_logs": ["/etc/hostname"], "access_format": []}, "access_format: a format or a non-empty list"),
        ({"access_logs": ["/etc/hostname"], "access_format": {"a": 1}}, "formats is needed, got {'a': 1}"),
        ({"access_logs": ["/etc/hostname"], "script_patterns": ["("]}, "not a valid regular expression"),
        ({"access_logs": ["/etc/hostname"], "flood_windows": [{"seconds": 0, "requests": 1}]}, "seconds > 0"),
        ({"access_logs": ["/etc/hostname"], "prefixes": [40]}, "not an IPv4 prefix"),
        ({"access_logs": ["/etc/hostname"], "workers": 65}, "workers must be between 1 and 64, got 65"),
        ({"access_logs": ["/etc/hostname"], "workers": 0}, "workers must be between 1 and 64, got 0"),
        ({"access_logs": ["/etc/hostname"], "sample_lines": -1}, "sample_lines must be 0 (off) or more"),
        ({"access_logs": ["/etc/hostname"], "top_day_pages": -1}, "top_day_pages must be 0 (off) or more"),
        (
            {"access_logs": ["/etc/hostname"], "tripwire_paths": ["wp-login.php"]},
            "'wp-login.php' is not a request path",
        ),
        ({"access_logs": ["/etc/hostname"], "tripwire_paths": [""]}, "'' is not a request path"),
        ({"access_logs": ["/etc/hostname"], "tripwire_markers": [" "]}, "would be found in every error-log line"),
        ({"access_logs": ["/etc/hostname"], "script_statuses": [99]}, "99 is not an HTTP status (100-599)"),
        ({}, "nothing to read"),
        ({"detectors": ["bogus"], "access_logs": ["/etc/hostname"]}, "detectors"),
    ],
)
def test_failures_say_what_and_how(args, message):
    kind, res = run_module(**args)
    assert kind == "failed"
    assert message in res["msg"]


def test_corrupt_gzip_fails_naming_the_file(tmp_path):
    bad = tmp_path / "access.log.2.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00broken")
    kind, res = run_module(access_logs=[str(bad)])
    assert kind == "failed"
    assert res["msg"].startswith("cannot read %s: " % bad)
    assert "exception" not in res


@pytest.mark.parametrize("workers", [1, 2])
def test_rotations_compressed_with_gzip_bzip2_xz_and_zstd_are_read_in_order(tmp_path, workers):
    """logrotate's compresscmd may be gzip, bzip2, xz or zstd: each rotation is read, oldest first."""
    exts = [".zst", ".xz", ".bz2", ".gz"]  # access.log.5.zst is the oldest
    for k, ext in enumerate(exts):
        with compressors.OPEN[ext](str(tmp_path / ("access.log.%d%s" % (5 - k, ext))), "wt") as fobj:
            fobj.write(LINE % ("192.0.2.%d" % (k + 1), k, "/cgi-bin/a.cgi", 404))
    (tmp_path / "access.log.1").write_text(LINE % ("192.0.2.9", 30, "/", 200))
    kind, res = run_module(access_logs=[str(tmp_path / "access.log*")], workers=workers)
    assert kind == "ok", res
    assert [os.path.basename(f["path"]) for f in res["files"]] == [
        "access.log.5.zst",
        "access.log.4.xz",
        "access.log.3.bz2",
        "access.log.2.gz",
        "access.log.1",
    ]
    assert res["summary"]["malformed"] == 0
    assert sorted(res["clients"]) == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.9"]
    assert res["summary"]["first"].startswith("2021-02-03T10:11:00") and res["summary"]["matched"] == 4


@pytest.mark.parametrize("name", ["access.log.2.xz", "access.log.2.bz2", "access.log.2.zst"])
def test_corrupt_xz_or_bzip2_fails_naming_the_file(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(b"not compressed at all\n")
    kind, res = run_module(access_logs=[str(bad)])
    assert kind == "failed"
    assert res["msg"].startswith("cannot read %s: corrupt or truncated " % bad)
    assert "exception" not in res


def test_zstd_rotation_without_the_zstd_program_fails_naming_the_file_and_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "access.log").write_text(LINE % ("192.0.2.1", 0, "/", 200))
    compressors.write(tmp_path / "access.log.2.zst", (LINE % ("192.0.2.2", 0, "/", 200)).encode())
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_logsource, "_ZSTD_DIRS", ())
    kind, res = run_module(access_logs=[str(tmp_path / "access.log*")])
    assert kind == "failed"
    assert res["msg"].startswith("cannot read %s: zstd-compressed" % (tmp_path / "access.log.2.zst"))
    assert "install zstd" in res["msg"] and "compress with gzip" in res["msg"]


def test_corrupt_state_file_fails_with_hint(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("garbage")
    (tmp_path / "a.log").write_text(LINE % ("192.0.2.1", 1, "/", 200))
    kind, res = run_module(access_logs=[str(tmp_path / "a.log")], state_file=str(state))
    assert kind == "failed"
    assert "remove it to start over" in res["msg"]


def test_missing_glob_warns(tmp_path):
    (tmp_path / "a.log").write_text(LINE % ("192.0.2.1", 1, "/", 200))
    kind, res = run_module(access_logs=[str(tmp_path / "a.log"), str(tmp_path / "none*")])
    assert kind == "ok"
    assert res["warnings_list"] == ["access_logs: %r matches no file" % str(tmp_path / "none*")]


@pytest.mark.parametrize(
    "text, epoch",
    [
        ("2021-02-03", 1612310400),
        ("2021-02-03T10:11:12", 1612347072),
        ("2021-02-03T10:11:12+00:00", 1612347072),
        ("2021-02-03T19:11:12+09:00", 1612347072),
        ("2021-02-03T10:11:12Z", 1612347072),
        ("1612347072", 1612347072),
        ("-1h", 1612347072 - 3600),
        ("-2d", 1612347072 - 2 * 86400),
    ],
)
def test_parse_when(text, epoch):
    assert offender_stats.parse_when(text, now=1612347072) == epoch


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(offender_stats.DOCUMENTATION)
    assert set(doc["options"]) == set(offender_stats.ARGUMENT_SPEC)
    for name, spec in offender_stats.ARGUMENT_SPEC.items():
        assert doc["options"][name]["type"] == spec["type"], name
        assert doc["options"][name].get("default") == spec.get("default"), name


def fixture_text(name):
    with open(os.path.join(FIXTURES, name)) as fobj:
        return "".join(line for line in fobj if not line.startswith("#"))


@pytest.mark.parametrize(
    "args, day_pages, lines_per_offender",
    [
        ({}, 20, 5),
        ({"top_day_pages": 2, "sample_lines": 1}, 2, 1),
        ({"top_day_pages": 0, "sample_lines": 0}, 0, 0),
    ],
)
def test_drill_down_data_reaches_the_report(tmp_path, args, day_pages, lines_per_offender):
    """days.<day>.pages and clients.<ip>.lines are returned and the report filter shows them."""
    access = tmp_path / "access.log"
    access.write_text(fixture_text("webshield-redirect") + fixture_text("webshield-tripwire"))
    kind, res = run_module(access_logs=[str(access)], tripwire_paths=["/wp-login.php", "/.env"], **args)
    assert kind == "ok", res
    day = res["days"]["2021-02-03"]
    if day_pages:
        assert 0 < len(day["pages"]) <= day_pages
        for row in day["pages"].values():
            assert 0 < len(row["clients"]) <= day_pages
    else:
        assert "pages" not in day
    offenders = [c for c, info in res["clients"].items() if info["offenses"]]
    assert offenders
    for address in offenders:
        lines = res["clients"][address]["lines"]
        # One line can trip several detectors: it is kept once.
        offences = sum(res["clients"][address]["offenses"].values())
        assert min(1, lines_per_offender) <= len(lines) <= min(lines_per_offender, offences)
        assert len(set(lines)) == len(lines)
        assert all(address in line for line in lines)

    model = webshield_report.webshield_report({"web1": res}, lines=20)
    drill = model["scopes"][1]["drill"]
    if day_pages:
        assert [d["day"] for d in drill["days"]] == ["2021-02-03"]
        shown = drill["days"][0]["pages"]
        top_page = max(day["pages"].items(), key=lambda kv: (kv[1]["hits"], kv[0]))
        assert shown[0]["page"] == top_page[0] and shown[0]["hits"] == top_page[1]["hits"]
        assert shown[0]["clients"]
    jump_client = "203.0.113.5"
    assert drill["details"].get(jump_client, {"lines": []})["lines"] == res["clients"][jump_client]["lines"]


def test_a_log_in_another_format_warns_with_its_first_line(tmp_path):
    """Most lines unreadable (the wrong access_format, or not a log at all): a warning says which file,
    how many lines, the first such line and what to check; the run still returns what it could read."""
    access = tmp_path / "access.log"
    access.write_text(LINE % ("192.0.2.1", 1, "/", 200) + LINE % ("192.0.2.2", 2, "/", 200))
    kind, res = run_module(access_logs=[str(access)], access_format="common")
    assert kind == "ok"
    assert res["summary"]["malformed"] == 2 and res["clients"] == {}
    assert res["warnings_list"] == [
        "access log %s: 2 of 2 lines could not be read with access_format '%s' (counted in summary.malformed); "
        "line 1: %r; is this the LogFormat of the CustomLog that writes this file?"
        % (access, '%h %l %u %t "%r" %>s %b', LINE.rstrip("\n") % ("192.0.2.1", 1, "/", 200))
    ]
    # As an error log: no line is an error line. A few such lines can be a CGI's stderr: 20 make a warning.
    kind, res = run_module(error_logs=[str(access)])
    assert kind == "ok" and res["warnings_list"] == []
    access.write_text(LINE % ("192.0.2.1", 1, "/", 200) * 20)
    kind, res = run_module(error_logs=[str(access)])
    assert kind == "ok"
    assert res["warnings_list"][0].startswith("error log %s: 20 of 20 lines are not Apache error-log lines" % access)
    assert res["warnings_list"][0].endswith("; is this file an Apache ErrorLog?")


def test_a_few_unreadable_lines_do_not_warn_and_a_later_read_names_the_byte(tmp_path):
    access = tmp_path / "access.log"
    state = tmp_path / "state.json"
    good = LINE % ("192.0.2.1", 1, "/", 200)
    access.write_text(good * 2 + "garbage\n")
    args = dict(access_logs=[str(access)], state_file=str(state))
    kind, res = run_module(**args)
    assert kind == "ok" and res["summary"]["malformed"] == 1
    assert res["warnings_list"] == []
    with open(str(access), "a") as fobj:
        fobj.write(good + "\x00binary\n" + "more garbage\n")
    kind, res = run_module(**args)
    assert res["summary"]["lines"] == 3 and res["summary"]["malformed"] == 2
    offset = 2 * len(good) + len("garbage\n") + len(good)
    assert "2 of 3 lines could not be read" in res["warnings_list"][0]
    assert "; the line at byte %d: '\\x00binary'; " % offset in res["warnings_list"][0]


def test_a_json_log_format_copied_from_httpd_conf(tmp_path, monkeypatch):
    """Escaped quotes as in httpd.conf and the time in %{...}t directives (local time without %z)."""
    fmt = (
        '{ \\"time\\":\\"%{%Y-%m-%d}tT%{%T}t.%{msec_frac}t\\", \\"client\\":\\"%a\\", '
        '\\"request\\":\\"%r\\", \\"status\\":%>s, \\"referer\\":\\"%{Referer}i\\" }'
    )
    line = '{ "time":"2021-02-03T10:11:%02d.123", "client":"%s", "request":"GET %s HTTP/1.1", "status":%d, '
    line += '"referer":"-" }\n'
    access = tmp_path / "access.json"
    access.write_text(
        line % (1, "192.0.2.1", "/", 200)
        + line % (2, "203.0.113.5", "/cgi-bin/x.cgi", 404)
        + line % (59, "203.0.113.5", "/wp-login.php", 404)
    )
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the host's time zone (+09:00): the format has no %z
    time.tzset()
    kind, res = run_module(access_logs=[str(access)], access_format=fmt, tripwire_paths=["/wp-login.php"])
    assert kind == "ok", res
    assert res["summary"]["malformed"] == 0 and res["warnings_list"] == []
    client = res["clients"]["203.0.113.5"]
    assert client["offenses"] == {"missing_script": 2, "tripwire": 1}  # wp-login.php is a script too
    assert (client["first_seen"], client["last_seen"]) == ("2021-02-03T10:11:02+09:00", "2021-02-03T10:11:59+09:00")
    assert res["summary"]["first"] == "2021-02-03T10:11:01+09:00"  # 01:11:01 UTC, shown in local time


REPO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
# One request in each layout an OS's own access logs are written in (CentOS 7: access_log combined,
# ssl_access_log in the common format of mod_ssl's TransferLog; Debian: other_vhosts_access.log).
OS_LAYOUTS = {
    "RedHat": {
        "access_log": LINE % ("192.0.2.1", 1, "/cgi-bin/a.cgi", 404),
        "access_log-20210201.gz": LINE % ("192.0.2.2", 2, "/cgi-bin/a.cgi", 404),
        "ssl_access_log": '192.0.2.3 - - [03/Feb/2021:10:11:03 +0000] "GET /cgi-bin/a.cgi HTTP/1.1" 404 209\n',
        "ssl_request_log": '[03/Feb/2021:10:11:04 +0000] 192.0.2.9 TLSv1.2 AES128-SHA "GET / HTTP/1.1" 5\n',
    },
    "Debian": {
        "access.log": LINE % ("192.0.2.1", 1, "/cgi-bin/a.cgi", 404),
        "access.log.2.gz": LINE % ("192.0.2.2", 2, "/cgi-bin/a.cgi", 404),
        "other_vhosts_access.log": "www.example.com:443 " + LINE % ("192.0.2.3", 3, "/cgi-bin/a.cgi", 404),
    },
}


@pytest.mark.parametrize("family", sorted(OS_LAYOUTS))
def test_the_playbooks_default_logs_and_formats_read_each_os_layout(tmp_path, family):
    """blocklist_push.yml and the report role read every access log of the OS's layout, each in its own
    format, with no warning; a log of another kind (mod_ssl's ssl_request_log) is not among them."""
    with open(os.path.join(REPO, "playbooks", "blocklist_push.yml")) as fobj:
        push = yaml.safe_load(fobj)[0]["vars"]["blocklist_push_default_logs"][family]["access"]
    with open(os.path.join(REPO, "roles", "report", "vars", family + ".yml")) as fobj:
        report = yaml.safe_load(fobj)["report__os_access_logs"]
    assert push == report
    formats = []
    for path in ("playbooks/blocklist_push.yml", "roles/report/defaults/main.yml"):
        with open(os.path.join(REPO, path)) as fobj:
            formats.append(re.search(r"webshield_access_format \| default\((\[[^\]]*\])\)", fobj.read()).group(1))
    assert formats[0] == formats[1]
    for name, text in OS_LAYOUTS[family].items():
        if name.endswith(".gz"):
            with gzip.open(str(tmp_path / name), "wt") as fobj:
                fobj.write(text)
        else:
            (tmp_path / name).write_text(text)
    globs = [str(tmp_path / os.path.basename(glob)) for glob in push]
    kind, res = run_module(access_logs=globs, access_format=yaml.safe_load(formats[0]))
    assert kind == "ok" and res["warnings_list"] == []
    assert sorted(res["clients"]) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert all(c["offenses"] == {"missing_script": 1} for c in res["clients"].values())
    assert len(res["files"]) == 3 and res["summary"]["malformed"] == 0
