"""Render the report with the real role (ansible-playbook playbooks/report.yml on localhost, sample data), open
it in headless Debian Chromium and check what an operator sees: key figures, chart, drill-down, blocklist
evidence, no console message, and no markup from the logs ever executed (XSS).

Run: pytest tests/report -q   (needs /usr/bin/chromium; the screenshot lands in tests/output/report/)
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import sample_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
OUTPUT = os.path.join(ROOT, "tests", "output", "report")

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="needs Debian's chromium package")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


def render(tmp, results, plan):
    """Run the report role through playbooks/report.yml and return the output directory."""
    out = os.path.join(tmp, "out")
    extra = os.path.join(tmp, "vars.json")
    with open(extra, "w") as handle:
        json.dump(
            {
                "report_results": results,
                "report_plan": plan,
                "report_dir": out,
                "report_top": 40,
                "webshield_report_hosts": "localhost",
                "webshield_become": False,
                "ansible_python_interpreter": sys.executable,
            },
            handle,
        )
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [PLAYBOOK_BIN, "-i", "localhost,", "-c", "local", "playbooks/report.yml", "-e", "@" + extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, proc.stdout


def chromium(html, *args):
    """Run headless Chromium on a file; return (stdout, console lines)."""
    profile = tempfile.mkdtemp(prefix="wsf-rep-chromium-")
    try:
        proc = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, "--user-data-dir=" + profile, *args, "file://" + html],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@pytest.fixture(scope="module")
def fleet_report():
    tmp = tempfile.mkdtemp(prefix="wsf-rep-")
    try:
        out, stdout = render(tmp, sample_data.results(), sample_data.plan())
        html = os.path.join(out, "webshield-report.html")
        dom, console = chromium(html, "--dump-dom")
        os.makedirs(OUTPUT, exist_ok=True)
        shot = os.path.join(OUTPUT, "report.png")
        chromium(html, "--window-size=1400,2600", "--screenshot=" + shot)
        with open(html) as handle:
            source = handle.read()
        yield {"dir": out, "stdout": stdout, "dom": dom, "console": console, "source": source, "shot": shot}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def xss_report():
    tmp = tempfile.mkdtemp(prefix="wsf-rep-")
    try:
        out, _ = render(tmp, sample_data.xss_results(), sample_data.xss_plan())
        html = os.path.join(out, "webshield-report.html")
        dom, console = chromium(html, "--dump-dom")
        with open(html) as handle:
            source = handle.read()
        with open(os.path.join(out, "webshield-report.json")) as handle:
            model = json.load(handle)
        yield {"dir": out, "dom": dom, "console": console, "source": source, "model": model}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize(
    "name",
    ["webshield-report.html", "webshield-report.json"]
    + [
        "webshield-report-%s.csv" % t
        for t in (
            "days",
            "pages",
            "clients",
            "networks",
            "referers",
            "detectors",
            "bans",
            "jails",
            "files",
            "blocklist",
        )
    ],
)
def test_files_written(fleet_report, name):
    path = os.path.join(fleet_report["dir"], name)
    assert os.path.getsize(path) > 0
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"


@pytest.mark.parametrize(
    "element_id, text",
    [
        ("total-offending-hosts", "440"),
        ("hosts-covered", "193"),
        ("drop-rate", "0.439"),
        ("networks", "2"),
    ],
)
def test_summary_figures_shown(fleet_report, element_id, text):
    match = re.search(r'id="%s">([^<]*)<' % element_id, fleet_report["dom"])
    assert match, element_id
    assert match.group(1).strip() == text


@pytest.mark.parametrize(
    "needle, why",
    [
        ('data-ready="1"', "the page script ran to the end"),
        ('<svg class="chart"', "hits-per-day chart"),
        ("2025-03-10: 1,880 requests", "chart bar tooltip of the flood day"),
        ("web1.example.net", "per-server tab"),
        ("Offenses by detector", "detector table"),
        ("open_redirect", "open-redirect detector row"),
        ("fail2ban bans", "fail2ban table"),
        ("45.11.0.9", "a banned address"),
        ("198.51.100.0/24", "blocklist entry"),
        ("network/24: &gt;= 50 hits and &gt;= 30 offending hosts over the fleet", "entry evidence"),
        ("Candidates kept off the list", "excluded candidates"),
        ("special:shared", "why a candidate was excluded"),
        ("webshield-noscript", "fail2ban jail"),
        ("/var/log/apache2/access.log", "files read"),
        ('<code>%h %l %u %t "%r" %&gt;s %b', "the format a file was read with"),
        ("web3.example.net: fail2ban_logs: '/var/log/fail2ban.log*' matches no file", "module warning"),
        ("203.0.113.128/25", "removed entry"),
        ("bitrix/redirect.php", "referers"),
        # Drill-down opened by the script on the busiest day, its top page and top client:
        ('<button class="item on" type="button"><span>2025-03-10</span>', "drill-down day"),
        ("cocoon-service-worker.js</span>", "drill-down page"),
        ('<button class="item on" type="button"><span>192.0.2.77</span>', "drill-down client"),
        ("blocked by 192.0.2.77/32", "drill-down blocklist badge"),
        ('[web1.example.net] 192.0.2.77 - - [10/Mar/2025:08:49:02 +0900] "GET', "drill-down raw line"),
    ],
)
def test_key_content_shown(fleet_report, needle, why):
    assert needle in fleet_report["dom"], why


def test_console_is_clean(fleet_report):
    assert fleet_report["console"] == []
    assert not re.search(r"<body[^>]*\bdata-js-errors=", fleet_report["dom"])


def test_no_network_assets(fleet_report):
    source = fleet_report["source"]
    assert not re.search(r'\b(?:src|href)\s*=\s*"(?:https?:)?//', source)
    assert "@import" not in source
    assert "default-src 'none'" in source


def test_screenshot_taken(fleet_report):
    with open(fleet_report["shot"], "rb") as handle:
        head = handle.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(fleet_report["shot"]) > 50000


def test_playbook_prints_summary(fleet_report):
    for line in ("Total offending hosts: 440", "Hosts covered by the blocklist: 193", "Drop rate: 0.439"):
        assert line in fleet_report["stdout"]


def test_blocklist_csv_has_evidence(fleet_report):
    with open(os.path.join(fleet_report["dir"], "webshield-report-blocklist.csv")) as handle:
        rows = list(csv.DictReader(handle))
    by_cidr = {r["cidr"]: r for r in rows}
    assert set(by_cidr) == {"198.51.100.0/24", "203.0.113.0/24", "192.0.2.77/32"}
    assert by_cidr["192.0.2.77/32"]["status"] == "added"
    assert by_cidr["198.51.100.0/24"]["hosts"] == "96"


# --- XSS: every place attacker text reaches ---------------------------------------------------------------


def test_xss_never_executes(xss_report):
    # Every payload sets data-pwned on <html> when it runs; the drill-down shows them all as text.
    assert re.search(r"<html[^>]*>", xss_report["dom"]).group(0) == '<html lang="en">'
    assert "data-pwned','4')" in xss_report["dom"]
    assert xss_report["console"] == []
    assert 'data-ready="1"' in xss_report["dom"]


@pytest.mark.parametrize(
    "raw",
    [
        sample_data.XSS_REFERER,
        sample_data.XSS_PAGE,
        sample_data.EVIL_SERVER,
        "<script>" + sample_data.PWN % 4,
        "<script>" + sample_data.PWN % 6,
        "<b>x</b>",
    ],
)
def test_markup_from_logs_is_escaped_in_source(xss_report, raw):
    assert raw not in xss_report["source"]


@pytest.mark.parametrize(
    "shown",
    [
        # Shown to the operator as text, rendered by the drill-down (textContent) and the tables:
        "&lt;script&gt;document.documentElement.setAttribute('data-pwned','4')&lt;/script&gt;&lt;!--",
        "&lt;/textarea&gt;&lt;/script&gt;&lt;svg/onload=document.documentElement.setAttribute('data-pwned','3')&gt;",
        'http://evil.example/"&gt;&lt;script&gt;',
        'Server web9"&gt;&lt;script&gt;',
        "bad\\x1b[31m control \\x00 chars",
    ],
)
def test_markup_from_logs_is_shown_as_text(xss_report, shown):
    assert shown in xss_report["dom"]


def test_script_count_is_fixed(xss_report):
    assert len(re.findall(r"<script\b", xss_report["source"])) == 2


def test_json_keeps_raw_text(xss_report):
    scope = xss_report["model"]["scopes"][1]
    assert scope["name"] == sample_data.EVIL_SERVER
    assert scope["referers"][0]["referer"] == sample_data.XSS_REFERER
