# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apache LogFormat compiler of offender_stats."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.fleetguard.webshield.plugins.module_utils import _logformat, _stats
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
        # directives of two letters after ^ (HTTP/2 trailers, mod_logio's time to first byte)
        (
            '%h %t "%r" %>s %{X-Trace}^ti %^FB',
            b'192.0.2.10 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 abc 1234',
            b"192.0.2.10",
        ),
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
        ('%h %{%d/%b/%Y %V}t "%r"', r"time format %\{%d/%b/%Y %V\}t: %V is not supported"),
        ('%h %{%Y-%m-%d %T%n}t "%r"', r"%n is not supported"),  # a line break ends the log line
        ('%h %{%H:%M:%S}t "%r"', r"time directives \(%\{%H:%M:%S\}t\) give no date"),
        ('%h %{msec_frac}t "%r"', "no time field"),
        ('%h "%r" %>s', "no time field"),
    ],
)
def test_bad_formats(fmt, message):
    with pytest.raises(LogFormatError, match=message):
        AccessFormat(fmt)


# 2021-02-03 10:00:00 UTC; 11:00 in Berlin (CET, +0100).
T0 = 1612346400


@pytest.mark.parametrize(
    "fmt, stamp, epoch",
    [
        ("[%{%d/%b/%Y:%H:%M:%S %z}t]", b"[03/Feb/2021:10:00:07 +0000]", T0 + 7),
        # the ISO 8601 layout of Apache's manual, in four directives (the fraction is not a time field)
        ("%{%Y-%m-%d}tT%{%T}t.%{msec_frac}t%{%z}t", b"2021-02-03T12:00:00.123+0200", T0),
        ("%{begin:%Y-%m-%dT%H:%M:%S}t", b"2021-02-03T11:00:00", T0),  # local time: Berlin
        ("%{end:%c}t", b"Wed Feb  3 11:00:00 2021", T0),
        ("%{%d/%B/%y %I:%M:%S %p %Z}t", b"03/February/21 10:00:00 AM UTC", T0),
        ("%{%F %T %Z}t", b"2021-02-03 11:00:00 +01", T0),  # a zone without abbreviation: local time
        ("%{%d/%b/%Y %l:%M %p}t", b"03/Feb/2021 11:00 AM", T0),  # no seconds: the minute
        ("%{%Y %j %H}t", b"2021 034 11", T0),
        ("%{sec}t", b"1612346400", T0),
        ("%{msec}t", b"1612346400999", T0),
        ("%{usec}t.%{usec_frac}t", b"1612346400999999.999999", T0),
        ("%{%s}t", b"1612346400", T0),
        # not a time: the line is malformed
        ("%{%Y-%m-%dT%H:%M:%S}t", b"2021-02-30T11:00:00", None),
        ("%{%Y-%m-%dT%H:%M:%S}t", b"2021-02-03T24:00:00", None),
        ("%{%d/%b/%Y:%H:%M:%S}t", b"03/Fab/2021:11:00:00", None),
        ("%{%Y %j %H}t", b"2021 366 11", None),
        ("%{%I:%M:%S %p %Y-%m-%d}t", b"13:00:00 PM 2021-02-03", None),
    ],
)
def test_time_directives_give_the_epoch(monkeypatch, fmt, stamp, epoch):
    """The regex reads every time; the splitter the ones of one directive, in brackets when its text holds no
    space, between quotes whatever it holds. Both give the same epoch."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        for layout in ("%s", "[%s]", '"%s"'):
            parsed = AccessFormat("%h " + layout % fmt + ' "%r" %>s')
            line = b"192.0.2.1 " + (layout % stamp.decode()).encode() + b' "GET / HTTP/1.1" 200'
            rows = parsed.fast.findall(line)
            assert parsed.index["time"] is None
            assert len(rows) == 1 and rows[0][parsed.index["client"] - 1] == b"192.0.2.1"
            assert parsed.times.epochs(rows) == [epoch]
            one = fmt.count("}t") == 1
            assert (parsed.splitter is not None) == (one and (layout == '"%s"' or b" " not in stamp)), layout
            if parsed.splitter is not None:
                cols = parsed.splitter.columns(line + b"\n", 1)
                assert parsed.times.token_epochs(cols["ttext"], parsed.splitter.time_affix) == [epoch]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_percent_t_wins_over_other_time_directives():
    parsed = AccessFormat('%h %t %{msec}t "%r" %>s')
    assert parsed.times is None and parsed.splitter is not None
    line = b'192.0.2.1 [03/Feb/2021:10:00:00 +0000] 1612346400123 "GET / HTTP/1.1" 200\n'
    assert parsed.splitter.columns(line, 1)["client"] == [b"192.0.2.1"]


def test_presets_have_a_client_time_and_request():
    for name in PRESETS:
        fmt = AccessFormat(name)
        assert fmt.index["client"] and fmt.index["time"] and fmt.index["target"] and fmt.index["status"]


# -- the splitter (no regex) must read every block exactly as the regex does ---------------------

# Field values Apache can write, among them its escapes (\" and \\ in quoted fields) and requests that
# are not "METHOD target PROTOCOL".
_REQUESTS = [
    b"GET / HTTP/1.1",
    b"GET /a?x=1&u=http%3A%2F%2Fevil.example%2F HTTP/1.1",
    b"POST /cgi-bin/a.cgi HTTP/1.0",
    b"-",
    b"GET /",
    b"GET  /double-space HTTP/1.1",
    b"\\x16\\x03\\x01",
    b'GET /q\\"uote HTTP/1.1',
    b"GET /a b HTTP/1.1",
    b"get /lower HTTP/1.1 extra",
]
_REFERERS = [b"-", b"http://r.example/", b'a \\"b\\" c', b"ends with \\\\", b""]
_AGENTS = [b"UA", b"Mozilla/5.0 (X11)", b'x \\"y\\"', b"", b"\\\\"]
_CLIENTS = [b"192.0.2.1", b"2001:db8::1", b"::ffff:192.0.2.9", b"host.example"]
_TIMES = [b"10/Oct/2000:13:55:36 -0700", b"03/Feb/2021:10:00:00 +0000", b"99/Xyz/2021:10:00:00 +0000"]


def _combined_line(fields):
    return b'%s - - [%s] "%s" %s 5 "%s" "%s"' % fields


def _regex_columns(fmt, buf):
    """Columns the regex gives for ``buf``: the reference the splitter is held to."""
    out = {"client": [], "time": [], "target": [], "status": [], "referer": []}
    for line in buf.split(b"\n")[:-1]:
        m = fmt.fast.match(line) or fmt.full.match(line)
        if m is None:
            return None
        groups = m.groups()
        for name, column in out.items():
            i = fmt.index.get(name)
            column.append(groups[i - 1] or b"" if i else b"-")
    return out


def _splitter_columns(fmt, buf):
    cols = fmt.splitter.columns(buf, buf.count(b"\n"))
    if cols is None:
        return None
    times = [d[1:] + b" " + z[:-1] for d, z in zip(cols["time"], cols["zone"])]
    return {
        "client": cols["client"],
        "time": times,
        "target": cols.get("target", [b"-"] * len(times)),
        "status": cols.get("status", [b"-"] * len(times)),
        "referer": cols.get("referer", [b"-"] * len(times)),
    }


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(_CLIENTS),
            st.sampled_from(_TIMES),
            st.sampled_from(_REQUESTS),
            st.sampled_from([b"200", b"404", b"-"]),
            st.sampled_from(_REFERERS),
            st.sampled_from(_AGENTS),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_splitter_reads_combined_lines_as_the_regex_does(lines):
    fmt = AccessFormat("combined")
    buf = b"".join(_combined_line(fields) + b"\n" for fields in lines)
    expected = _regex_columns(fmt, buf)
    got = _splitter_columns(fmt, buf)
    assert expected is not None
    if got is not None:  # None: the caller uses the regex for this block
        assert got == expected
        # The raw text of each line (evidence for samples) is put back together exactly.
        assert [fmt.splitter.line(i) for i in range(len(lines))] == buf.split(b"\n")[:-1]
    # A block without escaped quotes always takes the splitter.
    if b'\\"' not in buf.replace(b"\\\\", b""):
        assert got is not None


@pytest.mark.parametrize(
    "line",
    [
        # escaped quotes and no escaped backslash (the block is read with one replace)
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /q\\"x HTTP/1.1" 200 5 "a \\"b\\"" "\\"UA\\""',
        # an escaped backslash before a closing quote beside an escaped quote (read backslash by backslash)
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "ends \\\\" "x \\"y\\" \\\\"',
    ],
)
@pytest.mark.parametrize("copies", [3, 400])  # 400 lines: more backslashes than are looked at one by one
def test_splitter_reads_escaped_quotes_and_backslashes(line, copies):
    fmt = AccessFormat("combined")
    buf = (line + b"\n") * copies
    got = _splitter_columns(fmt, buf)
    assert got is not None and got == _regex_columns(fmt, buf)
    assert [fmt.splitter.line(i) for i in range(copies)] == [line] * copies


def _escaped_quotes_one_by_one(buf):
    """What Apache's escapes mean, byte by byte: a backslash escapes the byte after it."""
    out, i, found = bytearray(buf), 0, False
    while i < len(buf):
        if buf[i : i + 1] == b"\\":
            if buf[i + 1 : i + 2] == b'"':
                out[i + 1], found = 1, True
            i += 2
        else:
            i += 1
    return bytes(out), found


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([b"\\", b'"', b"a", b"\\\\", b'\\"', b"\n", b" "]), min_size=1, max_size=60),
    repeat=st.sampled_from([1, 1, 40, 400]),
)
def test_escaped_quotes_are_marked_as_a_byte_by_byte_reading_marks_them(pieces, repeat):
    """Found one by one, or in bulk when a block holds over a thousand backslashes: the same marks."""
    buf = b"".join(pieces) * repeat + b"\n"
    pos = buf.find(b"\\")
    if pos < 0:
        return
    assert _logformat._mark_escaped_quotes(buf, pos) == _escaped_quotes_one_by_one(buf)


