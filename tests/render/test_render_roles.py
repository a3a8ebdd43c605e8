# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render apache_logging and fail2ban with the EL 7, EL 9 and Debian variables and check the output with
the real tools of this machine: `apache2 -t` on the snippet inside a minimal config, `fail2ban-client -t`
on the whole jail configuration with the EL paths (inside a private mount namespace, so the EL log paths
exist without touching the host), the validation helper's restore-on-failure, and a live Apache whose
error and access lines the rendered filters must charge to the real client. The fail2ban-client checks
run with this machine's fail2ban (1.x) and with 0.11.2 (EPEL 7, Debian 11), each with its own stock
action.d/filter.d (wr.FAIL2BANS). The ban actions are checked from `fail2ban-client -d` as fail2ban resolves
them per address family (DROP for IPv4 and IPv6, TCP and UDP), and run with the real tools in a private
network namespace; the role's own settings check (tasks/assert.yml) runs under ansible-playbook.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "filters"))
import wsf_det_render as wr  # noqa: E402

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
F2B_CLIENT = "/usr/bin/fail2ban-client"
HELPER = os.path.join(wr.ROLES, "apache_logging", "files", "webshield-apache-validate")
PROBE = os.path.join(wr.ROOT, "tests", "filters", "f2b_probe.py")
ACTION_PROBE = os.path.join(wr.ROOT, "tests", "filters", "f2b_action_probe.py")
PLATFORMS = ["el7", "el9", "debian12"]

needs_apache = pytest.mark.skipif(not os.path.exists(APACHE), reason="needs apache2")
needs_fail2ban = pytest.mark.skipif(not os.path.exists(F2B_CLIENT), reason="needs fail2ban")

PROXY_SETTINGS = {
    "apache_logging_trusted_proxies": ["127.0.0.1", "192.0.2.0/24"],
    "apache_logging_retired_scripts": ["/cgi-bin/old.cgi", "/legacy/jump.pl"],
}


