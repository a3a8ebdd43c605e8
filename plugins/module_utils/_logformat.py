# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apache ``LogFormat`` compiler: turns a format string into a column splitter and a bytes regex.

Most formats (the presets among them) are read by ``Splitter``: a block is cut at every double quote
and space with ``bytes.split``, and the fields are list slices, so the per-line work stays in C and
creates only the objects it returns. Blocks that do not have the format's shape, and formats the
splitter cannot read, go through the regex, used with ``findall`` over a block of lines. Every
compiled pattern names its fields ``client``, ``time``, ``target`` (path and query
string), ``query`` (only for ``%U%q`` formats), ``status``, ``referer``; ``compile_format`` says which
group holds each. Field widths are bounded by
Apache's own request limits (LimitRequestLine / LimitRequestFieldSize, 8190 bytes), so an over-long
or binary line does not match and is counted as malformed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import re
from datetime import datetime, timedelta
from itertools import compress, repeat
from operator import contains, itemgetter

from ansible_collections.fleetguard.webshield.plugins.module_utils._stats import (
    cached_map,
    in_time_range,
    local_epoch,
    zone_seconds,
)

PRESETS = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
    "combined_duration": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
}

FIELDS = ("client", "time", "target", "query", "status", "referer")

MAX_FIELD = 8190

# One directive: %, optional < or >, optional status condition (!400,501), optional {arg}, a letter (or
# ^ and two letters: %^ti, %^to, %^FB).
_DIRECTIVE = re.compile(r"%([<>]?)(!?[0-9,]*)(?:\{([^}]*)\})?(\^[a-zA-Z]{2}|[a-zA-Z%])")

# A field Apache writes between double quotes escapes '"' and '\' (ap_escape_logitem).
_QUOTED_ANY = rb'(?:[^"\\\n]|\\.)*'
_QUOTED_FAST = rb'[^"\\\n]*'
# Classes like \S and \w are the fastest in Python's regex engine; the time and status are checked
# later (a bad one makes the line malformed), so the regex stays simple.
_TOKEN = rb"\S+"
# Headers, environment variables, notes, cookies and trailers: Apache writes a present but empty one as
# nothing (only a missing one as "-"); a client can send an empty header to any format that logs one.
_MAYBE_EMPTY = ("i", "o", "e", "n", "C", "^ti", "^to")
_TOKEN_OR_EMPTY = rb"\S*"
_TIME = rb"\[(?P<time>[^\]\n]*)\]"
# The method is not captured: fewer groups make findall faster, and no detector needs it.
_REQUEST = rb"(?:\w+ (?P<target>\S+) %s|%s)"


class LogFormatError(ValueError):
    """A LogFormat string that cannot be compiled."""


def time_spec(arg):
    """The format of a ``%{arg}t`` directive without Apache's ``begin:``/``end:`` prefix ('' for ``%t``)."""
    arg = arg or ""
    for prefix in ("begin:", "end:"):
        if arg.startswith(prefix):
            return arg[len(prefix) :]
    return arg


_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# Month names as Apache writes them: httpd formats %{...}t with strftime in the C locale.
_MONTH_OF = dict((name[:3].lower().encode(), i + 1) for i, name in enumerate(_MONTH_NAMES))
_MONTH_OF.update((name.lower().encode(), i + 1) for i, name in enumerate(_MONTH_NAMES))

