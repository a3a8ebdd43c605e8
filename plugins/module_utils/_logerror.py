# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apache error-log and fail2ban log/database parsing for offender_stats.

Error-log layouts understood:

* Apache 2.2: ``[Wed Feb 03 10:11:12 2021] [error] [client 192.0.2.1] message``
* Apache 2.4 default: ``[Wed Feb 03 10:11:12.123456 2021] [cgi:error] [pid 1234:tid 5] [client 192.0.2.2:51234]
  AH01264: message``, with ``[remote ...]`` for connection-level lines
* CentOS 7 with ``ErrorLogFormat "[%t] [%l] [client %a] %M"`` (2.2 look, but with port and AH code)
* an ``ErrorLogFormat`` with the compact ISO time ``[%{c}t]`` or ``[%{cu}t]``: ``[2021-02-03 10:11:12.123456]``
* debug and trace lines, with the source file before the client: ``[pid 1] mod_authz_core.c(820): [client ...]``
* ``, referer: ...`` suffixes; raw continuation lines (a CGI's stderr without Apache's prefix).

The client is only ever read from the ``[client ...]``/``[remote ...]`` field Apache writes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import sqlite3
import time

from ansible_collections.fleetguard.webshield.plugins.module_utils._stats import (
    MONTHS,
    in_time_range,
    local_epoch,
    normalize_address,
)

# [time] [level or module:level] optional [pid ...], optional "file.c(line): " (debug and trace levels),
# optional "(errno)text: ", then [client X] / [remote X]
_ERROR_LINE = re.compile(
    r"^\[(?P<time>(?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]?[0-9]|[0-9]{4}-[0-9]{2}-[0-9]{2}) [0-9:]{8}(?:\.[0-9]+)?"
    r"(?: [0-9]{4})?)\]"
    r" \[(?P<level>[^\]\s]*)\]"
    r"(?: \[pid [0-9]+(?::tid [0-9]+)?\])?"
    r"(?: [A-Za-z0-9_.-]+\.c\([0-9]+\):)?"
    r"(?: \([0-9]+\)[^\[\]]*:)?"
    r"(?: \[(?P<kind>client|remote) (?P<client>[^\]\s]+)\])?"
    r" ?(?P<message>.*)$"
)
_AH = r"AH[0-9]{5}: "
_AH_CODE = re.compile("^" + _AH)
AH_CODE_BYTES = re.compile(_AH.encode())
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
NOSCRIPT = "script not found or unable to stat"
# The missing-script forms: plain, after an AH code, and after "stderr from /path:" (the path comes from the
# request, so any ": " after it may end it). For text (ErrorLine) and for bytes (the block reader).
_NOSCRIPT_FORMS = "(?:%s)?(?:%s|stderr from .*?: %s)" % (_AH, NOSCRIPT, NOSCRIPT)
_NOSCRIPT = re.compile(_NOSCRIPT_FORMS)
_NOSCRIPT_BYTES = re.compile(_NOSCRIPT_FORMS.encode())

_F2B_LINE = re.compile(
    r"^(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})(?:[,.][0-9]+)?\s+fail2ban\.[\w.]+\s*"
    r"\[[0-9]+\]:\s+[A-Z]+\s+\[(?P<jail>[^\]]+)\]\s+(?P<action>Found|Restore Ban|Ban|Unban|Increase Ban)\s+"
    r"(?P<ip>[0-9A-Fa-f:.]+)(?:\s|$)"
)


def parse_error_time(text):
    """``Wed Feb 03 10:11:12[.123456] 2021`` (``%t``, ``%{u}t``) or ``2021-02-03 10:11:12[.123456]``
    (``%{c}t``, ``%{cu}t``), host-local time -> epoch seconds, or None."""
    try:
        parts = text.split()
        if len(parts) == 5:
            date, clock = (int(parts[4]), MONTHS[parts[1]], int(parts[2])), parts[3]
        elif len(parts) == 2:
            ymd = parts[0].split("-")
            if len(ymd) != 3:
                return None
            date, clock = (int(ymd[0]), int(ymd[1]), int(ymd[2])), parts[1]
        else:
            return None
        hms = clock.split(".")[0].split(":")
        tup = date + (int(hms[0]), int(hms[1]), int(hms[2]), 0, 0, -1)
        if not (1 <= tup[1] <= 12 and 1 <= tup[2] <= 31 and tup[3] < 24 and tup[4] < 60 and tup[5] < 61):
            return None
        return in_time_range(local_epoch(tup))
    except (KeyError, ValueError, IndexError, OverflowError):
        return None


