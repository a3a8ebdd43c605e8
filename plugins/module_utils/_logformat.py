# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apache ``LogFormat`` compiler: turns a format string into one bytes regex for a whole buffer.

The regex is used with ``findall`` over a block of lines, so the per-line work stays in C. Every
compiled pattern names its fields ``client``, ``time``, ``target`` (path and query
string), ``query`` (only for ``%U%q`` formats), ``status``, ``referer``; ``compile_format`` says which
group holds each. Field widths are bounded by
Apache's own request limits (LimitRequestLine / LimitRequestFieldSize, 8190 bytes), so an over-long
or binary line does not match and is counted as malformed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

PRESETS = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
    "combined_duration": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
}

FIELDS = ("client", "time", "target", "query", "status", "referer")

MAX_FIELD = 8190

# One directive: %, optional < or >, optional status condition (!400,501), optional {arg}, a letter.
_DIRECTIVE = re.compile(r"%([<>]?)(!?[0-9,]*)(?:\{([^}]*)\})?([a-zA-Z%])")

# A field Apache writes between double quotes escapes '"' and '\' (ap_escape_logitem).
_QUOTED_ANY = rb'(?:[^"\\\n]|\\.)*'
_QUOTED_FAST = rb'[^"\\\n]*'
# Classes like \S and \w are the fastest in Python's regex engine; the time and status are checked
# later (a bad one makes the line malformed), so the regex stays simple.
_TOKEN = rb"\S+"
_TIME = rb"\[(?P<time>[^\]\n]*)\]"
# The method is not captured: fewer groups make findall faster, and no detector needs it.
_REQUEST = rb"(?:\w+ (?P<target>\S+) %s|%s)"


class LogFormatError(ValueError):
    """A LogFormat string that cannot be compiled."""


def resolve(fmt):
    """Return the LogFormat string for a preset name or a verbatim format."""
    return PRESETS.get(fmt, fmt)


def _directive_regex(arg, letter, quoted, used, fast):
    """Regex for one directive. ``used`` records which named fields are already taken."""

    def named(name, body):
        if name in used:
            return b"(?:" + body + b")"
        used.add(name)
        return b"(?P<" + name.encode() + b">" + body + b")"

    if quoted:
        value = _QUOTED_FAST if fast else _QUOTED_ANY
    else:
        value = _TOKEN
    if letter == "%":
        return b"%"
    if letter == "t":
        if arg:
            raise LogFormatError("time format %%{%s}t is not supported; use %%t" % arg)
        if "time" in used:
            return rb"\[[^\]\n]+\]"
        used.add("time")
        return _TIME
    if letter == "r":
        if "target" in used or not quoted:
            return value
        used.add("target")
        return _REQUEST % (value, value)
    if letter == "s":
        return named("status", rb"\d+|-")
    if letter in ("h", "a"):
        if arg == "c":
            return named("peer", value)
        return named("client_" + letter, value)
    if letter == "i" and arg.lower() == "referer":
        return named("referer", value)
    if letter == "U":
        return named("upath", rb'[^ ?"\n]+')
    if letter == "q":
        return named("query", rb'(?:\?[^ "\n]*)?')
    if letter == "m":
        return rb"[A-Za-z_-]+"
    return value


def _compile(text, fast):
    used = set()
    out = [b"^"]
    pos = 0
    for m in _DIRECTIVE.finditer(text):
        literal = text[pos : m.start()]
        out.append(re.escape(literal.replace("\\t", "\t").replace('\\"', '"')).encode("utf-8"))
        before = text[m.start() - 1] if m.start() > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        quoted = before == '"' and after == '"'
        out.append(_directive_regex(m.group(3), m.group(4), quoted, used, fast))
        pos = m.end()
    out.append(re.escape(text[pos:]).encode("utf-8"))
    out.append(rb"\r?$")
    return re.compile(b"".join(out), re.MULTILINE)


class AccessFormat:
    """A compiled access-log format.

    ``fast`` is a regex whose quoted fields cannot hold escaped quotes (most lines); ``full`` accepts
    Apache's ``\\"`` escapes and is used only on lines that hold one. ``index`` maps each name of
    ``FIELDS`` to its 1-based group number (``None`` when the format lacks it).
    """

    def __init__(self, fmt):
        self.text = text = resolve(fmt)
        if "%" not in text:
            raise LogFormatError(
                "%r is neither a preset (%s) nor a LogFormat string" % (fmt, ", ".join(sorted(PRESETS)))
            )
        try:
            self.fast = _compile(text, True)
            self.full = _compile(text, False)
        except re.error as exc:
            raise LogFormatError("cannot compile LogFormat %r: %s" % (text, exc))
        groups = self.fast.groupindex
        index = dict((name, groups.get(name)) for name in FIELDS)
        # The client: %a (client IP, honours mod_remoteip) before %h (remote host), before %{c}a (peer).
        for alias in ("client_a", "client_h", "peer"):
            if alias in groups:
                index["client"] = groups[alias]
                break
        if index["target"] is None and "upath" in groups:
            index["target"] = groups["upath"]
        else:
            index["query"] = None
        if index["client"] is None:
            raise LogFormatError("LogFormat %r has no client field (%%h, %%a or %%{c}a)" % text)
        self.index = index