# strftime conversions: the field each one gives (None: read but not used) and what it looks like.
_CONVERSIONS = {
    "Y": ("Y", rb"\d{4}"),
    "y": ("y", rb"\d{2}"),
    "C": (None, rb"\d{2}"),
    "m": ("m", rb"\d{2}"),
    "d": ("d", rb"\d{2}"),
    "e": ("d", rb" ?\d{1,2}"),
    "j": ("j", rb"\d{3}"),
    "H": ("H", rb"\d{2}"),
    "k": ("H", rb" ?\d{1,2}"),
    "I": ("I", rb"\d{2}"),
    "l": ("I", rb" ?\d{1,2}"),
    "M": ("M", rb"\d{2}"),
    "S": ("S", rb"\d{2}"),
    "p": ("p", rb"[AP]M"),
    "b": ("b", rb"[A-Za-z]{3}"),
    "h": ("b", rb"[A-Za-z]{3}"),
    "B": ("b", rb"[A-Za-z]+"),
    "a": (None, rb"[A-Za-z]{3}"),
    "A": (None, rb"[A-Za-z]+"),
    "u": (None, rb"\d"),
    "w": (None, rb"\d"),
    "z": ("z", rb"[+-]\d{4}"),
    "Z": ("Z", rb"[A-Za-z+-][A-Za-z0-9+-]*"),  # CET, UTC, or +09 for zones without an abbreviation
    "s": ("epoch", rb"\d+"),
    "t": (None, b"\t"),
    "%": (None, b"%"),
}
# Conversions that stand for others (C locale).
_SHORTHANDS = {
    "T": "%H:%M:%S",
    "D": "%m/%d/%y",
    "F": "%Y-%m-%d",
    "R": "%H:%M",
    "r": "%I:%M:%S %p",
    "c": "%a %b %e %H:%M:%S %Y",
    "x": "%m/%d/%y",
    "X": "%H:%M:%S",
}
# Apache's own %{...}t formats: seconds, milliseconds or microseconds since the epoch, and the fraction of
# the second (not a time of its own: skipped).
_EPOCH_UNITS = {"sec": 1, "msec": 1000, "usec": 1000000}
_FRACTIONS = ("msec_frac", "usec_frac")
_UTC_NAMES = (b"UTC", b"GMT", b"UT", b"Z")


class TimeFormat:
    """The time of a LogFormat that writes it with ``%{format}t`` directives rather than ``%t``.

    ``specs`` are the formats of those directives in order (``%Y-%m-%d``, ``sec``...), ``groups`` the
    regex groups (1-based) that hold their text. A strftime format without ``%z`` is the local time of
    the host (as Apache writes it); ``epochs`` parses each distinct text once.
    """

    def __init__(self, text, specs, groups):
        self.groups = groups
        self.divisor = 1
        used, out = set(), []
        for spec in specs:
            if spec in _EPOCH_UNITS and "epoch" not in used:
                self.divisor = _EPOCH_UNITS[spec]
            out.append(self.part(spec, True, used))
        self.regex = re.compile(b"\x00".join(out) + b"\\Z")
        if "epoch" not in used and not (
            {"Y", "y"} & used and (("m" in used or "b" in used) and "d" in used or "j" in used)
        ):
            raise LogFormatError(
                "LogFormat %r: its time directives (%s) give no date (year, month and day) and no epoch "
                "(%%{sec}t); offender_stats needs the time of every request"
                % (text, ", ".join("%%{%s}t" % spec for spec in specs))
            )
        self.cache = {}
        self.token_cache = {}  # for token_epochs: texts as the splitter cuts them
        self.spaces = re.search(rb"\s", self.regex.pattern) is not None  # may the time text hold a space?

    @staticmethod
    def part(spec, named, used=None):
        """Regex for the text of one ``%{spec}t`` (``named``: with a group per field not in ``used``)."""
        if spec in _EPOCH_UNITS:
            if named and "epoch" not in used:
                used.add("epoch")
                return rb"(?P<epoch>\d+)"
            return rb"\d+"
        out, i = [], 0
        while i < len(spec):
            c = spec[i]
            if c != "%":
                out.append(re.escape(c.encode("utf-8")))
                i += 1
                continue
            conv = spec[i + 1 : i + 2]
            i += 2
            if conv in _SHORTHANDS:
                out.append(TimeFormat.part(_SHORTHANDS[conv], named, used))
                continue
            if conv not in _CONVERSIONS:
                raise LogFormatError(
                    "time format %%{%s}t: %%%s is not supported (supported: %s, and %%{sec}t, %%{msec}t, %%{usec}t)"
                    % (spec, conv, " ".join("%" + k for k in sorted(set(_CONVERSIONS) | set(_SHORTHANDS))))
                )
            name, body = _CONVERSIONS[conv]
            if named and name is not None and name not in used:
                used.add(name)
                out.append(b"(?P<" + name.encode() + b">" + body + b")")
            else:
                out.append(b"(?:" + body + b")")
        return b"".join(out)

    def epochs(self, rows):
        """Epoch seconds (None: not a valid time) of the time text of every ``findall`` row."""
        groups = self.groups
        if len(groups) == 1:
            texts = list(map(itemgetter(groups[0] - 1), rows))
        else:
            texts = list(map(b"\x00".join, map(itemgetter(*[g - 1 for g in groups]), rows)))
        return cached_map(self.cache, texts, self.epoch)

    def token_epochs(self, texts, affix):
        """Epoch seconds (None: not a valid time) of the time texts the splitter cut, each still within
        the literal text ``affix`` = (before, after) that the format writes around it (``[...]``)."""
        before, after = affix

        def inside(text):
            inner = len(text) - len(after)
            ok = inner >= len(before) and text.startswith(before) and text.endswith(after)
            return self.epoch(text[len(before) : inner]) if ok else None

        return cached_map(self.token_cache, texts, inside)

    def epoch(self, text):
        """Epoch seconds of one time text (the directives' texts joined by NUL), or None (also for a time
        outside the years 1900-9999)."""
        return in_time_range(self._epoch(text))

    def _epoch(self, text):
        m = self.regex.match(text)
        if m is None:
            return None
        g = m.groupdict()
        if g.get("epoch") is not None:
            return int(g["epoch"]) // self.divisor
        try:
            if g.get("Y") is not None:
                year = int(g["Y"])
            else:
                year = int(g["y"])
                year += 2000 if year < 69 else 1900
            if g.get("m") is not None or g.get("b") is not None:
                month = int(g["m"]) if g.get("m") is not None else _MONTH_OF[g["b"].lower()]
                day = datetime(year, month, int(g["d"]))
            else:
                day = datetime(year, 1, 1) + timedelta(days=int(g["j"]) - 1)
                if day.year != year:
                    return None
            if g.get("H") is not None:
                hour = int(g["H"])
            elif g.get("I") is not None:
                hour = int(g["I"])
                if not 1 <= hour <= 12:
                    return None
                hour = hour % 12 + (12 if g.get("p") == b"PM" else 0)
            else:
                hour = 0
            minute, second = int(g.get("M") or 0), int(g.get("S") or 0)
            if hour > 23 or minute > 59 or second > 60:
                return None
            fields = (day.year, day.month, day.day, hour, minute, second)
            if g.get("z") is not None:
                return calendar.timegm(fields) - zone_seconds(g["z"])
            if g.get("Z") in _UTC_NAMES:
                return calendar.timegm(fields)
            return local_epoch(fields)
        except (KeyError, ValueError, OverflowError):
            return None


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
    elif letter in _MAYBE_EMPTY:
        value = _TOKEN_OR_EMPTY
    else:
        value = _TOKEN
    if letter == "%":
        return b"%"
    if letter == "t":
        spec = time_spec(arg)
        if spec in _FRACTIONS:
            return rb"\d+"
        if spec:
            k = 0
            while "tpart%d" % k in used:
                k += 1
            return named("tpart%d" % k, TimeFormat.part(spec, False))
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
    # Spaces before and after the line's fields are let through, as the splitter does (it splits at runs of
    # spaces); no value outside quotes holds one, so where each field starts stays certain.
    out = [b"^ *"]
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
    out.append(rb" *\r?$")
    return re.compile(b"".join(out), re.MULTILINE)


