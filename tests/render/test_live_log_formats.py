# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""offender_stats reads what a real Apache writes with LogFormat lines of its users' kind: the time in
``%{format}t`` directives (local time, split over several directives, epoch milliseconds), JSON with the
quotes escaped as in httpd.conf. The format string is given to offender_stats exactly as in the config."""

import os
import time
from datetime import datetime

import pytest
import yaml
from test_render_roles import _free_port, _get, minimal_httpd_conf, needs_apache, running_apache, world_readable_tmpdir

from ansible_collections.fleetguard.webshield.plugins.module_utils._stats_collect import collect
from ansible_collections.fleetguard.webshield.plugins.modules import offender_stats

# As they stand in httpd.conf, between the LogFormat's double quotes.
FORMATS = {
    "json": (
        '{ \\"time\\":\\"%{%Y-%m-%d}tT%{%T}t.%{msec_frac}t%{%z}t\\", \\"client\\":\\"%a\\", '
        '\\"request\\":\\"%r\\", \\"status\\":%>s, \\"referer\\":\\"%{Referer}i\\" }'
    ),
    "local": '%a [%{%d/%b/%Y %H:%M:%S}t] \\"%r\\" %>s %b \\"%{Referer}i\\"',
    "msec": '%a %{msec}t %{end:usec_frac}t \\"%r\\" %>s',
    # every directive the issue lists (%I and %O: mod_logio, built into Debian's apache2)
    "all": (
        '%h %a %{c}a %l %u %t \\"%r\\" %>s %s %b %B \\"%{User-Agent}i\\" %D %T %v %V %p %U%q %m %H %I %O '
        '\\"%{Referer}i\\"'
    ),
}
REQUESTS = ["/index.html", "/cgi-bin/gone.cgi", "/go?url=http%3A%2F%2Fevil.example%2F", "/about"]


@needs_apache
@pytest.mark.skipif(os.geteuid() != 0, reason="starts Apache with a worker user")
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_offender_stats_reads_the_lines_apache_writes(monkeypatch, name):
    fmt = FORMATS[name]
    # Apache and the module both in a zone that is not UTC and has no summer time: a format without %z
    # is only read right when both use the host's local time.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        with world_readable_tmpdir() as root:
            snippet = 'LogFormat "%s" custom\nCustomLog %s/logs/custom.log custom\n' % (fmt, root)
            statuses, before, after = _serve(root, snippet, REQUESTS)
            assert statuses == [200, 404, 404, 404]
            log = os.path.join(root, "logs", "custom.log")
            with open(log, encoding="utf-8") as handle:
                written = handle.read()
            opts = dict((key, spec.get("default")) for key, spec in offender_stats.ARGUMENT_SPEC.items())
            opts.update(access_logs=[log], access_format=fmt, workers=1)
            result, _old, _new, warnings = collect(opts)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert result["summary"]["lines"] == len(REQUESTS), written
    assert result["summary"]["malformed"] == 0 and warnings == [], written
    client = result["clients"]["127.0.0.1"]
    assert client["hits"] == len(REQUESTS)
    assert client["offenses"] == {"missing_script": 1, "open_redirect": 1}, written
    assert client["statuses"] == {"200": 1, "404": 3}
    # the times as Apache wrote them, within the seconds the requests were made in
    first, last = (int(datetime.fromisoformat(client[key]).timestamp()) for key in ("first_seen", "last_seen"))
    assert before <= first <= last <= after, (before, client["first_seen"], client["last_seen"], after, written)


ROLE_DEFAULTS = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "apache_logging", "defaults", "main.yml")


def _role_error_log_format():
    with open(ROLE_DEFAULTS, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["apache_logging_error_log_format"]


@needs_apache
@pytest.mark.skipif(os.geteuid() != 0, reason="starts Apache with a worker user")
@pytest.mark.parametrize("error_format", ["built-in", "apache_logging role", "role with %{cu}t"])
def test_offender_stats_reads_the_client_of_debug_lines(monkeypatch, error_format):
    """At debug level Apache writes the source file before the client (``mod_authz_core.c(820): [client
    ...]``), with its built-in error format, with the one the apache_logging role sets, and with that one
    with the compact ISO time (``[2021-02-03 10:11:12.123456]``); the client of such a line is read (a
    tripwire marker in it charges the client) and its time is the host's local time."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        result, written, before, after = _debug_lines_read(error_format)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "mod_authz_core.c(" in written and "AH01626" in written, written
    assert ("] [authz_core:debug]" in written) and (written.startswith("[20")) == (error_format == "role with %{cu}t")
    client = result["clients"]["127.0.0.1"]
    assert client["offenses"]["tripwire"] >= 1, written
    first, last = (int(datetime.fromisoformat(client[key]).timestamp()) for key in ("first_seen", "last_seen"))
    assert before <= first <= last <= after, (before, client["first_seen"], client["last_seen"], after, written)


def _serve(root, snippet_text, paths):
    """Start this machine's Apache in ``root`` with ``snippet_text`` included and an index.html, request
    ``paths``; returns (statuses, time before, time after)."""
    snippet = os.path.join(root, "snippet.conf")
    with open(snippet, "w", encoding="utf-8") as handle:
        handle.write(snippet_text)
    with open(os.path.join(root, "index.html"), "w", encoding="utf-8") as handle:
        handle.write("hello\n")
    extra = '<Directory "%s">\n  Require all granted\n</Directory>\nDocumentRoot %s' % (root, root)
    port = _free_port()
    conf = minimal_httpd_conf(root, snippet, listen="127.0.0.1:%d" % port, extra=extra)
    with running_apache(conf, port) as base:
        before = int(time.time())
        statuses = [_get(base + path) for path in paths]
        after = int(time.time()) + 1
    return statuses, before, after


def _debug_lines_read(error_format):
    """(result, error log text, time before, time after) of a request to an Apache at authz_core:debug."""
    with world_readable_tmpdir() as root:
        lines = ["LogLevel warn authz_core:debug"]
        if error_format != "built-in":
            text = _role_error_log_format()
            if error_format.endswith("%{cu}t"):
                assert text.startswith("[%{u}t] ")
                text = "[%{cu}t] " + text[len("[%{u}t] ") :]
            lines.append('ErrorLogFormat "%s"' % text)
        statuses, before, after = _serve(root, "\n".join(lines) + "\n", ["/index.html"])
        assert statuses == [200]
        log = os.path.join(root, "logs", "error.log")
        with open(log, encoding="utf-8") as handle:
            written = handle.read()
        opts = dict((key, spec.get("default")) for key, spec in offender_stats.ARGUMENT_SPEC.items())
        opts.update(error_logs=[log], tripwire_markers=["AH01626"], workers=1)
        result, _old, _new, warnings = collect(opts)
    assert warnings == [], written
    return result, written, before, after
