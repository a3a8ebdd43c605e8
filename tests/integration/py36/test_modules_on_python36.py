# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules run on a real Python 3.6 (the oldest target Python the collection supports), with the
module_utils of ansible-core 2.16 (the last ansible-core that manages Python 3.6 targets), and give the same
results as on the controller's Python.

vermin checks the syntax and the standard library calls of the modules statically; this runs them. The
interpreter is ``python3.6`` on PATH or pyenv's 3.6 (present on this project's machines); without one the
tests are skipped and say so.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import importlib.util
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "logs")
PREFIX = "ansible_collections.fleetguard.webshield.plugins.modules."
_spec = importlib.util.spec_from_file_location(
    "compressors", os.path.join(ROOT, "tests", "unit", "plugins", "module_utils", "compressors.py")
)
compressors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compressors)


def _python36():
    """A working Python 3.6: pyenv's, else python3.6 on PATH (a pyenv shim on PATH may not run)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")), reverse=True)
    candidates.append(shutil.which("python3.6"))
    for path in filter(None, candidates):
        try:
            out = subprocess.run(
                [path, "-c", "import sys; print(sys.version_info[:2] == (3, 6))"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.stdout.strip() == b"True":
            return path
    return None


def _core216():
    """site-packages of the ansible-core 2.16 virtual environment scripts/setup.sh makes."""
    found = sorted(glob.glob(os.path.join(ROOT, ".venv-core216", "lib", "python3*", "site-packages")))
    return found[-1] if found else None


PY36 = _python36()
CORE216 = _core216()

pytestmark = pytest.mark.skipif(
    PY36 is None or CORE216 is None, reason="needs a Python 3.6 interpreter and .venv-core216 (scripts/setup.sh)"
)


def run_module(python, name, args, tmp_path, prefix=()):
    """Run module ``name`` as Ansible does (args file), with ``python``; returns its JSON result."""
    path = tmp_path / ("args-%s.json" % secrets.token_hex(4))
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    pythonpath = COLLECTIONS if python == sys.executable else COLLECTIONS + os.pathsep + CORE216
    cmd = list(prefix) + ["env", "PYTHONPATH=" + pythonpath, python, "-m", PREFIX + name, str(path)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("%s: output is not JSON: %s %s" % (python, proc.stdout[-2000:], proc.stderr[-2000:]))


def _comparable(result):
    """The result without what differs by ansible-core version (warning objects, the invocation) and time."""
    result = dict(result)
    for key in ("invocation", "warnings", "deprecations"):
        result.pop(key, None)
    result["summary"] = dict(result["summary"], seconds=None)
    return result


def test_python36_is_really_3_6():
    out = subprocess.run([PY36, "-c", "import sys; print(sys.version_info[:2])"], stdout=subprocess.PIPE, check=True)
    assert out.stdout.strip() == b"(3, 6)"


def test_offender_stats_on_python36_matches_the_controller(tmp_path):
    """Every sample log (access, error, fail2ban), state file written: the same result on 3.6 and 3.11."""
    args = {
        "access_logs": [os.path.join(FIXTURES, "webshield-" + n) for n in ("redirect", "tripwire", "flood")],
        "error_logs": [os.path.join(FIXTURES, "webshield-noscript")],
        "fail2ban_logs": [os.path.join(FIXTURES, "webshield-recidive")],
        "missing": "fail",
        "flood_windows": [{"seconds": 60, "requests": 3}],  # the flood sample log's threshold
        "tripwire_paths": ["/wp-login.php", "/.env"],
        "top": 50,
        "state_file": str(tmp_path / "state-36.json"),
    }
    old = run_module(PY36, "offender_stats", args, tmp_path)
    new = run_module(sys.executable, "offender_stats", dict(args, state_file=str(tmp_path / "state-3.json")), tmp_path)
    assert not old.get("failed"), old.get("msg")
    assert old["summary"]["lines"] > 20
    # The only warnings: sample logs that are more comment (failJSON annotation) than log lines.
    assert all("lines could not be read" in w and "; line 1: '# " in w for w in old["warnings_list"]), old[
        "warnings_list"
    ]
    assert {"tripwire", "missing_script", "open_redirect", "fail2ban", "flood"} <= set(
        det for client in old["clients"].values() for det in client["offenses"]
    )
    assert _comparable(old) == _comparable(new)
    with open(str(tmp_path / "state-36.json")) as a, open(str(tmp_path / "state-3.json")) as b:
        assert json.load(a)["files"] == json.load(b)["files"]


def test_offender_stats_formats_on_python36_match_the_controller(tmp_path):
    """A list of formats, one of them with %{format}t directives in local time and JSON quotes as in
    httpd.conf: the same result on 3.6 and 3.11."""
    json_format = (
        '{ \\"time\\":\\"%{%Y-%m-%d}tT%{%T}t\\", \\"client\\":\\"%a\\", \\"request\\":\\"%r\\", \\"status\\":%>s }'
    )
    json_log = tmp_path / "access.json"
    json_log.write_text(
        "".join(
            '{ "time":"2021-02-03T10:11:%02d", "client":"192.0.2.%d", "request":"GET %s HTTP/1.1", "status":404 }\n'
            % (i, i % 3, "/cgi-bin/x.cgi" if i % 2 else "/")
            for i in range(30)
        )
    )
    common_log = tmp_path / "ssl_access_log"
    common_log.write_text('198.51.100.7 - - [03/Feb/2021:10:11:12 +0000] "GET /.env HTTP/1.1" 404 209\n' * 3)
    args = {
        "access_logs": [str(json_log), str(common_log)],
        "access_format": ["combined", json_format, "common"],
        "tripwire_paths": ["/.env"],
    }
    old = run_module(PY36, "offender_stats", args, tmp_path, prefix=("env", "TZ=Asia/Tokyo"))
    new = run_module(sys.executable, "offender_stats", args, tmp_path, prefix=("env", "TZ=Asia/Tokyo"))
    assert not old.get("failed"), old.get("msg")
    assert old["summary"]["lines"] == 33 and old["summary"]["malformed"] == 0 and old["warnings_list"] == []
    assert old["summary"]["first"] == "2021-02-03T10:11:00+09:00"
    assert [f["format"] for f in old["files"]] == [json_format.replace('\\"', '"'), '%h %l %u %t "%r" %>s %b']
    assert old["clients"]["198.51.100.7"]["offenses"] == {"tripwire": 3}
    assert _comparable(old) == _comparable(new)


def test_offender_stats_compressed_rotations_and_fail2ban_state_on_python36(tmp_path):
    """A rotation set compressed with gzip, bzip2, xz and zstd (the zstd program), and the fail2ban part of the
    state file (database mark, recent bans) written and read back: the same results on 3.6 and 3.11."""
    now = int(time.time()) - 120
    line = '192.0.2.%d - - [03/Feb/2021:10:11:%02d +0000] "GET /cgi-bin/a.cgi HTTP/1.1" 404 100 "-" "UA"\n'
    for k, ext in enumerate([".zst", ".xz", ".bz2", ".gz"]):  # access.log.5.zst is the oldest
        data = "".join(line % (k + 1, s) for s in range(k * 10, k * 10 + 10)).encode()
        compressors.write(tmp_path / ("access.log.%d%s" % (5 - k, ext)), data)
    (tmp_path / "access.log.1").write_text(line % (9, 50))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    (tmp_path / "fail2ban.log").write_text("%s,123 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.7\n" % stamp)
    conn = sqlite3.connect(str(tmp_path / "fail2ban.sqlite3"))
    conn.execute("CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON)")
    conn.execute("INSERT INTO bans VALUES ('web', '192.0.2.8', ?, '{}')", (now + 1,))
    conn.commit()
    args = {
        "access_logs": [str(tmp_path / "access.log*")],
        "fail2ban_logs": [str(tmp_path / "fail2ban.log")],
        "fail2ban_db": str(tmp_path / "fail2ban.sqlite3"),
        "missing": "fail",
    }
    results = {}
    for python, tag in ((PY36, "36"), (sys.executable, "3")):
        state = str(tmp_path / ("state-%s.json" % tag))
        results[tag] = [run_module(python, "offender_stats", dict(args, state_file=state), tmp_path)]
    # the database gets the log's ban, the log the database's: a second run counts neither again
    conn.execute("INSERT INTO bans VALUES ('web', '192.0.2.7', ?, '{}')", (now,))
    conn.commit()
    conn.close()
    with open(str(tmp_path / "fail2ban.log"), "a") as fobj:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now + 1))
        fobj.write("%s,456 fail2ban.actions [1]: NOTICE  [web] Ban 192.0.2.8\n" % stamp)
    for python, tag in ((PY36, "36"), (sys.executable, "3")):
        state = str(tmp_path / ("state-%s.json" % tag))
        results[tag].append(run_module(python, "offender_stats", dict(args, state_file=state), tmp_path))
    first, second = results["36"]
    assert not first.get("failed") and not second.get("failed"), (first.get("msg"), second.get("msg"))
    assert [os.path.basename(f["path"]) for f in first["files"]][:5] == [
        "access.log.5.zst",
        "access.log.4.xz",
        "access.log.3.bz2",
        "access.log.2.gz",
        "access.log.1",
    ]
    assert first["summary"]["lines"] == 42 and first["summary"]["malformed"] == 0
    assert {c: v["offenses"].get("fail2ban", 0) for c, v in first["clients"].items() if c.endswith((".7", ".8"))} == {
        "192.0.2.7": 1,
        "192.0.2.8": 1,
    }
    assert second["clients"] == {} and second["summary"]["lines"] == 1
    for old, new in zip(results["36"], results["3"]):
        assert _comparable(dict(old, files=None)) == _comparable(dict(new, files=None))
    with open(str(tmp_path / "state-36.json")) as a, open(str(tmp_path / "state-3.json")) as b:
        old_state, new_state = json.load(a), json.load(b)
    assert (
        old_state["fail2ban_recent"]
        == new_state["fail2ban_recent"]
        == [
            ["web", "192.0.2.7", now],
            ["web", "192.0.2.8", now + 1],
        ]
    )


def test_offender_stats_two_processes_on_python36(tmp_path):
    """A log over the two-process threshold (48 MiB): fork, the part-by-part merge and pickling on 3.6."""
    log = tmp_path / "access.log"
    line = '%s - - [03/Feb/2021:10:%02d:%02d +0000] "GET %s HTTP/1.1" %d 512 "-" "Mozilla/5.0 \\"x\\""\n'
    rows = []
    for i in range(4000):
        client = "192.0.%d.%d" % (i % 50, i % 200) if i % 7 else "2001:db8::%x" % (i % 300)
        path = ("/", "/wp-login.php", "/cgi-bin/x.cgi", "/go?u=http%3A%2F%2Fevil.example%2F")[i % 4]
        rows.append(line % (client, (i // 60) % 60, i % 60, path, 404 if i % 3 else 200))
    block = "".join(rows)
    with open(str(log), "w") as fobj:
        for _i in range(50 * 2**20 // len(block) + 1):
            fobj.write(block)
    args = {"access_logs": [str(log)], "tripwire_paths": ["/wp-login.php"], "workers": 2, "top": 20}
    old = run_module(PY36, "offender_stats", args, tmp_path)
    new = run_module(sys.executable, "offender_stats", args, tmp_path)
    assert not old.get("failed"), old.get("msg")
    assert old["summary"]["lines"] == new["summary"]["lines"] > 250000
    assert _comparable(old) == _comparable(new)


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(b) for b in ("ip", "ipset", "iptables")),
    reason="needs root, iproute2, ipset and iptables",
)
def test_ipset_blocklist_on_python36_in_a_network_namespace(tmp_path):
    """Load, rerun unchanged, change and remove a set on the real kernel with Python 3.6."""
    ns = "wsf-py36-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inside = ["ip", "netns", "exec", ns]
        entries = ["198.51.100.0/25", "198.51.100.128/25", "203.0.113.7", "2001:db8:5::/48"]
        first = run_module(PY36, "ipset_blocklist", {"name": "wsf36", "entries": entries}, tmp_path, inside)
        assert first.get("changed") is True, first
        listed = subprocess.run(
            inside + ["ipset", "list", "wsf36", "-o", "save"],
            stdout=subprocess.PIPE,
            universal_newlines=True,
            check=True,
        ).stdout
        assert sorted(row.split()[2] for row in listed.splitlines() if row.startswith("add ")) == [
            "198.51.100.0/24",
            "203.0.113.7",
        ]
        again = run_module(PY36, "ipset_blocklist", {"name": "wsf36", "entries": entries}, tmp_path, inside)
        assert again.get("changed") is False, again
        changed = run_module(PY36, "ipset_blocklist", {"name": "wsf36", "entries": entries[2:]}, tmp_path, inside)
        assert changed["changed"] is True and changed["removed"] == ["198.51.100.0/24"]
        gone = run_module(PY36, "ipset_blocklist", {"name": "wsf36", "state": "absent"}, tmp_path, inside)
        assert gone["changed"] is True
        listing = subprocess.run(inside + ["ipset", "list", "wsf36"], stderr=subprocess.DEVNULL, check=False)
        assert listing.returncode != 0
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