def _by_minute(cache, minute, second, convert, last_second):
    """The epoch of ``minute`` (a host-local time text without its seconds) plus ``second``, with
    ``convert(minute)`` (its epoch, or None) called once per minute: a zone's offset changes on the minute.
    None when the minute is not a time or ``second`` is past ``last_second``."""
    base = cache.get(minute, False)
    if base is False:
        if len(cache) > 100000:
            cache.clear()
        base = cache[minute] = convert(minute)
    return None if base is None or second > last_second else base + second


def error_epoch(stamp, year, minutes):
    """``parse_error_time`` of an error-log time given as ``Wed Feb 03 10:11:12`` and ``2021``, or as
    ``2021-02-03 10:11:12`` and ``b""`` (bytes, no fraction), converting the local time once per minute
    (``minutes``: a dict the caller keeps)."""
    if stamp[-3:-2] != b":" or not stamp[-2:].isdigit():
        return parse_error_time((stamp + b" " + year).decode("ascii"))
    return _by_minute(minutes, stamp[:-2] + b"00 " + year, int(stamp[-2:]), _error_minute, 60)


def _error_minute(text):
    return parse_error_time(text.decode("ascii"))


def _fail2ban_minute(text):
    try:
        return in_time_range(local_epoch(time.strptime(text + ":00", "%Y-%m-%d %H:%M:%S")))
    except (ValueError, OverflowError):
        return None


def error_client(field, new_style):
    """Client address from a ``[client X]`` field: ``X`` may carry ``:port`` (Apache 2.4, CentOS 7).

    Apache 2.4 writes ``address:port`` with no brackets, also for IPv6 (``2001:db8::5:51234``), so on
    2.4-style lines (``new_style``) the last ``:digits`` is the port. On 2.2 lines there is no port,
    except an IPv4 ``a.b.c.d:port`` which is unambiguous.
    """
    head, sep, port = field.rpartition(":")
    if new_style and sep and port.isdigit():
        addr = normalize_address(head)
        if addr is not None:
            return addr
    addr = normalize_address(field)
    if addr is not None:
        return addr
    if sep and port.isdigit() and "." in head:
        return normalize_address(head)
    return None


class ErrorLine:
    """One parsed error-log line."""

    __slots__ = ("epoch", "client", "message", "referer", "new_style")

    def __init__(self, epoch, client, message, referer, new_style):
        self.epoch = epoch
        self.client = client
        self.message = message
        self.referer = referer
        self.new_style = new_style

    def is_noscript(self):
        """The missing-script forms: plain, after an AH code, and after ``stderr from /path:``."""
        return _NOSCRIPT.match(self.message) is not None


# The block reader's form of _ERROR_LINE: one row per line of a block (bytes, read with findall), either the
# fields of an error line (time without its fraction, fraction, year (b"" in a compact ISO time), level,
# client, message) or, for any other line, the line itself (``other``). Equivalent to _ERROR_LINE on lines
# of printable ASCII.
_ERROR_ROWS = re.compile(
    rb"^(?:\[((?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]?[0-9]|[0-9]{4}-[0-9]{2}-[0-9]{2}) [0-9:]{8})(\.[0-9]+)?"
    rb"(?: ([0-9]{4}))?\]"
    rb" \[([^\]\s]*)\]"
    rb"(?: \[pid [0-9]+(?::tid [0-9]+)?\])?"
    rb"(?: [A-Za-z0-9_.-]+\.c\([0-9]+\):)?"
    rb"(?: \([0-9]+\)[^\[\]\n]*:)?"
    rb"(?: \[(?:client|remote) ([^\]\s]+)\])?"
    rb" ?([^\n]*)|([^\n]*))$",
    re.M,
)
# The bytes of a block error_rows reads: printable ASCII, \t, \n and \r (parse_error_line reads the others).
_PLAIN = bytes(range(32, 127)) + b"\t\n\r"