_STATUS_TEXT = re.compile(rb"(?:\d+|-)\Z")
# What the regexes take as the target of %r: the second word of "METHOD target PROTOCOL...".
_REQUEST_TARGET = re.compile(rb"\w+ (\S+) ")
_WORD = re.compile(rb"\w+\Z")
# The token that stands for a field in the sample lines the splitter is laid out from.
_MARK = "\x01%s%d\x01"


# Between the pieces of one position a word of its own (a NUL byte, which Apache never writes: it escapes
# control bytes, and a block holding one is left to the regex), so where each piece's words begin and end
# can be checked: the same total could hide a line with a word too many beside one with a word too few.
_PIECE_END = b"\x00"


def _words(pieces):
    """The words of the unquoted pieces of one position in every line (line breaks separate words too),
    with the word ``_PIECE_END`` between one piece's and the next's."""
    return b" \x00 ".join(pieces).split()


def _mark_escaped_quotes(buf, pos):
    """``(buf with the quote of each escaped quote replaced by \\x01, whether there was one)``; ``pos`` is
    where the first backslash is. A backslash escapes the byte after it (``\\\\`` is one backslash)."""
    # Backslashes are few in most blocks: they are looked for one by one (a one-byte search is fast, while
    # searching a two-byte text such as \\" scans the block several times slower).
    at = []  # positions of the escaped quotes
    seen = 0
    while pos >= 0:
        seen += 1
        if seen == 1000 and b"\\\\" not in buf:
            # a block full of backslashes and no escaped one: every backslash before a quote escapes it
            return (buf.replace(b'\\"', b"\\\x01"), True) if b'\\"' in buf else (buf, False)
        if buf[pos + 1 : pos + 2] == b'"':
            at.append(pos + 1)
        pos = buf.find(b"\\", pos + 2)
    if not at:
        return buf, False
    parts, prev = [], 0
    for q in at:
        parts.append(buf[prev:q])
        prev = q + 1
    parts.append(buf[prev:])
    return b"\x01".join(parts), True


