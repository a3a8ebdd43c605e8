# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apache LogFormat compiler of offender_stats."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.fleetguard.webshield.plugins.module_utils._logformat import (
    PRESETS,
    AccessFormat,
    LogFormatError,
)


def fields(fmt, line):
    """Parse one line with the fast regex, then with the full one; return named fields or None."""
    for regex in (fmt.fast, fmt.full):
        m = regex.match(line)
        if m:
            groups = m.groups()
            return dict((k, groups[i - 1] or b"") for k, i in fmt.index.items() if i is not None)
    return None


@pytest.mark.parametrize(
    "preset, line, expected",
    [
        (
            "common",
            b'192.0.2.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326',
            {"client": b"192.0.2.1", "time": b"10/Oct/2000:13:55:36 -0700", "target": b"/a.gif", "status": b"200"},
        ),
        (
            "combined",
            b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a?x=1 HTTP/1.1" 404 - "http://r/" "UA"',
            {"client": b"192.0.2.1", "target": b"/a?x=1", "status": b"404", "referer": b"http://r/"},
        ),
        (
            "combined",
            b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "\\x16\\x03\\x01" 400 226 "-" "-"',
            {"client": b"192.0.2.1", "target": b"", "status": b"400"},
        ),
        (
            "combined",
            b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "a \\"b\\" c"',
            {"client": b"192.0.2.1", "target": b"/", "status": b"200"},
        ),
        (
            "vhost_combined",
            b'www.example.com:80 2001:db8::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "UA"',
            {"client": b"2001:db8::1", "target": b"/"},
        ),
        (
            "combined_duration",
            b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "UA" 1234',
            {"client": b"192.0.2.1", "status": b"200"},
        ),
    ],
)
def test_presets_parse_their_lines(preset, line, expected):
    got = fields(AccessFormat(preset), line)
    for key, value in expected.items():
        assert got[key] == value, key


@pytest.mark.parametrize(
    "fmt, line, client",
    [
        (
            '%h %a %l %u %t "%r" %>s %b',
            b'10.0.0.1 192.0.2.5 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5',
            b"192.0.2.5",
        ),
        (
            '%{c}a %l %u %t "%r" %s %b',
            b'192.0.2.6 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5',
            b"192.0.2.6",
        ),
        (
            '%v %h %t "%r" %>s "%{Referer}i" %D %{X-Forwarded-For}i',
            b'www 192.0.2.7 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 "-" 12 198.51.100.7',
            b"192.0.2.7",
        ),
        ('%h\\t%t\\t"%r"\\t%>s', b'192.0.2.8\t[10/Oct/2000:13:55:36 -0700]\t"GET / HTTP/1.1"\t200', b"192.0.2.8"),
        ('%%%h %t "%r" %>s', b'%192.0.2.9 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200', b"192.0.2.9"),
    ],
)
def test_verbatim_formats(fmt, line, client):
    assert fields(AccessFormat(fmt), line)["client"] == client


def test_percent_u_q_give_path_and_query():
    fmt = AccessFormat('%a %t "%m %U%q %H" %>s')
    got = fields(fmt, b'192.0.2.1 [10/Oct/2000:13:55:36 -0700] "GET /go?u=x HTTP/1.1" 302')
    assert got["target"] == b"/go"
    assert got["query"] == b"?u=x"


@pytest.mark.parametrize(
    "fmt, message",
    [
        ("nonsense", "neither a preset"),
        ('%l %u %t "%r" %>s', "no client field"),
        ('%h %{%d/%b/%Y}t "%r"', "not supported"),
    ],
)
def test_bad_formats(fmt, message):
    with pytest.raises(LogFormatError, match=message):
        AccessFormat(fmt)


def test_presets_have_a_client_time_and_request():
    for name in PRESETS:
        fmt = AccessFormat(name)
        assert fmt.index["client"] and fmt.index["time"] and fmt.index["target"] and fmt.index["status"]