def error_rows(buf, n):
    """The rows of ``buf`` (``n`` complete lines of printable ASCII) as ``_ERROR_ROWS`` reads them, one per
    line in order; None when the block is not one the rows may be taken from (see ``_PLAIN``)."""
    if buf.translate(None, _PLAIN):
        return None
    rows = _ERROR_ROWS.findall(buf)
    if len(rows) != n + 1:  # and an empty match at the end
        return None
    del rows[n]
    return rows


def is_noscript_text(message):
    """``ErrorLine.is_noscript`` for a message (bytes, without its referer suffix)."""
    return _NOSCRIPT_BYTES.match(message) is not None


def parse_error_line(line):
    """Parse one error-log line (text). Returns an ErrorLine, ``"continuation"``, or None if malformed.

    A line that does not start with ``[`` is a continuation (a CGI's raw stderr): it never charges anyone.
    """
    if not line.startswith("["):
        return "continuation" if line.strip() and not _CONTROL.search(line) else None
    m = _ERROR_LINE.match(line)
    if m is None:
        return None
    epoch = parse_error_time(m.group("time"))
    if epoch is None:
        return None
    message = m.group("message")
    referer = None
    head, sep, tail = message.rpartition(", referer: ")
    if sep:
        message, referer = head, tail
    # 2.4 writes ports, AH codes, module:level, fractions and compact ISO times (2.2 none of them)
    stamp = m.group("time")
    new_style = ":" in m.group("level") or "." in stamp or stamp[4] == "-" or _AH_CODE.match(message) is not None
    client = None
    if m.group("client") is not None:
        client = error_client(m.group("client"), new_style)
        if client is None:
            return None
    return ErrorLine(epoch, client, message, referer, new_style)


def parse_fail2ban_line(line, cache=None):
    """``(epoch, jail, action, address)`` for a fail2ban log line of interest, else None. ``cache``: a dict
    the caller keeps for the lines of a run (times are converted once a minute, addresses once)."""
    m = _F2B_LINE.match(line)
    if m is None:
        return None
    if cache is None:
        cache = {}
    ip = m.group("ip")
    addr = cache.get(ip, False)
    if addr is False:
        addr = cache[ip] = normalize_address(ip)
    if addr is None:
        return None
    stamp = m.group("time")
    epoch = _by_minute(cache, stamp[:16], int(stamp[17:19]), _fail2ban_minute, 61)  # 61: what strptime's %S takes
    if epoch is None:
        return None
    return epoch, m.group("jail"), m.group("action"), addr


def read_fail2ban_db(path, since=None, until=None, after=None, skipped=None):
    """Ban rows ``(epoch, jail, address)`` from fail2ban's SQLite database, opened read-only, oldest first.

    Both schemas keep one row per ban in ``bans(jail, ip, timeofban, ...)`` (0.9.x; 0.11+ adds
    ``bantime``/``bancount`` and the ``bips`` table of current bans, which is not needed here).
    ``after``: ``(epoch, pairs)``, the newest second a previous run read and the ``(jail, address)`` pairs it
    read in that second; only later rows are returned (a ban added in that second since is one of them).
    A row whose time is not a number of seconds ``in_time_range`` is left out, and appended to the
    list ``skipped`` (when given) as ``(jail, address, time)``.
    Raises ``sqlite3.Error`` or ``OSError`` with the reason.
    """
    # a URI: "%" first, as every escape starts with it
    uri = "file:%s?mode=ro" % path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    conn = sqlite3.connect(uri, uri=True)
    try:
        sql = "SELECT timeofban, jail, ip FROM bans"
        cond, args = [], []
        if since is not None:
            cond.append("timeofban >= ?")
            args.append(int(since))
        if until is not None:
            cond.append("timeofban < ?")
            args.append(int(until))
        if after is not None:
            cond.append("timeofban >= ?")
            args.append(int(after[0]))
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        rows = []
        for tob, jail, ip in conn.execute(sql + " ORDER BY timeofban", args):
            addr = normalize_address(str(ip))
            if addr is None or tob is None:
                continue
            if isinstance(tob, bool) or not isinstance(tob, (int, float)) or in_time_range(tob) is None:
                if skipped is not None:
                    skipped.append((str(jail), addr, tob))
                continue
            row = (int(tob), str(jail), addr)
            if after is not None and row[0] == after[0] and row[1:] in after[1]:
                continue
            rows.append(row)
        return rows
    finally:
        conn.close()