class Splitter:
    """Fields of a block of lines as columns (lists), without a regex.

    With Q double quotes per line, ``block.split(b'"')`` gives pieces that repeat with stride Q: a quoted
    field is the slice ``pieces[j::Q]``. The unquoted pieces are joined and split at spaces, which gives
    another stride. The strides and offsets are found once, by splitting sample lines rendered from the
    format. ``columns`` returns None for a block that does not have that shape (a malformed line, a
    line with another number of quotes, a carriage return), and the caller falls back to the regex.
    Lines with escaped quotes (``\\"``) are read with the escape replaced and the value restored.
    """

    pieces, escaped = (), False  # of the last block read

    def __init__(self, quotes, fields, checks, time_affix=None):
        self.quotes = quotes  # Q
        self.fields = fields  # name -> ("quoted", j) or ("token", j, stride, extra, offset)
        # ("literal", j, text) or ("tokens", j, stride, extra, first): the unquoted pieces j of n lines give
        # stride * n + extra words, with _PIECE_END at first, first + stride, ... (one between two pieces)
        self.checks = checks
        self.targets = {}  # request text -> target
        # A one-directive %{format}t time is the field "ttext", within this literal (before, after) text
        self.time_affix = time_affix

    @classmethod
    def build(cls, text, names, time_spaces=False):
        """A splitter for LogFormat ``text`` whose directives are named by ``names`` (a list with one
        field name or None per directive, in order), or None when the format does not suit it. The name
        "ttext" is a ``%{format}t`` directive that is the whole time, ``time_spaces`` whether its text may
        hold a space (then it must be quoted)."""
        line, pos, k = [], 0, 0
        for m in _DIRECTIVE.finditer(text):
            line.append(text[pos : m.start()].replace("\\t", "\t").replace('\\"', '"'))
            name = names[k]
            if m.group(4) == "t" and not time_spec(m.group(3)):
                line.append("[%s %s]" % (_MARK % ("d", k), _MARK % ("z", k)))
            elif m.group(4) == "%":
                line.append("%")
            else:
                line.append(_MARK % ("f", k))
            pos, k = m.end(), k + 1
        line.append(text[pos:].replace("\\t", "\t").replace('\\"', '"'))
        one = "".join(line).encode("utf-8")
        quotes = one.count(b'"')
        if quotes < 2 or quotes % 2 or any(c in one for c in (b"\n", b"\r", b"\t", b"\x0b", b"\x0c", b"\\")):
            return None
        one += b"\n"
        p1, p2 = (cls._pieces(one * n, n, quotes) for n in (1, 2))
        fields = {}
        time_affix = None
        for k, name in enumerate(names):
            if name is None:
                continue
            if name == "ttext":
                found = cls._time_text(p1, p2, quotes, (_MARK % ("f", k)).encode())
                if found is None or (found[0][0] == "token" and time_spaces):
                    return None
                fields["ttext"], time_affix = found
                continue
            if name == "time":
                marks = [(_MARK % ("d", k)).encode(), (_MARK % ("z", k)).encode()]
                marks = [b"[" + marks[0], marks[1] + b"]"]
            else:
                marks = [(_MARK % ("f", k)).encode()]
            found = []
            for mark in marks:
                for j in range(quotes):
                    if j % 2 and p1[j] == [mark]:
                        found.append(("quoted", j))
                    elif not j % 2 and mark in p1[j]:
                        t1, t2 = p1[j], p2[j]
                        stride, off = len(t2) - len(t1), t1.index(mark)
                        if t1.count(mark) == 1 and t2.count(mark) == 2 and t2[off + stride] == mark:
                            found.append(("token", j, stride, len(t1) - stride, off))
            if len(found) != len(marks):
                return None
            if name == "time":
                if found[0][0] != "token" or found[1][:2] != found[0][:2] or found[1][4] != found[0][4] + 1:
                    return None
                fields["time"] = found[0]
            elif name in ("target", "referer") and found[0][0] != "quoted":
                return None
            else:
                fields[name] = found[0]
        if "client" not in fields or ("time" not in fields and "ttext" not in fields):
            return None
        # Every unquoted piece is checked on each block: a literal one must be the literal, one with
        # directives must give as many tokens as the sample lines do (a directive is never empty, and
        # no value holds a space).
        checks = []
        for j in range(2, quotes, 2):
            if not any(b"\x01" in t for t in p1[j]):
                checks.append(("literal", j, one.split(b'"')[j]))
        for j in range(0, quotes, 2):
            if any(b"\x01" in t for t in p1[j]):
                t1, t2 = p1[j], p2[j]
                checks.append(("tokens", j, len(t2) - len(t1), 2 * len(t1) - len(t2), t2.index(_PIECE_END)))
        return cls(quotes, fields, checks, time_affix)

    @staticmethod
    def _time_text(p1, p2, quotes, mark):
        """Where the sample lines hold ``mark`` within literal text (``[mark]``, or a quoted ``mark``):
        ``(field spec, (text before, text after))``, or None."""
        for j in range(quotes):
            if j % 2:
                value = p1[j][0]
                if mark in value and value.count(b"\x01") == 2:
                    return ("quoted", j), tuple(value.split(mark))
                continue
            t1, t2 = p1[j], p2[j]
            at = [i for i, t in enumerate(t1) if mark in t]
            if len(at) != 1:
                continue
            off, stride, token = at[0], len(t2) - len(t1), t1[at[0]]
            if token.count(b"\x01") == 2 and t2[off + stride] == token:
                return ("token", j, stride, len(t1) - stride, off), tuple(token.split(mark))
        return None

    @staticmethod
    def _pieces(buf, n, quotes):
        """Per piece index j (0..Q-1): the quoted values (odd j) or the tokens (even j) of ``buf``."""
        p = buf.split(b'"')
        if len(p) != quotes * n + 1:
            return None
        return [p[j::quotes] if j % 2 else _words(p[j::quotes]) for j in range(quotes)]

    def columns(self, buf, n):
        """``{field: list}`` for the ``n`` lines of ``buf`` (complete lines), or None (see the class)."""
        if b"\r" in buf or b"\t" in buf or b"\x0b" in buf or b"\x0c" in buf or _PIECE_END in buf:
            return None  # whitespace that is not a separator here, or a NUL (Apache escapes both): the regex decides
        escaped = False
        pos = buf.find(b"\\")
        if pos >= 0:
            # Apache escapes '"' and '\\' in quoted fields; an escaped quote is not a field boundary: it
            # becomes \x01 here (a byte Apache never writes as is) and '"' again in the values.
            if b"\x01" in buf:
                return None
            buf, escaped = _mark_escaped_quotes(buf, pos)
        quotes = self.quotes
        p = buf.split(b'"')
        if len(p) != quotes * n + 1:
            return None
        heads = p[0::quotes]
        # Each of the n pieces that follow a line break must hold one: then no other piece holds any, and
        # every line has exactly Q quotes.
        if not all(map(contains, heads[1:], repeat(10))):
            return None
        tokens = {}
        for check in self.checks:
            j = check[1]
            if check[0] == "literal":
                if p[j::quotes].count(check[2]) != n:
                    return None
                continue
            _kind, j, stride, extra, first = check
            got = _words(heads if j == 0 else p[j::quotes])
            # Every piece must have its number of words: one line with a word too many (a user name with a
            # space) beside one with a word too few would give the right total and shift the fields.
            if len(got) != stride * n + extra or got[first::stride].count(_PIECE_END) != n - (j > 0):
                return None
            tokens[j] = got
        cols = {}
        for name, spec in self.fields.items():
            if spec[0] == "quoted":
                cols[name] = p[spec[1] :: quotes]
                continue
            _kind, j, stride, _extra, off = spec
            got = tokens[j]
            cols[name] = got[off : off + stride * n : stride]
            if name == "time":
                cols["zone"] = got[off + 1 : off + 1 + stride * n : stride]
        del heads, tokens
        self.pieces, self.escaped = p, escaped  # for line(), until the next block
        status = cols.get("status")
        if status is not None and not all(map(_STATUS_TEXT.match, set(status))):
            return None
        if escaped:
            for name in ("target", "referer"):
                col = cols.get(name)
                if col is not None and b"\x01" in b"".join(col):
                    col = cols[name] = list(col)
                    for i in compress(range(n), map(contains, col, repeat(1))):
                        col[i] = col[i].replace(b"\x01", b'"')
        if "target" in cols:
            cols["target"] = self._targets(cols["target"])
        return cols

    def release(self):
        """Let go of the pieces of the block read last (``line`` is not called for it any more)."""
        self.pieces, self.escaped = (), False

    def line(self, i):
        """The raw text of line ``i`` of the block ``columns`` read last (put back together from its pieces)."""
        p, quotes = self.pieces, self.quotes
        parts = p[quotes * i : quotes * i + quotes + 1]
        if i:
            parts[0] = parts[0].rpartition(b"\n")[2]
        parts[-1] = parts[-1].partition(b"\n")[0]
        text = b'"'.join(parts)
        return text.replace(b"\x01", b'"') if self.escaped else text

    def _targets(self, requests):
        """The target of each request text (b"" when it is not "METHOD target PROTOCOL...")."""
        # The usual case: every request has three words. Joined at line breaks and split at spaces, each
        # request adds two words; when the third word of every request but the last holds the break (and
        # the next method), each request has exactly three.
        words = b"\n".join(requests).split(b" ")
        n = len(requests)
        if len(words) == 2 * n + 1 and all(map(contains, words[2:-1:2], repeat(10))):
            methods = set(w.rpartition(b"\n")[2] for w in set(words[2:-1:2]))
            methods.add(words[0])
            if all(map(_WORD.match, methods)):
                return words[1::2]
        cache = self.targets
        if len(cache) > 200000:
            cache.clear()
        for req in set(requests).difference(cache):
            m = _REQUEST_TARGET.match(req)
            cache[req] = m.group(1) if m else b""
        return list(map(cache.__getitem__, requests))


