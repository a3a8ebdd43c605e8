# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fail2ban role's filters, run by the real fail2ban over the shared annotated sample logs.

Each filter template is rendered with the settings the sample logs state in their headers, written into a
temporary fail2ban config dir and run line by line through fail2ban's own Filter (f2b_probe.py, under the
system Python that has fail2ban). Checks: every "match": true line is matched with the annotated host and
time; "match": false and unannotated lines are not matched; every failregex has a sample; no line ever
charges an address other than its annotated host (log injection). Every check that runs fail2ban runs
twice: with this machine's fail2ban (1.x) and with 0.11.2 (EPEL 7, Debian 11; wr.FAIL2BANS).
"""

import json
import os
import re
import shutil
import subprocess

import pytest
import wsf_det_render as wr

HERE = os.path.dirname(os.path.abspath(__file__))
LOGS = os.path.join(wr.ROOT, "tests", "fixtures", "logs")
PROBE = os.path.join(HERE, "f2b_probe.py")

# Role settings the sample logs are written for (see each fixture's header).
FILTER_SETTINGS = {
    "fail2ban_tripwire_paths": ["/wp-login.php", "/.env", "/cgi-bin/old.cgi"],
    "fail2ban_redirect_allowed_hosts": ["www.example.com"],
    "__fail2ban_banaction": "iptables-ipset-proto6-allports",
}
FILTERS = ["webshield-noscript", "webshield-redirect", "webshield-tripwire", "webshield-flood", "webshield-recidive"]

FAILJSON = re.compile(r"^#+ ?failJSON:(.+)$")

pytestmark = pytest.mark.skipif(not os.path.exists(wr.F2B_PYTHON), reason="needs the system python3 with fail2ban")


def parse_samples(path):
    """[(lineno, annotation or None, text)] for every log line of a fail2ban sample file."""
    samples = []
    pending = None
    with open(path, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\n")
            found = FAILJSON.match(line)
            if found:
                pending = json.loads(found.group(1))
                continue
            if line.startswith("#") or not line.strip():
                continue
            samples.append((lineno, pending, line))
            pending = None
    return samples


def write_filter_dir(tmp_path, platform, settings, names=FILTERS):
    variables = wr.role_variables("fail2ban", platform, settings)
    filter_dir = tmp_path / "filter.d"
    filter_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = wr.render("fail2ban", "filter.d/%s.conf.j2" % name, variables)
        (filter_dir / ("%s.conf" % name)).write_text(text, encoding="utf-8")
    return tmp_path


def run_probe(confdir, name, logfile, f2b=wr.FAIL2BAN_SYSTEM):
    done = subprocess.run(
        [wr.F2B_PYTHON, PROBE, str(confdir), name, str(logfile)],
        capture_output=True,
        text=True,
        env=f2b.env(TZ="UTC"),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"].startswith(f2b.version_prefix), result["version"]
    return result


@pytest.fixture(scope="module", params=wr.FAIL2BANS)
def probed(request, tmp_path_factory):
    """fail2ban's verdict for every line of every sample log: {filter: (samples, probe output)}, per release."""
    confdir = write_filter_dir(tmp_path_factory.mktemp("f2b"), "debian12", FILTER_SETTINGS)
    results = {}
    for name in FILTERS:
        logfile = os.path.join(LOGS, name)
        results[name] = (parse_samples(logfile), run_probe(confdir, name, logfile, request.param))
    return results


def _by_line(result):
    return {entry["lineno"]: entry["matches"] for entry in result["lines"]}


@pytest.mark.parametrize("name", FILTERS)
def test_sample_file_has_both_kinds(probed, name):
    samples, _ = probed[name]
    kinds = {bool(note["match"]) for _, note, _ in samples if note}
    assert kinds == {True, False}, "%s needs match: true and match: false samples" % name


@pytest.mark.parametrize("name", FILTERS)
def test_true_lines_match_with_host_and_time(probed, name):
    samples, result = probed[name]
    matches = _by_line(result)
    checked = 0
    for lineno, note, text in samples:
        if not note or not note.get("match"):
            continue
        found = matches[lineno]
        assert found, "line %d not matched: %s" % (lineno, text)
        assert {m["host"] for m in found} == {note["host"]}, "line %d: %s" % (lineno, text)
        assert {m["time"] for m in found} == {note["time"]}, "line %d: %s" % (lineno, text)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", FILTERS)
def test_false_and_unannotated_lines_do_not_match(probed, name):
    samples, result = probed[name]
    matches = _by_line(result)
    wrong = [(lineno, text, matches[lineno]) for lineno, note, text in samples if not (note and note.get("match"))]
    wrong = [item for item in wrong if item[2]]
    assert wrong == []