@contextlib.contextmanager
def world_readable_tmpdir():
    """A temp dir Apache's worker user can traverse (pytest's tmp_path is 0700); removed even on failure."""
    path = tempfile.mkdtemp(prefix="wsf-det-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def minimal_httpd_conf(root, snippet, listen=None, extra="", include="Include"):
    """A config for this machine's apache2 that includes the rendered snippet like the distributions do.

    ServerRoot has a "modules" link so an EL snippet's relative LoadModule path resolves.
    """
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    if not os.path.exists(os.path.join(root, "modules")):
        os.symlink(MODULES, os.path.join(root, "modules"))
    modules = ["mpm_event", "authz_core", "alias", "mime", "cgid"]
    lines = ["ServerRoot %s" % root, "ServerName localhost", "PidFile %s/httpd.pid" % root]
    lines += ["DefaultRuntimeDir %s" % root, "TypesConfig /etc/mime.types"]
    lines += ["LoadModule %s_module %s/mod_%s.so" % (name, MODULES, name) for name in modules]
    lines += ["ScriptSock %s/cgid.sock" % root, "ErrorLog %s/logs/error.log" % root, "LogLevel warn"]
    lines += ['LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined']
    lines += ["CustomLog %s/logs/access.log combined" % root]
    if listen:
        lines += ["Listen %s" % listen, "User www-data", "Group www-data"]
    else:
        lines += ["Listen 127.0.0.1:1"]
    lines += [extra, "%s %s" % (include, snippet)]
    path = os.path.join(root, "httpd.conf")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def render_snippet(platform, settings, directory):
    variables = wr.role_variables("apache_logging", platform, settings)
    text = wr.render("apache_logging", "webshield-logging.conf.j2", variables)
    path = os.path.join(directory, "webshield-logging.conf")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path, text


# ---------------------------------------------------------------- apache_logging: syntax with apache2 -t


@needs_apache
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    ("settings", "expect_ok", "expect_text"),
    [
        ({}, True, ["ErrorLogFormat", "[client\\ %a]", "LogLevel cgid:warn"]),
        (PROXY_SETTINGS, True, ["RemoteIPTrustedProxy 127.0.0.1 192.0.2.0/24", 'Redirect gone "/cgi-bin/old.cgi"']),
        ({"apache_logging_loglevel": ["core:info"]}, True, ["<IfModule core.c>", "LogLevel core:info"]),
        # Proof that the check can fail: a header name Apache refuses.
        ({"apache_logging_trusted_proxies": ["127.0.0.1"], "apache_logging_remoteip_header": ""}, False, []),
        ({"apache_logging_loglevel": ["cgid:loud"]}, False, []),
    ],
)
def test_snippet_passes_apache_config_test(tmp_path, platform, settings, expect_ok, expect_text):
    snippet, text = render_snippet(platform, settings, str(tmp_path))
    for piece in expect_text:
        assert piece in text
    # On Debian the role enables mod_remoteip with a2enmod; the EL snippet loads it itself.
    extra = ""
    if platform == "debian12" and settings.get("apache_logging_trusted_proxies"):
        extra = "LoadModule remoteip_module %s/mod_remoteip.so" % MODULES
    conf = minimal_httpd_conf(str(tmp_path), snippet, extra=extra)
    done = subprocess.run([APACHE, "-t", "-f", conf], capture_output=True, text=True, check=False)
    assert (done.returncode == 0) is expect_ok, done.stderr
    if expect_ok:
        assert "Syntax OK" in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("platform", "layout", "conf_path", "bytes_field"),
    [
        ("el7", "redhat", "/etc/httpd/conf.d/webshield-logging.conf", "%b"),
        ("el9", "redhat", "/etc/httpd/conf.d/webshield-logging.conf", "%b"),
        ("debian12", "debian", "/etc/apache2/conf-available/webshield-logging.conf", "%O"),
    ],
)
def test_os_variables_pick_the_layout(platform, layout, conf_path, bytes_field):
    variables = wr.role_variables("apache_logging", platform, PROXY_SETTINGS)
    assert wr.value(variables, "__apache_logging_layout") == layout
    assert wr.value(variables, "__apache_logging_conf_path") == conf_path
    text = wr.render("apache_logging", "webshield-logging.conf.j2", variables)
    assert '%a %l %u %t \\"%r\\" %>s ' + bytes_field + ' \\"%{Referer}i\\"' in text
    assert ("LoadModule remoteip_module modules/mod_remoteip.so" in text) is (layout == "redhat")


# ---------------------------------------------------------------- apache_logging: the validation helper