class AccessFormat:
    """A compiled access-log format.

    ``fast`` is a regex whose quoted fields cannot hold escaped quotes (most lines); ``full`` accepts
    Apache's ``\\"`` escapes and is used only on lines that hold one. ``index`` maps each name of
    ``FIELDS`` to its 1-based group number (``None`` when the format lacks it).
    """

    def __init__(self, fmt):
        # A format copied from httpd.conf has its double quotes escaped (LogFormat "... \\"%r\\" ..."); Apache's
        # configuration reader unescapes them before mod_log_config reads the directives.
        self.text = text = resolve(fmt).replace('\\"', '"')
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
        # %{format}t directives (when the format has no %t): the time is read from their texts together
        self.times = None
        if index["time"] is None:
            specs = [time_spec(m.group(3)) for m in _DIRECTIVE.finditer(text) if m.group(4) == "t"]
            specs = [spec for spec in specs if spec not in _FRACTIONS]
            if not specs:
                raise LogFormatError("LogFormat %r has no time field (%%t or %%{format}t)" % text)
            self.times = TimeFormat(text, specs, [groups["tpart%d" % k] for k in range(len(specs))])
        self.splitter = None
        one_time = self.times is None or len(self.times.groups) == 1
        if one_time and "upath" not in groups and "query" not in groups:
            client = [name for name, i in groups.items() if i == index["client"]][0]
            rename = {client: "client", "tpart0": "ttext" if self.times is not None else None}
            names = [rename.get(n, n) for n in _directive_names(text)]
            names = [n if n in ("client", "time", "ttext", "target", "status", "referer") else None for n in names]
            self.splitter = Splitter.build(text, names, self.times is not None and self.times.spaces)


def access_formats(value):
    """The AccessFormats of an ``access_format`` option: one format, or a list of them to choose from per
    file. Raises LogFormatError naming the value that is not a format."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) for t in texts):
        raise LogFormatError("a format or a non-empty list of formats is needed, got %r" % (value,))
    return [AccessFormat(text) for text in texts]


def _directive_names(text):
    """The field name each directive of ``text`` stands for (None for the unnamed ones), as ``_compile``
    names them: the first directive of a kind gets the name."""
    used, names = set(), []
    for m in _DIRECTIVE.finditer(text):
        before = text[m.start() - 1] if m.start() > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        had = set(used)
        _directive_regex(m.group(3), m.group(4), before == '"' and after == '"', used, True)
        new = used - had
        names.append(new.pop() if new else None)
    return names