@pytest.mark.parametrize(
    "preset, line",
    [
        ("common", b'192.0.2.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326'),
        ("combined_duration", b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "UA" 1234'),
        (
            "vhost_combined",
            b'www.example.com:80 2001:db8::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "UA"',
        ),
        (
            '%v %h %t "%r" %>s "%{Referer}i" %D %{X-Forwarded-For}i',
            b'www 192.0.2.7 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 "http://r/" 12 198.51.100.7',
        ),
    ],
)
def test_splitter_reads_every_preset_as_the_regex_does(preset, line):
    fmt = AccessFormat(preset)
    assert fmt.splitter is not None
    buf = (line + b"\n") * 3
    assert _splitter_columns(fmt, buf) == _regex_columns(fmt, buf)
    assert [fmt.splitter.line(i) for i in range(3)] == [line] * 3


@pytest.mark.parametrize(
    "fmt", ['%h\\t%t\\t"%r"\\t%>s', '%%%h %t "%r" %>s', '%a %t "%m %U%q %H" %>s', "%h %t %r %>s", '%h "%t" "%r"']
)
def test_formats_the_splitter_cannot_read_use_the_regex(fmt):
    assert AccessFormat(fmt).splitter is None


@pytest.mark.parametrize(
    "buf",
    [
        # one line without the quoted fields and one with two extra: the quote count of the block is right
        b"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] 200 5\n"
        b'192.0.2.2 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "UA" "x" "y" "z" "w"\n',
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "UA"\r\n',
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200  "-" "UA"\n',
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" abc 5 "-" "UA"\n',
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /\x01 HTTP/1.1" 200 5 "-" "a\\"b"\n',
        # a user name with a space (a word too many) and a line without %l (one too few): the right total
        b'192.0.2.1 - a b [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.1" 200 5 "-" "UA"\n'
        b'192.0.2.2 - [10/Oct/2000:13:55:37 -0700] "GET /y HTTP/1.1" 404 5 "-" "UA"\n'
        b'192.0.2.3 - - [10/Oct/2000:13:55:38 -0700] "GET /z HTTP/1.1" 200 5 "-" "UA"\n',
        # the same between the quoted fields: a status and size too many on one line, none on the next
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.1" 200 5 200 5 "-" "UA"\n'
        b'192.0.2.2 - - [10/Oct/2000:13:55:37 -0700] "GET /y HTTP/1.1" "-" "UA"\n',
        b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /\x00 HTTP/1.1" 200 5 "-" "UA"\n',
    ],
)
def test_splitter_gives_up_on_blocks_of_another_shape(buf):
    assert AccessFormat("combined").splitter.columns(buf, buf.count(b"\n")) is None


ISO_TIME = "%{%Y-%m-%dT%H:%M:%S%z}t"
SPACED_TIME = "%{%d/%b/%Y %T}t"  # host-local, with a space: the splitter reads it only between quotes
ISO_FORMAT = "%h %l %u [" + ISO_TIME + '] "%r" %>s %b "%{Referer}i" "%{User-agent}i"'
# Times as that format writes them, a date that does not exist, and tokens where the time should be that
# are not one (without the brackets, or another layout): malformed lines either way.
_ISO_TIMES = [
    b"[2021-02-03T10:00:00+0000]",
    b"[2021-02-03T11:00:01+0100]",
    b"[2021-02-04T00:00:00-0500]",
    b"[2021-02-30T10:00:00+0000]",
    b"2021-02-03T10:00:00+0000",
    b"(2021-02-03T10:00:00+0000)",
    b"[03/Feb/2021:10:00:00]",
    b"[]",
]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(_CLIENTS[:3]),
            st.sampled_from(_ISO_TIMES),
            st.sampled_from(_REQUESTS),
            st.sampled_from([b"200", b"404"]),
            st.sampled_from(_REFERERS),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_splitter_reads_a_strftime_time_as_the_regex_does(lines):
    """A log with a %{format}t time counts the same through the splitter as through the regex alone."""
    buf = b"".join(b'%s - - %s "%s" %s 5 "%s" "UA"\n' % fields for fields in lines)
    results = []
    for splitter in (True, False):
        fmt = AccessFormat(ISO_FORMAT)
        assert fmt.splitter is not None and fmt.splitter.time_affix == (b"[", b"]")
        if not splitter:
            fmt.splitter = None
        stats = _stats.Stats(_stats.Config(flood_windows=[(60, 2)], sample_lines=0))
        _stats.add_access_block(stats, buf, fmt)
        result = stats.result(top=0)
        results.append((stats.malformed, result["clients"], result["days"], result["pages"], result["referers"]))
    assert results[0] == results[1]


@pytest.mark.parametrize(
    "fmt, line",
    [
        (
            '%{X-Forwarded-For}i %h %l %u %t "%r" %>s %b',
            b' 192.0.2.7 - - [03/Feb/2021:10:00:00 +0000] "GET /.env HTTP/1.1" 404 5',
        ),
        (
            '%h %l %u %t "%r" %>s %b %{User-agent}i',
            b'192.0.2.7 - - [03/Feb/2021:10:00:00 +0000] "GET /.env HTTP/1.1" 404 5 ',
        ),
        ('%h [%{X-Request-Id}i] %t "%r" %>s', b'192.0.2.7 [] [03/Feb/2021:10:00:00 +0000] "GET /.env HTTP/1.1" 404'),
        (
            '%h %{session}C %{UNIQUE_ID}e %t "%r" %>s',
            b'192.0.2.7   [03/Feb/2021:10:00:00 +0000] "GET /.env HTTP/1.1" 404',
        ),
    ],
)
def test_an_empty_header_outside_quotes_is_read(fmt, line):
    """Apache writes a header the request sent empty as nothing: a client could otherwise make its lines malformed
    (and go uncounted) by sending an empty header that the format logs outside quotes."""
    stats = _stats.Stats(_stats.Config(tripwire_paths=["/.env"]))
    _stats.add_access_block(stats, line + b"\n", AccessFormat(fmt))
    assert stats.malformed == 0
    assert stats.result()["clients"]["192.0.2.7"]["offenses"] == {"tripwire": 1}


# -- any LogFormat: the splitter counts every block as the regex does ------------------------------

# What Apache writes for each directive: values with spaces, escaped quotes and brackets among them, and
# times that are not times; empty headers.
_VALUES = {
    "%h": _CLIENTS + [b"-"],
    "%a": _CLIENTS,
    "%{c}a": _CLIENTS,
    "%l": [b"-"],
    "%u": [b"-", b"frank", b"a b", b'q\\"x'],
    "%t": [b"[10/Oct/2000:13:55:36 -0700]", b"[03/Feb/2021:10:00:00 +0000]", b"[99/Xyz/2021:10:00:00 +0000]", b"[]"],
    ISO_TIME: [b"2021-02-03T10:00:00+0000", b"2021-02-03T11:00:01+0100", b"2021-02-30T10:00:00+0000"],
    "%{sec}t": [b"1612346400", b"1612346401", b"x"],
    "%{msec}t": [b"1612346400123", b"1612346401999", b"-1"],
    SPACED_TIME: [b"03/Feb/2021 10:00:00", b"03/Feb/2021 10:00:01", b"31/Feb/2021 10:00:00", b"03/Feb/2021"],
    "%r": _REQUESTS + [b"GET /wp-login.php HTTP/1.1"],
    "%>s": [b"200", b"404", b"-"],
    "%s": [b"200", b"301"],
    "%b": [b"5", b"-"],
    "%{Referer}i": _REFERERS + [b"x y"],
    "%{User-agent}i": _AGENTS + [b"[client 192.0.2.99]"],
    "%{X-Forwarded-For}i": [b"198.51.100.7", b"-", b"192.0.2.4, 192.0.2.5"],
    "%D": [b"12", b"1234567"],
    "%v": [b"www", b"www.example.com"],
    "%U": [b"/a", b"/cgi-bin/x.cgi", b"/.env"],
    "%q": [b"", b"?x=1", b"?u=http://evil.example/"],
    "%m": [b"GET", b"POST"],
    "%O": [b"20"],
    "%%": [b"%"],
}
_LAYOUT = [("", ""), ("", ""), ('"', '"'), ("[", "]")]


_OTHER_LINE = (b"192.0.2.1", _TIMES[1], b"GET / HTTP/1.1", b"200", b"-", b"UA")


@st.composite
def _format_and_lines(draw):
    """A LogFormat of a client, a time and up to six other directives in any order, each bare, quoted or in
    brackets, with various separators; and lines Apache could write with it (some of them malformed)."""
    times = ["%t", "%t", "%{sec}t", "%{msec}t", ISO_TIME, SPACED_TIME]
    head = [draw(st.sampled_from(["%h", "%a", "%{c}a"])), draw(st.sampled_from(times))]
    others = [d for d in _VALUES if d not in ["%h", "%a", "%{c}a"] + times]
    order = draw(st.permutations(head + draw(st.lists(st.sampled_from(others), max_size=6))))
    layout = [draw(st.sampled_from(_LAYOUT)) for _d in order]
    seps = [draw(st.sampled_from([" ", " ", " - ", " | ", ", "])) for _d in order[1:]] + [""]
    text = "".join(a + d + b + sep for d, (a, b), sep in zip(order, layout, seps))
    lines = []
    for _i in range(draw(st.integers(1, 12))):
        line = b""
        for d, (a, b), sep in zip(order, layout, seps):
            line += a.encode() + draw(st.sampled_from(_VALUES[d])) + b.encode() + sep.encode()
        # now and then a line of another shape: another format's, garbage, CRLF, spaces before or after
        change = draw(st.integers(0, 30))
        if change == 0:
            line = draw(st.sampled_from([b"garbage", b"", b'"', _combined_line(_OTHER_LINE)]))
        elif change <= 3:
            line = [line + b"\r", line + b" ", b" " + line][change - 1]
        lines.append(line)
    return text, lines


# Cases the test found: a word too many (the user agent) and one too few (the time) in one piece of a block
# (the splitter read the fields of the third line one place off); lines with the same fields around a
# malformed line and around one with escaped quotes (the regex took the evidence line from the wrong one);
# a space at the end of a line (the splitter read the line, the regex did not).
@example(case=('%t "%h"', [b'[10/Oct/2000:13:55:36 -0700] "192.0.2.1" ']))
@example(
    case=(
        '%t %{User-agent}i %l %l "%l" %h',
        [
            b'[10/Oct/2000:13:55:36 -0700] Mozilla/5.0 (X11) - - "-" 192.0.2.1',
            b'[10/Oct/2000:13:55:36 -0700] UA - - "-" 192.0.2.1',
            b'[] UA - - "-" 192.0.2.1',
        ],
    )
)
@example(
    case=(
        '%{sec}t %h %l %l "%u"',
        [
            b'%s 192.0.2.1 - - "%s"' % fields
            for fields in [(b"1612346400", b"-"), (b"x", b"-"), (b"1612346400", b"-"), (b"1612346400", b"frank")]
        ],
    )
)
@example(
    case=('%h %t %u "%u" %l', [b'192.0.2.1 [03/Feb/2021:10:00:00 +0000] - "%s" -' % u for u in (b"-", b'q\\"x', b"-")])
)
@settings(max_examples=300, deadline=None)
@given(case=_format_and_lines())
def test_splitter_counts_any_format_as_the_regex_does(case):
    """Everything the result holds (counts, offences, times, evidence lines) and the malformed count are the
    same whether the splitter or the regex reads the block."""
    text, lines = case
    try:
        AccessFormat(text)
    except LogFormatError:
        return  # e.g. %{sec}t and %t in one format
    buf = b"\n".join(lines) + b"\n"
    results = []
    for splitter in (True, False):
        fmt = AccessFormat(text)
        if not splitter:
            fmt.splitter = None
        config = _stats.Config(flood_windows=[(60, 2)], sample_lines=2, tripwire_paths=["/.env", "/wp-login.php"])
        stats = _stats.Stats(config)
        _stats.add_access_block(stats, buf, fmt)
        results.append((stats.malformed, stats.result(top=0)))
    assert results[0] == results[1]


_STRFTIME_FORMATS = [
    "%d/%b/%Y:%H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S",
    "%c",
    "%F %T %Z",
    "%a, %d %B %Y %I:%M:%S %p",
    "%Y %j %T",
    "%D %r",
    "%e-%b-%y %k:%M:%S",
    "%s",
]


@settings(max_examples=300, deadline=None)
@given(epoch=st.integers(min_value=0, max_value=3124137599), fmt=st.sampled_from(_STRFTIME_FORMATS))
def test_strftime_formats_read_back_the_time_apache_wrote(epoch, fmt):
    """What strftime writes (C locale, the host's zone, as Apache does) is read back to the same second."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"  # +09:00 with no summer time since 1951: no ambiguous hour
    time.tzset()
    try:
        parsed = AccessFormat("%h [%{" + fmt + '}t] "%r" %>s')
        stamp = time.strftime(fmt, time.localtime(epoch)).encode()
        rows = parsed.fast.findall(b"192.0.2.1 [" + stamp + b'] "GET / HTTP/1.1" 200')
        assert parsed.times.epochs(rows) == [epoch], stamp
        # the same time between quotes, cut by the splitter
        parsed = AccessFormat('%h "%{' + fmt + '}t" "%r" %>s')
        cols = parsed.splitter.columns(b'192.0.2.1 "' + stamp + b'" "GET / HTTP/1.1" 200\n', 1)
        assert parsed.times.token_epochs(cols["ttext"], parsed.splitter.time_affix) == [epoch], stamp
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