def _helper_tree(root):
    """conf-available + conf-enabled like Debian, and a main config that includes conf-enabled/*.conf."""
    for sub in ("conf-available", "conf-enabled"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    snippet = os.path.join(root, "conf-enabled", "*.conf")
    return minimal_httpd_conf(root, snippet, include="IncludeOptional")


GOOD = 'ErrorLogFormat "[%{u}t] [client\\ %a] %M"\n'
OLD = "LogLevel warn\n"
BAD = "ThisIsNoDirective on\n"


@needs_apache
@pytest.mark.parametrize(
    ("old", "candidate", "link", "expect_rc_zero"),
    [
        (None, GOOD, "missing", True),  # first run: valid, link made for the test only
        (None, BAD, "missing", False),  # first run: invalid -> refused (proves the temporary link is read)
        (OLD, BAD, "present", False),  # enabled file, invalid candidate -> refused, old stays
        (OLD, GOOD, "present", True),  # enabled file, valid candidate -> accepted, old still restored
        (OLD, BAD, "none", True),  # no link given and none there: the file is not included, nothing to refuse
    ],
)
def test_validate_helper_always_restores(tmp_path, old, candidate, link, expect_rc_zero):
    with_link = link != "none"
    link_exists = link == "present"
    conf = _helper_tree(str(tmp_path))
    dest = tmp_path / "conf-available" / "webshield-logging.conf"
    link_path = tmp_path / "conf-enabled" / "webshield-logging.conf"
    if old is not None:
        dest.write_text(old)
        os.chmod(dest, 0o640)
    if link_exists:
        link_path.symlink_to(dest)
    cand = tmp_path / "candidate.conf"
    cand.write_text(candidate)
    args = [HELPER, str(cand), str(dest)] + ([str(link_path)] if with_link else []) + ["--", APACHE, "-t", "-f", conf]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert (done.returncode == 0) is expect_rc_zero, done.stderr
    # Whatever happened, the tree is exactly as before.
    if old is None:
        assert not dest.exists()
    else:
        assert dest.read_text() == old
        assert oct(os.stat(dest).st_mode & 0o777) == oct(0o640)
    assert link_path.is_symlink() is link_exists
    assert sorted(p.name for p in (tmp_path / "conf-available").iterdir()) == (
        [] if old is None else ["webshield-logging.conf"]
    )


@pytest.mark.parametrize("args", [[], ["a"], ["a", "b", "c"], ["a", "b", "c", "d", "e"]])
def test_validate_helper_usage_errors(tmp_path, args):
    done = subprocess.run([HELPER, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 64
    assert "usage" in done.stderr or "not a file" in done.stderr


# ---------------------------------------------------------------- fail2ban: whole configuration, fail2ban-client -t


def _f2b_conf_dir(root, platform, settings, banaction, f2b=wr.FAIL2BAN_SYSTEM):
    """A full fail2ban config dir: the release's stock files (for action.d/filter.d includes) without the
    distribution's jail.d, plus the role's files rendered for the platform."""
    confdir = os.path.join(root, "fail2ban")
    shutil.copytree(f2b.confdir, confdir, symlinks=True)
    for name in os.listdir(os.path.join(confdir, "jail.d")):
        os.unlink(os.path.join(confdir, "jail.d", name))
    variables = wr.role_variables("fail2ban", platform, dict(settings, __fail2ban_banaction=banaction))
    for item in wr.value(variables, "__fail2ban_files"):
        with open(os.path.join(confdir, item["dest"]), "w", encoding="utf-8") as handle:
            handle.write(wr.render("fail2ban", item["src"], variables))
    return confdir, variables


def _test_in_private_mounts(confdir, log_files, f2b=wr.FAIL2BAN_SYSTEM, mode="-t"):
    """fail2ban-client -t (or -d: dump) with the given log files present, in a private mount namespace (host
    untouched)."""
    touch = " && ".join('mkdir -p "$(dirname %s)" && : > %s' % (path, path) for path in log_files)
    client = f2b.shell_command("fail2ban-client")
    script = "mount -t tmpfs tmpfs /var/log && %s && %s %s -c %s" % (touch, client, mode, confdir)
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False)


EL_LOGS = ["/var/log/httpd/error_log", "/var/log/httpd/access_log", "/var/log/fail2ban.log"]
EL_SSL_LOGS = ["/var/log/httpd/ssl_error_log", "/var/log/httpd/ssl_access_log", "/var/log/fail2ban.log"]
DEBIAN_LOGS = ["/var/log/apache2/error.log", "/var/log/apache2/access.log", "/var/log/fail2ban.log"]


@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
def test_fail2ban_release_under_test(f2b):
    """The releases really differ: the client the checks below run reports the expected version."""
    done = subprocess.run(
        f2b.command("fail2ban-client") + ["--version"], capture_output=True, text=True, env=f2b.env(), check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Fail2Ban v" + f2b.version_prefix in done.stdout + done.stderr


@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize(
    ("platform", "firewall", "logs", "expect_ok"),
    [
        ("el7", "iptables", EL_LOGS, True),
        # CentOS 7 where firewalld runs (its default): firewallcmd-ipset.
        ("el7", "firewalld", EL_LOGS, True),
        ("el9", "nftables", EL_SSL_LOGS, True),
        ("el9", "firewalld", EL_LOGS, True),
        ("debian12", "nftables", DEBIAN_LOGS, True),
        # Proof that the check can fail: EL paths missing (the jail would not start).
        ("el7", "iptables", DEBIAN_LOGS, False),
    ],
)
def test_jail_config_passes_fail2ban_client_test(tmp_path, platform, firewall, logs, expect_ok, *, f2b):
    variables = wr.role_variables("fail2ban", platform, {})
    banaction = wr.value(variables, "__fail2ban_ban_actions")[firewall]
    settings = {"fail2ban_tripwire_paths": ["/.env"], "fail2ban_redirect_allowed_hosts": ["www.example.com"]}
    confdir, variables = _f2b_conf_dir(str(tmp_path), platform, settings, banaction, f2b)
    jail = (tmp_path / "fail2ban" / "jail.d" / "webshield.local").read_text()
    for path in wr.value(variables, "__fail2ban_error_logs") + wr.value(variables, "__fail2ban_access_logs"):
        assert path in jail
    assert "action = %s" % banaction in jail
    done = _test_in_private_mounts(confdir, logs, f2b)
    assert (done.returncode == 0) is expect_ok, done.stdout + done.stderr
    if expect_ok:
        assert "OK: configuration test is successful" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("platform", "error_glob", "access_glob", "firewall"),
    [
        ("el7", "/var/log/httpd/*error_log", "/var/log/httpd/*access_log", "iptables"),
        ("el9", "/var/log/httpd/*error_log", "/var/log/httpd/*access_log", "nftables"),
        ("debian12", "/var/log/apache2/*error.log", "/var/log/apache2/*access.log", "nftables"),
    ],
)
def test_fail2ban_os_variables(platform, error_glob, access_glob, firewall):
    variables = wr.role_variables("fail2ban", platform, {})
    assert wr.value(variables, "__fail2ban_error_logs") == [error_glob]
    assert wr.value(variables, "__fail2ban_access_logs") == [access_glob]
    assert wr.value(variables, "__fail2ban_firewall") == firewall


@pytest.mark.parametrize(
    ("overrides", "env", "expected"),
    [
        ({}, {}, ["127.0.0.1/8", "::1"]),
        ({}, {"SSH_CLIENT": "192.0.2.9 50000 22"}, ["127.0.0.1/8", "::1", "192.0.2.9"]),
        ({"fail2ban_ignore_controller": False}, {"SSH_CLIENT": "192.0.2.9 50000 22"}, ["127.0.0.1/8", "::1"]),
        (
            {"webshield_trusted_networks": ["127.0.0.1/32"], "fail2ban_ignoreip_extra": ["198.51.100.0/24"]},
            {"SSH_CLIENT": "2001:db8::1 50000 22"},
            ["127.0.0.1/32", "2001:db8::1", "198.51.100.0/24"],
        ),
    ],
)
def test_ignoreip_holds_trusted_networks_and_controller(overrides, env, expected):
    variables = wr.role_variables("fail2ban", "debian12", overrides)
    variables["ansible_facts"]["env"] = env
    assert wr.value(variables, "__fail2ban_ignoreip") == expected
    variables["__fail2ban_banaction"] = "nftables[type=allports, blocktype=drop]"
    jail = wr.render("fail2ban", "jail.local.j2", variables)
    assert jail.count("ignoreip = %s\n" % " ".join(expected)) == 5


# ---------------------------------------------------------------- live Apache: rendered snippet + rendered filters


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_apache(conf, port):
    """Apache started with ``conf`` (made by minimal_httpd_conf) and listening on ``port``; yields its base
    URL. Stopped afterwards, also on failure, and waited for until its pid file is gone (bounded)."""
    started = subprocess.run([APACHE, "-f", conf, "-k", "start"], capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    try:
        for _ in range(50):  # wait for the listener (bounded)
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.1)
        yield "http://127.0.0.1:%d" % port
    finally:
        subprocess.run([APACHE, "-f", conf, "-k", "stop"], capture_output=True, check=False)
        for _ in range(50):
            if not os.path.exists(os.path.join(os.path.dirname(conf), "httpd.pid")):
                break
            time.sleep(0.1)


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _probe(confdir, name, logfile):
    done = subprocess.run(
        [wr.F2B_PYTHON, PROBE, confdir, name, logfile],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [m for entry in json.loads(done.stdout)["lines"] for m in entry["matches"]]


@needs_apache
@needs_fail2ban
@pytest.mark.skipif(os.geteuid() != 0, reason="starts Apache with a worker user")
@pytest.mark.parametrize(
    ("settings", "headers", "client"),
    [
        ({"apache_logging_retired_scripts": ["/cgi-bin/old.cgi"]}, {}, "127.0.0.1"),
        # Behind a trusted proxy (loopback here), both logs name the forwarded client.
        (
            {"apache_logging_retired_scripts": ["/cgi-bin/old.cgi"], "apache_logging_trusted_proxies": ["127.0.0.1"]},
            {"X-Forwarded-For": "192.0.2.77"},
            "192.0.2.77",
        ),
    ],
)
def test_live_apache_lines_are_charged_to_the_client(settings, headers, client):
    with world_readable_tmpdir() as root:
        cgi = os.path.join(root, "cgi-bin")
        os.makedirs(cgi)
        with open(os.path.join(cgi, "hello.cgi"), "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello\\n'\n")
        os.chmod(os.path.join(cgi, "hello.cgi"), 0o755)
        snippet, _ = render_snippet("debian12", settings, root)
        extra = "LoadModule remoteip_module %s/mod_remoteip.so\nScriptAlias /cgi-bin/ %s/\n" % (MODULES, cgi)
        extra += '<Directory "%s">\n  Require all granted\n</Directory>\nDocumentRoot %s' % (root, root)
        port = _free_port()
        conf = minimal_httpd_conf(root, snippet, listen="127.0.0.1:%d" % port, extra=extra)
        with running_apache(conf, port) as base:
            for _ in range(50):  # mod_cgid's daemon may answer 503 for a moment after the start (bounded)
                if _get(base + "/cgi-bin/hello.cgi", headers) == 200:
                    break
                time.sleep(0.1)
            assert _get(base + "/cgi-bin/hello.cgi", headers) == 200
            assert _get(base + "/cgi-bin/missing.cgi", dict(headers, Referer="http://x/ [client 198.51.100.7]")) == 404
            assert _get(base + "/cgi-bin/old.cgi", headers) == 410
            assert _get(base + "/go?url=http://evil.example/", headers) == 404
        settings_f2b = {"fail2ban_tripwire_paths": ["/cgi-bin/old.cgi"], "__fail2ban_banaction": "nftables"}
        variables = wr.role_variables("fail2ban", "debian12", settings_f2b)
        os.makedirs(os.path.join(root, "f2b", "filter.d"))
        for name in ("webshield-noscript", "webshield-tripwire", "webshield-redirect"):
            with open(os.path.join(root, "f2b", "filter.d", name + ".conf"), "w", encoding="utf-8") as handle:
                handle.write(wr.render("fail2ban", "filter.d/%s.conf.j2" % name, variables))
        confdir = os.path.join(root, "f2b")
        error_log = os.path.join(root, "logs", "error.log")
        access_log = os.path.join(root, "logs", "access.log")
        noscript = _probe(confdir, "webshield-noscript", error_log)
        with open(error_log, encoding="utf-8") as handle:
            assert [m["host"] for m in noscript] == [client], handle.read()
        assert [m["host"] for m in _probe(confdir, "webshield-tripwire", access_log)] == [client]
        assert [m["host"] for m in _probe(confdir, "webshield-redirect", access_log)] == [client]


# Debian 11 runs 0.11.2 with the same Debian variables.
@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize(
    ("overrides", "expect_ok"),
    [
        ({}, True),
        ({"__fail2ban_banaction": "no-such-action"}, False),  # unknown ban action
        ({"fail2ban_apache_error_logs": ["/var/log/apache2/typo_error.log"]}, False),  # a log file that is not there
    ],
)
def test_fail2ban_client_rejects_a_broken_configuration(tmp_path, overrides, expect_ok, f2b):
    """The role's staging test (fail2ban-client -t -c COPY) is what keeps a bad configuration out."""
    variables = wr.role_variables("fail2ban", "debian12", {})
    banaction = overrides.get("__fail2ban_banaction", wr.value(variables, "__fail2ban_ban_actions")["nftables"])
    settings = {key: item for key, item in overrides.items() if key != "__fail2ban_banaction"}
    confdir, _ = _f2b_conf_dir(str(tmp_path), "debian12", settings, banaction, f2b)
    done = _test_in_private_mounts(confdir, DEBIAN_LOGS, f2b)
    assert (done.returncode == 0) is expect_ok, done.stdout + done.stderr


# ---------------------------------------------------------------- fail2ban: what the ban actions really run

# Stand-ins for the firewall tools: each call is recorded ("tool arg arg ..."), `-C` (rule present?) answers no
# so the action goes on to insert its rule, everything else succeeds without output.
FAKE_TOOL = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$WSF_TOOL_LOG"
case " $* " in *" -C "*) exit 1 ;; esac
exit 0
"""
FAKE_TOOLS = ("iptables", "ip6tables", "ipset", "nft", "firewall-cmd")
# The ban actions as the role shipped them before: DROP asked for, but IPv6 rejected and/or TCP only.
STOCK_BAN_ACTIONS = {
    "iptables": "iptables-ipset-proto6-allports[blocktype=DROP]",
    "nftables": "nftables[type=allports, blocktype=drop]",
    "firewalld": "firewallcmd-ipset[actiontype=<allports>, blocktype=DROP]",
}


def _resolved_ban_actions(confdir, f2b):
    """`fail2ban-client -d` on the config, each jail's action resolved per family by fail2ban's own code."""
    dump = _test_in_private_mounts(confdir, DEBIAN_LOGS, f2b, mode="-d")
    assert dump.returncode == 0, dump.stdout + dump.stderr
    done = subprocess.run(
        [wr.F2B_PYTHON, ACTION_PROBE], input=dump.stdout, capture_output=True, text=True, env=f2b.env(), check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"].startswith(f2b.version_prefix)
    return result["jails"]


def _run_with_fake_tools(command, bindir):
    """Run one resolved action command under sh with the fake firewall tools; return the calls it made."""
    log = os.path.join(bindir, "calls.log")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(log)
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % bindir, WSF_TOOL_LOG=log)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, (command, done.stderr)
    with open(log, encoding="utf-8") as handle:
        return [line.split() for line in handle.read().splitlines()]


def _rule_calls(calls):
    """The calls that add a packet filter rule (iptables -I/-A, nft add rule, firewall-cmd --add-rule)."""
    wanted = {
        "iptables": lambda args: "-I" in args or "-A" in args,
        "ip6tables": lambda args: "-I" in args or "-A" in args,
        "nft": lambda args: args[:2] == ["add", "rule"],
        "firewall-cmd": lambda args: "--add-rule" in args,
    }
    return [argv for argv in calls if argv[0] in wanted and wanted[argv[0]](argv[1:])]


def _rule_protocols(argv):
    """Protocols a rule matches: {"all"} without a protocol match."""
    args = argv[1:]
    if "-p" in args:
        value = args[args.index("-p") + 1]
        return {"all"} if value in ("all", "0") else {value}
    if "l4proto" in args:
        start = args.index("l4proto") + 1
        if args[start] != "{":
            return {args[start]}
        words = args[start + 1 : args.index("}", start)]
        return {word.strip(",") for piece in words for word in piece.split(",") if word.strip(",")}
    return {"all"}


def _ban_defects(rules, family):
    """What is wrong with the rules an action adds for one family: not dropped, not IPv6, not UDP."""
    defects = []
    if not rules:
        return ["no rule added"]
    for argv in rules:
        tool, text = argv[0], " ".join(argv)
        if family == "inet6" and not (
            tool == "ip6tables" or (tool == "nft" and " ip6 saddr " in text) or " ipv6 filter " in text
        ):
            defects.append("not an IPv6 rule: %s" % text)
        if tool == "nft":
            if argv[-1] != "drop":
                defects.append("not dropped: %s" % text)
        elif argv[-2:] != ["-j", "DROP"]:
            defects.append("not dropped: %s" % text)
    covered = set().union(*(_rule_protocols(argv) for argv in rules))
    if "all" not in covered and not {"tcp", "udp"} <= covered:
        defects.append("protocols %s only (UDP, e.g. HTTP/3, not banned)" % sorted(covered))
    return defects


@pytest.fixture(name="fake_tools")
def fixture_fake_tools(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in FAKE_TOOLS:
        (bindir / tool).write_text(FAKE_TOOL)
        (bindir / tool).chmod(0o755)
    return str(bindir)


@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize("firewall", ["iptables", "nftables", "firewalld"])
def test_ban_actions_drop_ipv4_and_ipv6_tcp_and_udp(tmp_path, fake_tools, firewall, f2b):
    """Per jail and family, the commands fail2ban would run (from its config dump) add a DROP rule that
    covers every protocol or at least TCP and UDP, for IPv4 and IPv6."""
    variables = wr.role_variables("fail2ban", "debian12", {})
    banaction = wr.value(variables, "__fail2ban_ban_actions")[firewall]
    confdir, _ = _f2b_conf_dir(str(tmp_path), "debian12", {"fail2ban_tripwire_paths": ["/.env"]}, banaction, f2b)
    jails = _resolved_ban_actions(confdir, f2b)
    assert sorted(jails) == sorted(
        ["webshield-noscript", "webshield-redirect", "webshield-tripwire", "webshield-flood", "webshield-recidive"]
    )
    for jail, actions in jails.items():
        assert len(actions) == 1, actions
        for family, commands in next(iter(actions.values())).items():
            assert "REJECT" not in commands["actionstart"] and "reject" not in commands["actionstart"]
            rules = _rule_calls(_run_with_fake_tools(commands["actionstart"], fake_tools))
            assert _ban_defects(rules, family) == [], (jail, family, commands["actionstart"])
            # A ban puts the address into the set the rule matches.
            ban = _run_with_fake_tools(commands["actionban"].replace("<ip>", "192.0.2.1"), fake_tools)
            assert any("192.0.2.1" in argv for argv in ban), ban


@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize(
    ("firewall", "expected"),
    [
        # iptables: 1.x rejects IPv6 and matches TCP only, 0.11 rejects IPv6 (its rule has no -p).
        ("iptables", {"inet6": ["not dropped"], "tcp-only": "1."}),
        ("nftables", {"tcp-only": "any"}),
        ("firewalld", {"tcp-only": "any"}),
    ],
)
def test_ban_action_check_catches_the_stock_defaults(tmp_path, fake_tools, firewall, expected, f2b):
    """Proof that the check above can fail: the stock actions with the arguments the role used to pass."""
    confdir, _ = _f2b_conf_dir(str(tmp_path), "debian12", {}, STOCK_BAN_ACTIONS[firewall], f2b)
    commands = next(iter(_resolved_ban_actions(confdir, f2b)["webshield-noscript"].values()))
    tcp_only = expected["tcp-only"] == "any" or f2b.version_prefix.startswith(expected["tcp-only"])
    for family in ("inet4", "inet6"):
        defects = _ban_defects(_rule_calls(_run_with_fake_tools(commands[family]["actionstart"], fake_tools)), family)
        wanted = list(expected.get(family, []))
        if tcp_only:
            wanted.append("protocols ['tcp'] only")
        assert len(defects) == len(wanted), defects
        for text, defect in zip(wanted, defects):
            assert defect.startswith(text), defects


# ---------------------------------------------------------------- fail2ban: settings the role refuses

ASSERT_PLAY = """- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: fail2ban
        tasks_from: assert
"""


@pytest.mark.parametrize(
    ("backend", "expect_ok"),
    [("auto", True), ("polling", True), ("pyinotify", True), ("gamin", False), ("systemd", False)],
)
def test_role_checks_the_backend(tmp_path, backend, expect_ok):
    """The role's own check (tasks/assert.yml, run by ansible-playbook) refuses gamin (gone in fail2ban 1.0.1)
    and systemd with a message that says why."""
    (tmp_path / "play.yml").write_text(ASSERT_PLAY)
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=wr.ROLES,
        ANSIBLE_HOME=str(tmp_path / "home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    done = subprocess.run(
        [playbook, "-i", "localhost,", str(tmp_path / "play.yml"), "-e", "fail2ban_backend=%s" % backend],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        check=False,
    )
    assert (done.returncode == 0) is expect_ok, done.stdout + done.stderr
    if not expect_ok:
        assert "fail2ban_backend is '%s': use auto, pyinotify or polling" % backend in done.stdout
        assert "gamin was removed in fail2ban 1.0.1" in done.stdout


@pytest.mark.parametrize(("backend", "expect_ok"), [("auto", True), ("polling", True), ("gamin", False)])
def test_argument_spec_refuses_gamin(backend, expect_ok):
    """The role's argument spec (checked by Ansible before the role runs) has no gamin either."""
    with open(os.path.join(wr.ROLES, "fail2ban", "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    result = ArgumentSpecValidator(options).validate({"fail2ban_backend": backend})
    assert (not result.error_messages) is expect_ok, result.error_messages
    if not expect_ok:
        assert "fail2ban_backend must be one of: auto, pyinotify, polling" in " ".join(result.error_messages)


# ---------------------------------------------------------------- fail2ban: ban actions on a real (private) network

REACH = os.path.join(wr.ROOT, "tests", "filters", "netns_reach.py")
BANNED = {"inet4": ("127.0.0.5", "127.0.0.6", "127.0.0.1"), "inet6": ("fd00::5", "fd00::6", "::1")}


def _live_ban(tmp_path, banaction, f2b):
    """Run the commands fail2ban would run (actionstart, then actionban of one address per family, from the
    config dump) with the real tools in a private network namespace; then try TCP and UDP from the banned
    address and from a bystander over loopback. Returns {family: {source: {"tcp": outcome, "udp": outcome}}}."""
    confdir, _ = _f2b_conf_dir(str(tmp_path), "debian12", {}, banaction, f2b)
    commands = next(iter(_resolved_ban_actions(confdir, f2b)["webshield-noscript"].values()))
    lines = ["set -e", "ip link set lo up"]
    lines += ["ip -6 addr add %s/128 dev lo nodad" % address for address in BANNED["inet6"][:2]]
    for family, (banned, _, _) in BANNED.items():
        lines += [commands[family]["actionstart"], commands[family]["actionban"].replace("<ip>", banned)]
    for family, (banned, bystander, dest) in BANNED.items():
        lines.append("echo %s $(%s %s %s %s %s)" % (family, wr.F2B_PYTHON, REACH, dest, banned, bystander))
    script = tmp_path / "ban.sh"
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(["unshare", "-n", "sh", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines()}


needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "ip", "nft", "iptables", "ipset")),
    reason="needs root, unshare, ip, nft, iptables and ipset",
)


@needs_netns
@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize("firewall", ["iptables", "nftables"])
def test_ban_action_drops_tcp_and_udp_for_real(tmp_path, firewall, f2b):
    variables = wr.role_variables("fail2ban", "debian12", {})
    outcome = _live_ban(tmp_path, wr.value(variables, "__fail2ban_ban_actions")[firewall], f2b)
    for family, (banned, bystander, _) in BANNED.items():
        assert outcome[family][banned] == {"tcp": "silent", "udp": "silent"}, outcome
        assert outcome[family][bystander] == {"tcp": "delivered", "udp": "delivered"}, outcome


@needs_netns
@pytest.mark.parametrize("f2b", wr.FAIL2BANS)
@pytest.mark.parametrize("firewall", ["iptables", "nftables"])
def test_live_check_catches_the_stock_defaults(tmp_path, firewall, f2b):
    """Proof that the live check can fail: the stock actions let UDP through or answer IPv6 with a reject.

    A reject is an answer the probe has to catch in time; on a loaded machine one attempt may miss it, so the
    whole namespace is built again up to three times before the stock actions are judged silent."""

    def leaks(outcome):
        banned = [outcome[family][addresses[0]] for family, addresses in BANNED.items()]
        found = any(result != {"tcp": "silent", "udp": "silent"} for result in banned)
        if firewall == "iptables":
            found = found and "refused" in outcome["inet6"]["fd00::5"].values()
        if firewall == "nftables" or f2b.version_prefix.startswith("1."):
            found = found and "delivered" in (outcome["inet4"]["127.0.0.5"]["udp"], outcome["inet6"]["fd00::5"]["udp"])
        return found

    outcomes = []
    for attempt in range(3):
        workdir = tmp_path / str(attempt)
        workdir.mkdir()
        outcomes.append(_live_ban(workdir, STOCK_BAN_ACTIONS[firewall], f2b))
        if leaks(outcomes[-1]):
            break
    assert leaks(outcomes[-1]), outcomes