@pytest.mark.parametrize("name", FILTERS)
def test_every_failregex_has_a_sample(probed, name):
    _, result = probed[name]
    used = {m["regex"] for entry in result["lines"] for m in entry["matches"]}
    assert used == set(range(len(result["regexes"])))


@pytest.mark.parametrize("name", FILTERS)
def test_no_line_charges_another_address(probed, name):
    """Injection lines included: whatever a line matches, the address is the annotated sender or nobody."""
    samples, result = probed[name]
    matches = _by_line(result)
    for lineno, note, text in samples:
        charged = {m["host"] for m in matches[lineno]}
        allowed = {note["host"]} if note and note.get("match") else set()
        assert charged <= allowed, "line %d charges %s: %s" % (lineno, charged, text)


# fail2ban's own log (recidive) carries no client-controlled text.
@pytest.mark.parametrize("name", [name for name in FILTERS if name != "webshield-recidive"])
def test_injection_samples_exist(probed, name):
    """Each access/error log filter is proven against at least one injection line."""
    samples, _ = probed[name]
    assert any(note and "injection" in note.get("desc", "") for _, note, _ in samples)


@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize("name", FILTERS)
def test_fail2ban_regex_cli_counts(tmp_path, name, f2b):
    """The command-line tool agrees: as many matched lines as "match": true samples."""
    confdir = write_filter_dir(tmp_path, "debian12", FILTER_SETTINGS, names=[name])
    shutil.copy(os.path.join(LOGS, name), tmp_path / "sample.log")
    filter_file = str(confdir / "filter.d" / ("%s.conf" % name))
    done = subprocess.run(
        f2b.command("fail2ban-regex") + ["--raw", str(tmp_path / "sample.log"), filter_file],
        capture_output=True,
        text=True,
        env=f2b.env(TZ="UTC"),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", done.stdout, re.MULTILINE)
    assert found, done.stdout
    expected = sum(1 for _, note, _ in parse_samples(os.path.join(LOGS, name)) if note and note.get("match"))
    assert int(found.group(1)) == expected


@pytest.mark.parametrize(
    ("platform", "name", "line", "host"),
    [
        # CentOS 7 (httpd 2.4.6, old-style ErrorLogFormat restored by the first field report)
        (
            "el7",
            "webshield-noscript",
            "[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.4:5678] AH01264: script not found or unable to stat: "
            "/var/www/cgi-bin/old.cgi",
            "192.0.2.4",
        ),
        (
            "el7",
            "webshield-noscript",
            "[Wed Feb 03 10:12:12 2021] [error] [client 198.51.100.8:40001] AH01215: script not found or unable to "
            "stat: at /var/www/cgi-bin/new.cgi line 12.: /var/www/cgi-bin/new.cgi",
            "198.51.100.8",
        ),
        # CentOS 7 with apache_logging's ErrorLogFormat (2.4 standard layout)
        (
            "el7",
            "webshield-noscript",
            "[Wed Feb 03 10:11:12.123456 2021] [cgi:error] [pid 1234] [client 192.0.2.2:51234] AH01264: script not "
            "found or unable to stat: /var/www/cgi-bin/old.cgi",
            "192.0.2.2",
        ),
        (
            "el9",
            "webshield-tripwire",
            '198.51.100.20 - - [03/Feb/2021:10:11:12 +0000] "GET /wp-login.php HTTP/1.1" 404 196 "-" "Mozilla/5.0"',
            "198.51.100.20",
        ),
        (
            "el7",
            "webshield-redirect",
            '203.0.113.5 - - [03/Feb/2021:10:11:12 +0000] "GET /cgi-bin/jump.cgi?url=http://evil.example/ HTTP/1.1" '
            '302 215 "-" "Mozilla/5.0"',
            "203.0.113.5",
        ),
        (
            "el7",
            "webshield-redirect",
            '203.0.113.5 - - [03/Feb/2021:10:11:12 +0000] "GET /cgi-bin/jump.cgi?url=https://www.example.com/ '
            'HTTP/1.1" 302 215 "-" "Mozilla/5.0"',
            None,
        ),
    ],
)
@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
def test_single_lines_per_platform(tmp_path, platform, name, line, host, *, f2b):
    confdir = write_filter_dir(tmp_path, platform, FILTER_SETTINGS, names=[name])
    logfile = tmp_path / "one.log"
    logfile.write_text(line + "\n", encoding="utf-8")
    result = run_probe(confdir, name, logfile, f2b)
    hosts = {m["host"] for m in result["lines"][0]["matches"]}
    assert hosts == ({host} if host else set())
