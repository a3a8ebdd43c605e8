# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detectors and aggregation for offender_stats.

Access-log blocks are handled column-wise: one ``findall`` per block, then ``Counter.update`` over
zipped columns, so per-line work stays in C. Detectors classify the *distinct* request targets of a
block and only then look at the rows that hit a flagged target; the flood detector goes row by row only
through the (client, path) pairs over the smallest window's limit; the raw line of a row (evidence) is
looked up only for offenders that need one. Client addresses are normalised once
per distinct value (IPv4-mapped IPv6 folded to IPv4); paths and referers stay bytes until
``Stats.result()`` builds the output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import calendar
import heapq
import ipaddress
import re
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from itertools import compress, islice, repeat
from operator import add, and_, itemgetter, le, methodcaller, mul, or_

DETECTORS = ("missing_script", "open_redirect", "flood", "tripwire", "fail2ban")

# Clients are ranked by offences first: one offence outweighs this many hits when choosing whose
# per-client detail to keep.
OFFENSE_WEIGHT = 1000

# Raw log lines kept as evidence are cut to this many characters.
SAMPLE_MAX_CHARS = 2000

DEFAULT_SCRIPT_PATTERNS = (r"^/cgi-bin/", r"\.(?:cgi|pl|php|py|sh|asp|aspx|jsp)$")

MONTHS = dict(
    (m, i + 1)
    for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
)
_MONTHS_B = dict((k.encode(), v) for k, v in MONTHS.items())

# A query value that is an absolute URL with a host: scheme://host or protocol-relative //host.
_EXTERNAL_URL = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]{0,15}:)?[/\\]{2}([^/?#\\\s]+)")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(r"^%s(?:\.%s){3}\Z" % (_OCTET, _OCTET))


def _unquote(text):
    return _PCT.sub(lambda m: chr(int(m.group(1), 16)), text.replace("+", " "))


def external_url_host(query, max_rounds=3):
    """Return the host of the first query value that is an external absolute URL, or None.

    ``query`` is the text after ``?``. Values are percent-decoded up to ``max_rounds`` times, so
    ``http%3A%2F%2F`` and ``http%253A%252F%252F`` are found as well as plain ``http://``.
    """
    for pair in query.split("&"):
        value = pair.partition("=")[2] if "=" in pair else pair
        for _round in range(max_rounds + 1):
            m = _EXTERNAL_URL.match(value)
            if m:
                host = m.group(1).rpartition("@")[2].lower()
                host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
                return host.strip("[]")
            decoded = _unquote(value)
            if decoded == value:
                break
            value = decoded
    return None


def normalize_address(text):
    """Return the canonical text of an IP address (IPv4-mapped IPv6 folded to IPv4), or None."""
    if _IPV4.match(text):
        return text
    if ":" not in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _client_name(raw):
    """The normalised address of a raw client field (bytes), or None."""
    return normalize_address(raw.decode("utf-8", "replace"))


class _Memo(dict):
    """A dict that computes a missing value with ``make`` and keeps it: ``map(memo.__getitem__, keys)``
    stays in C for every key seen before and calls ``make`` once per new key."""

    __slots__ = ("make",)

    def __init__(self, make):
        dict.__init__(self)
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


def network_of(address, prefix, version):
    """CIDR text of the ``prefix``-bit network holding ``address`` if it is an IPv``version`` address."""
    if (":" in address) != (version == 6):
        return None
    if version == 4 and prefix in (8, 16, 24):
        keep = prefix // 8
        return ".".join(address.split(".")[:keep] + ["0"] * (4 - keep)) + "/%d" % prefix
    return str(ipaddress.ip_network("%s/%d" % (address, prefix), strict=False))


def cached_map(cache, texts, parse, limit=50000):
    """``[parse(t) for t in texts]`` with ``parse`` called once per distinct text, kept in ``cache`` (a dict
    the caller keeps, emptied when it holds more than ``limit``)."""
    if len(cache) > limit:
        cache.clear()
    for text in set(texts).difference(cache):
        cache[text] = parse(text)
    return list(map(cache.__getitem__, texts))


class TimeParser:
    """Apache ``%t`` text to epoch seconds, cached per distinct second-resolution string."""

    def __init__(self):
        self.cache = {}
        self.zones = {}  # zone token -> date token -> epoch, for the splitter's columns
        self._minutes = {}

    def _parse(self, ts):
        """``03/Feb/2021:10:11:12 +0000`` (bytes) -> epoch seconds or None, without the cache of texts:
        the minute is parsed once per distinct minute, the seconds come from a table."""
        minutes = self._minutes
        minute = ts[:17] + ts[20:]
        base = minutes.get(minute, False)
        if base is False:
            if len(minutes) > 100000:
                minutes.clear()
            base = minutes[minute] = _minute_epoch(ts)
        sec = _SECONDS.get(ts[17:20])
        return None if base is None or sec is None else base + sec

    def epochs(self, dates, zones):
        """Epochs of the splitter's ``[dd/Mon/yyyy:hh:mm:ss`` and ``+hhmm]`` token columns (None: malformed)."""
        zone = zones[0] if zones else b""
        if zones.count(zone) != len(zones):  # several offsets in one block (a DST change): line by line
            return [
                self.access(d[1:] + b" " + z[:-1]) if d[:1] == b"[" and z[-1:] == b"]" else None
                for d, z in zip(dates, zones)
            ]
        cache = self.zones.get(zone)
        if cache is None or len(cache) > 50000:
            cache = self.zones[zone] = {}
        new = set(dates).difference(cache)
        if not new:
            return list(map(cache.__getitem__, dates))
        if zone[-1:] != b"]":
            cache.update(dict.fromkeys(new))
            return list(map(cache.__getitem__, dates))
        tail, parse = b" " + zone[:-1], self._parse
        for d in new:
            cache[d] = parse(d[1:] + tail) if len(d) == 21 and d[:1] == b"[" else None
        return list(map(cache.__getitem__, dates))

    def texts(self, stamps):
        """Epochs of ``%t`` texts (``03/Feb/2021:10:11:12 +0000``) from the regex (None: malformed)."""
        return cached_map(self.cache, stamps, self._parse)

    def access(self, ts):
        """``03/Feb/2021:10:11:12 +0000`` (bytes) -> epoch seconds, or None if malformed."""
        cache = self.cache
        if ts in cache:
            return cache[ts]
        value = cache[ts] = self._parse(ts)
        return value


_SECONDS = dict((b":%02d" % i, i) for i in range(61))

# The times a log line or a ban may have: years 1900 to 9999, which Python's datetime can show in every zone
# (a line written at year 1 or 10000, or a ban at 10**17, is malformed: reporting it would fail the whole run).
EPOCH_MIN, EPOCH_MAX = -2208988800, 253402214400


def in_time_range(epoch):
    """``epoch`` if it is within EPOCH_MIN..EPOCH_MAX, else None."""
    return epoch if epoch is not None and EPOCH_MIN <= epoch <= EPOCH_MAX else None


def _minute_epoch(ts):
    """Epoch of the minute of an Apache ``%t`` value, or None when it is not a valid time."""
    try:
        if len(ts) != 26 or ts[2:3] != b"/" or ts[6:7] != b"/" or ts[11:12] != b":" or ts[14:15] != b":":
            return None
        year, month, day = int(ts[7:11]), _MONTHS_B[ts[3:6]], int(ts[0:2])
        hh, mm = int(ts[12:14]), int(ts[15:17])
        zone = ts[21:26]
        if hh > 23 or mm > 59 or zone[:1] not in (b"+", b"-"):
            return None
        datetime(year, month, day)  # validates the day of the month
        return in_time_range(calendar.timegm((year, month, day, hh, mm, 0)) - zone_seconds(zone))
    except (KeyError, ValueError):
        return None


def zone_seconds(zone):
    """Seconds east of UTC of an Apache/strftime ``%z`` offset (``+0900``, ``-0430``; bytes)."""
    return (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (-1 if zone[:1] == b"-" else 1)


def wall_clock_readings(epoch):
    """The seconds whose host-local time reads as ``epoch``'s, ``epoch`` among them, oldest first: two in the
    hour that repeats when the clocks go back (an hour apart, half an hour in Lord Howe), else one."""
    try:
        wall = time.localtime(epoch)[:6]
        return sorted(
            [epoch] + [epoch + d for d in (-3600, 3600, -1800, 1800) if time.localtime(epoch + d)[:6] == wall]
        )
    except (OverflowError, OSError, ValueError):
        return [epoch]


def local_epoch(fields):
    """The epoch of a host-local time ``(year, month, day, hour, minute, second, ...)`` written without its
    offset. In the hour that repeats when the clocks go back it is the earlier of the two readings (as Python's
    ``fold=0``), whatever ``mktime`` picks: glibc's pick depends on the calls made before, so processes and runs
    would differ. Raises ValueError or OverflowError as ``mktime`` does."""
    return wall_clock_readings(int(time.mktime(tuple(fields[:6]) + (0, 0, -1))))[0]


def iso(epoch):
    """ISO 8601 text, in the host's local time with its offset, for an epoch."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone().isoformat()


def iso_texts(epochs):
    """``{epoch: iso(epoch)}`` for many epochs: the host's offset is looked up once per quarter of an hour
    (where it is the same at both ends of it: zones change their offset on a quarter hour)."""
    out, quarters = {}, {}
    for epoch in epochs:
        if epoch in out:
            continue
        if not isinstance(epoch, int):
            out[epoch] = iso(epoch)
            continue
        quarter = epoch // 900 * 900
        off = quarters.get(quarter)
        if off is None:
            off = time.localtime(quarter).tm_gmtoff
            if off % 60 or off != time.localtime(quarter + 899).tm_gmtoff:
                off = False
            quarters[quarter] = off
        if off is False:
            out[epoch] = iso(epoch)
            continue
        t = time.gmtime(epoch + off)
        sign, off = ("-", -off) if off < 0 else ("+", off)
        out[epoch] = "%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (t[:6] + (sign, off // 3600, off % 3600 // 60))
    return out


_DAY0 = date(1970, 1, 1).toordinal()


def local_day(epoch):
    """The host-local date of ``epoch`` as a day number (days since 1970-01-01): the key of a day. One key
    per date also on a day whose clocks change, where midnight and the later hours have other offsets."""
    return (epoch + time.localtime(epoch).tm_gmtoff) // 86400


def day_text(day):
    """``YYYY-MM-DD`` of a ``local_day`` key."""
    return date.fromordinal(_DAY0 + int(day)).isoformat()


class Config:
    """Detector settings (already validated by the module)."""

    def __init__(
        self,
        *,
        detectors=DETECTORS,
        script_patterns=DEFAULT_SCRIPT_PATTERNS,
        script_statuses=(404,),
        redirect_paths=(),
        redirect_allow_hosts=(),
        flood_windows=((300, 60),),
        tripwire_paths=(),
        tripwire_markers=(),
        fail2ban_ignore_jails=(),
        track_max=2000,
        since=None,
        until=None,
        sample_lines=5,
        day_pages=0,
        detail=True,
    ):
        self.detectors = frozenset(detectors)
        self.script_re = re.compile("|".join("(?:%s)" % p for p in script_patterns)) if script_patterns else None
        self.script_statuses = frozenset(str(s).encode() for s in script_statuses)
        self.redirect_re = re.compile("|".join("(?:%s)" % p for p in redirect_paths)) if redirect_paths else None
        self.redirect_allow = frozenset(h.lower() for h in redirect_allow_hosts)
        self.flood_windows = tuple((int(w), int(n)) for w, n in flood_windows)
        self.flood_wmax = max([w for w, _n in self.flood_windows] or [0])
        self.flood_nmin = min([n for _w, n in self.flood_windows] or [0])
        self.tripwire_paths = frozenset(p.encode("utf-8") for p in tripwire_paths)
        self.tripwire_markers = tuple(tripwire_markers)
        self.fail2ban_ignore = frozenset(fail2ban_ignore_jails)
        self.track_max = track_max
        # detail=False: no per-client detail at all (pages, statuses, referers, evidence lines, the clients of
        # each day's pages); the per-client counts, first/last seen and offences are the same.
        self.detail = bool(detail)
        self.sample_lines = max(0, int(sample_lines)) if detail else 0
        self.day_pages = max(0, int(day_pages))  # pages per day in the result (0: none)
        self.since = since
        self.until = until

    def in_window(self, epoch):
        if epoch is None:
            return self.since is None and self.until is None
        return (self.since is None or epoch >= self.since) and (self.until is None or epoch < self.until)


def flood_offences(times, windows, first_new=0):
    """The times of the events from index ``first_new`` on (``times`` sorted) that exceed any window.

    An event is an offence when the ``w``-second window ending at it holds more than ``n`` events.
    """
    found = []
    starts = [0] * len(windows)
    for i in range(len(times)):
        hit = False
        for k, (w, n) in enumerate(windows):
            j = starts[k]
            t = times[i]
            while times[j] <= t - w:
                j += 1
            starts[k] = j
            if i - j + 1 > n:
                hit = True
        if hit and i >= first_new:
            found.append(times[i])
    return found


class Stats:
    """Accumulates counts from any number of access/error/fail2ban blocks.

    Clients are keyed by their normalised address (so ``::ffff:192.0.2.1`` and ``192.0.2.1`` add up).
    Blocks may come in any order (several logs, rotated files, the parts of other processes): first/last
    seen keep the extremes, and the clients of a day are bits of one int per client (a bit per day), so a
    client counts once a day. Only flood detection relies on the lines of one log coming in time order.
    """

    def __init__(self, config):
        self.cfg = config
        self.times = TimeParser()
        self.hits = Counter()  # client -> hits
        # Per-client detail (pages, statuses, referers) is kept for the tracked clients only: those whose
        # score (hits + OFFENSE_WEIGHT x offences) reaches track_min. When more than track_max clients
        # qualify, track_min doubles and the detail of the clients that fall below it is dropped, so memory
        # stays bounded however many clients the log holds.
        self.cps = Counter()  # (client, path, status) -> hits, tracked clients
        self.cref = Counter()  # (client, referer) -> hits, tracked clients ("-": none; left out of the result)
        self.tracked = set()
        self.track_min = 1
        self.offcount = Counter()  # client -> offences
        self.pages = Counter()  # path -> hits
        self.day_pages = defaultdict(Counter)  # local day number -> path -> hits (when cfg.day_pages)
        # (client, day, path) -> hits, for tracked clients on the day's leading pages (when cfg.day_pages)
        self.dpc = Counter()
        self.samples = {}  # client -> raw lines (str) that triggered a detector, at most cfg.sample_lines
        self.samples_full = set()  # the clients of samples that hold sample_lines lines
        self._block_lines = None  # raw lines of the access block being read (for samples)
        self.refs = Counter()  # referer -> hits ("-": none; left out of the result)
        self.day_hits = Counter()  # local day number -> hits
        # The days each client was seen on (hits or events): client -> an int with a bit per day, the bit of
        # a day (a local_day number) in day_bits. Not just the last day a client was seen: logs of
        # different vhosts, the error log and fail2ban's log each go back over days that another source
        # has covered, and a client counts once a day however often it comes back.
        self.client_days = {}
        self.day_bits = {}
        self.day_clients = None  # local day number -> distinct clients, once reading is over (settle_days)
        self.first = {}  # client -> epoch
        self.last = {}
        self.off = Counter()  # (client, detector, day) -> offences
        # Flood windows count the requests of one log and its rotations (begin_log): logs of different
        # vhosts cover the same hours, and their requests are not in one time order.
        self.flood_log = None  # the log flood_tail's rows come from (None: every block is of one log)
        self.flood_tail = ([], [], [])  # client, path, epoch columns of the rows in the newest widest window
        self.flood_head = None  # a worker's first widest window: (client, path) -> epochs, see merge()
        self.flood_head_until = None
        self.flood_head_log = None  # the log of flood_head (a worker's first)
        self.lines = 0
        self.bytes = 0
        self.malformed = 0
        self.matched = 0
        self.tmin = None
        self.tmax = None
        self.fail2ban = defaultdict(Counter)  # jail -> event -> n
        self.ban_keys = set()
        self._path_of = {}
        self._target_class = {}
        self.addresses = _Memo(_client_name)  # raw client field -> normalised address (None: not an address)
        self.error_times = {}  # error-log time text (no fraction) -> epoch (None: not a time)
        self.error_minutes = {}  # the same for the minute of the time text (its seconds left out)
        self.error_verdicts = {}  # error-log message -> the detector it charges (None: none)
        self.fail2ban_cache = {}  # fail2ban log: address text -> address, minute text -> epoch
        self.bad_clients = 0  # lines whose client field is not an IP address (part of malformed)
        self.continued = 0  # error-log lines that are not error lines of their own (a CGI's raw stderr)

    # -- helpers -----------------------------------------------------------------------------

    def _seen(self, client, epoch):
        if epoch is None:
            return
        f = self.first.get(client)
        if f is None or epoch < f:
            self.first[client] = epoch
        if self.last.get(client, -1) < epoch:
            self.last[client] = epoch
        if self.tmin is None or epoch < self.tmin:
            self.tmin = epoch
        if self.tmax is None or epoch > self.tmax:
            self.tmax = epoch

    def offend(self, client, detector, epoch):
        """One offence of ``client`` at ``epoch`` (None: a time not known)."""
        self.off[(client, detector, local_day(epoch) if epoch is not None else None)] += 1
        self.offcount[client] += 1
        self.matched += 1

    def offend_at(self, client, detector, epochs):
        """One offence of ``client`` at each of ``epochs``, each on its own day."""
        for day, n in Counter(self._days_of(epochs)).items():
            self.off[(client, detector, day)] += n
        self.offcount[client] += len(epochs)
        self.matched += len(epochs)

    def offend_rows(self, clients, detector, days):
        """``offend`` for many offences of one detector (``clients`` and ``days`` columns)."""
        self.off.update(zip(clients, repeat(detector), days))
        self.offcount.update(clients)
        self.matched += len(clients)

    def _score(self, client):
        return self.hits.get(client, 0) + OFFENSE_WEIGHT * self.offcount.get(client, 0)

    def needs_sample(self, client):
        """True when ``client`` may keep one more raw line (an offender with fewer than sample_lines)."""
        k = self.cfg.sample_lines
        if not k:
            return False
        got = self.samples.get(client)
        if got is None:
            return self._score(client) >= self.track_min
        return len(got) < k

    def sample(self, client, raw):
        """Keep ``raw`` (bytes or str, one log line) as evidence against ``client`` if it has room."""
        if raw is None or not self.needs_sample(client):
            return
        if isinstance(raw, bytes):
            raw = raw[: SAMPLE_MAX_CHARS * 4].decode("utf-8", "replace")
        text = raw.rstrip("\r\n")
        if len(text) > SAMPLE_MAX_CHARS:
            text = text[: SAMPLE_MAX_CHARS - 1] + "\u2026"
        got = self.samples.setdefault(client, [])
        got.append(text)
        if len(got) >= self.cfg.sample_lines:
            self.samples_full.add(client)

    def begin_log(self, name):
        """The access-log blocks that follow are of the log ``name`` (a log and its rotations share a name).
        Another log than the one before starts without flood context."""
        if name == self.flood_log:
            return
        self.flood_log = name
        self.flood_tail = ([], [], [])
        if self.flood_head is not None and self.flood_head_log is None:
            self.flood_head_log = name

    def _day_bit(self, day):
        bit = self.day_bits.get(day)
        if bit is None:
            bit = self.day_bits[day] = 1 << len(self.day_bits)
        return bit

    def sample_rows(self, clients, line_of):
        """``sample`` for a block's offences in their order: ``clients`` of them, ``line_of(k)`` the raw line of
        the k-th (asked only for the clients that still have room)."""
        needy = {c for c in set(clients).difference(self.samples_full) if self.needs_sample(c)}
        for k, c in enumerate(clients):
            if not needy:
                break
            if c in needy:
                self.sample(c, line_of(k))
                if not self.needs_sample(c):
                    needy.discard(c)

    def _count_day(self, day, clients):
        """Count ``clients`` (distinct) as seen on ``day``."""
        bit = self._day_bit(day)
        seen = self.client_days
        seen.update(zip(clients, map(or_, map(seen.get, clients, repeat(0)), repeat(bit))))

    def clients_per_day(self):
        """local day number -> the number of distinct clients seen that day."""
        if self.day_clients is not None:
            return self.day_clients
        day_of = dict((bit, day) for day, bit in self.day_bits.items())
        out = Counter()
        for bits, n in Counter(self.client_days.values()).items():
            while bits:
                low = bits & -bits
                out[day_of[low]] += n
                bits ^= low
        return out

    def settle_days(self):
        """Reading is over: keep the number of clients per day, let the days of each client go."""
        self.day_clients = self.clients_per_day()
        self.client_days = {}

    def event(self, client, epoch):
        """An error-log or fail2ban event: extends the client's time range and day, is not a hit."""
        self._seen(client, epoch)
        if epoch is not None:
            self._count_day(local_day(epoch), (client,))

    def _classify(self, target):
        """Flags for a distinct request target: (tripwire, script, redirect)."""
        cfg = self.cfg
        path, _sep, query = target.partition(b"?")
        tripwire = "tripwire" in cfg.detectors and path in cfg.tripwire_paths
        script = False
        if "missing_script" in cfg.detectors and cfg.script_re is not None:
            script = cfg.script_re.search(path.decode("utf-8", "replace")) is not None
        redirect = False
        if "open_redirect" in cfg.detectors and query and (b"//" in query or b"%2" in query or b"%5" in query):
            spath = path.decode("utf-8", "replace")
            if cfg.redirect_re is None or cfg.redirect_re.search(spath):
                host = external_url_host(query.decode("utf-8", "replace"))
                redirect = host is not None and host not in cfg.redirect_allow
        return (tripwire, script, redirect)

    # -- access logs -------------------------------------------------------------------------

    def add_access_columns(self, raw_clients, eps, targets, statuses, *, referers, lines=None):
        """Account one block of access-log lines given as columns (lists of one value per line).

        ``raw_clients`` are the client fields as written, ``eps`` the epochs of the lines (None: bad time),
        ``targets``, ``statuses`` and ``referers`` bytes. ``lines``, when given, returns the raw line of a
        row (by its position in the columns), for samples.
        """
        nrows = len(raw_clients)
        if not nrows:
            return
        self._block_lines = lines
        rowid = None  # position in the original columns of each kept row (None: the same)
        cfg = self.cfg
        # Client addresses are normalised here (a cache per distinct raw value), so every key below is
        # the canonical address text.
        names = self.addresses
        if len(names) > 100000:
            names.clear()
        clients = list(map(names.__getitem__, raw_clients))
        del raw_clients
        if None in eps or None in clients or cfg.since is not None or cfg.until is not None:
            keep = [i for i, e in enumerate(eps) if e is not None and clients[i] is not None and cfg.in_window(e)]
            bad = sum(1 for e, c in zip(eps, clients) if e is None or c is None)
            self.malformed += bad
            self.bad_clients += sum(1 for e, c in zip(eps, clients) if e is not None and c is None)
            if len(keep) != nrows:
                rowid = keep
                clients = [clients[i] for i in keep]
                eps = [eps[i] for i in keep]
                targets = [targets[i] for i in keep]
                statuses = [statuses[i] for i in keep]
                referers = [referers[i] for i in keep]
                nrows = len(clients)
                if not nrows:
                    return

        # Paths (target without query), one bytes object per distinct path.
        path_of = self._path_of
        utargets = set(targets)
        new = utargets.difference(path_of)
        if new:
            if len(path_of) > 500000:
                path_of.clear()
                new = utargets
            same = {}  # one bytes object per distinct path, shared by the keys that hold it
            for t in new:
                pth = t.partition(b"?")[0]
                path_of[t] = same.setdefault(pth, pth)
        paths = list(map(path_of.__getitem__, targets))

        per_client = Counter(clients)
        self.hits.update(clients)  # counting the list runs in C; updating from a mapping would not
        page_hits = Counter(paths)
        self.pages.update(page_hits)
        self.refs.update(referers)  # "-" (no referer) included: one pass; result() leaves it out

        ordered, hi, days, dlo = self._account_times(clients, eps, per_client)
        if days is None:
            self.day_hits[dlo] += nrows
            if cfg.day_pages:
                self.day_pages[dlo].update(page_hits)
        else:
            self.day_hits.update(days)
            if cfg.day_pages:
                for (day, path), n in Counter(zip(days, paths)).items():
                    self.day_pages[day][path] += n

        # Detectors, from the distinct targets of this block.
        klass = self._target_class
        if len(klass) > 500000:
            klass.clear()
        for t in utargets.difference(klass):
            klass[t] = self._classify(t)
        flagged = {t for t in utargets if klass[t] != (False, False, False)}
        if flagged:
            # Flagged targets are a small share of the rows: those rows are looked at one by one.
            script_statuses = cfg.script_statuses
            found = ([], [], [])  # row numbers per detector: tripwire, missing_script, open_redirect
            for i in compress(range(nrows), map(flagged.__contains__, targets)):
                tripwire, script, redirect = klass[targets[i]]
                if tripwire:
                    found[0].append(i)
                if script and statuses[i] in script_statuses:
                    found[1].append(i)
                if redirect:
                    found[2].append(i)
            for detector, rows in zip(("tripwire", "missing_script", "open_redirect"), found):
                if rows:
                    self.offend_rows(list(map(clients.__getitem__, rows)), detector, days_at(rows, days, dlo))
            if lines is not None and cfg.sample_lines and (found[0] or found[1] or found[2]):
                rows = sorted(set(found[0]).union(found[1], found[2]))
                self.sample_rows(
                    list(map(clients.__getitem__, rows)), lambda k: lines(rows[k] if rowid is None else rowid[rows[k]])
                )
        if "flood" in cfg.detectors and cfg.flood_windows:
            self._flood(clients, paths, eps, hi, per_client, rowid=rowid, ordered=ordered)

        # Per-client detail for the tracked clients (bounded memory, see __init__); none without detail.
        tracked = self._track(per_client) if cfg.detail else set()
        mask = None  # the rows of tracked clients (None: every row)
        if len(tracked) == len(per_client):
            self.cps.update(zip(clients, paths, statuses))
            self.cref.update(zip(clients, referers))
        elif tracked:
            mask = list(map(tracked.__contains__, clients))
            self.cps.update(zip(compress(clients, mask), compress(paths, mask), compress(statuses, mask)))
            self.cref.update(zip(compress(clients, mask), compress(referers, mask)))
        if cfg.day_pages and tracked:
            self._count_page_clients(clients, paths, days, dlo, mask)
        self._block_lines = None  # the block's buffer and rows can go

    def _account_times(self, clients, eps, per_client):
        """First/last seen, the time range and the clients per day of a block of rows (``clients`` and
        ``eps`` columns, ``per_client``: a mapping whose keys are the block's distinct clients). Returns
        ``(ordered, newest, days, day)``: whether the rows are in time order, the newest epoch, and the
        day of each row (``days``), or None when they are all of ``day``."""
        nrows = len(clients)
        # First/last seen and flood rely on rows in time order, as they nearly always are.
        ordered = all(map(le, eps, islice(eps, 1, None)))
        lo, hi = (eps[0], eps[-1]) if ordered else (min(eps), max(eps))

        # Days: most blocks hold one day, then the distinct clients of the block are that day's.
        dlo = local_day(lo)
        if dlo == local_day(hi):
            self._count_day(dlo, per_client)
            days = None
        else:
            days = self._days_of(eps)
            by_day = defaultdict(set)
            for day, client in set(zip(days, clients)):
                by_day[day].add(client)
            for day, seen in by_day.items():
                self._count_day(day, seen)

        # First/last seen: with the rows in time order, a client's first row holds its first time and its
        # last row its last. Rows are in line order except the ones the full regex matched (appended), and
        # Apache writes a slow request's line after later ones, so out-of-order rows are sorted first
        # (a stable sort, cheap on rows that are nearly in order).
        if ordered:
            oc, oe = clients, eps
        else:
            order = sorted(range(nrows), key=eps.__getitem__)
            oc, oe = list(map(clients.__getitem__, order)), list(map(eps.__getitem__, order))
            del order
        if self.tmax is not None and lo >= self.tmax:
            # The usual case: the block is newer than all before, so only new clients get a first time
            # and every last time is this block's.
            known = self.first
            new = per_client.keys() - known.keys()
            if len(new) < 64:
                known.update([(c, oe[oc.index(c)]) for c in new])
            else:
                first = dict(zip(reversed(oc), reversed(oe)))
                known.update([(c, first[c]) for c in new])
            self.last.update(zip(oc, oe))
        else:
            first = dict(zip(reversed(oc), reversed(oe)))
            last = dict(zip(oc, oe))
            known = self.first
            first.update([(c, known[c]) for c in first.keys() & known.keys() if known[c] < first[c]])
            known.update(first)
            known = self.last
            last.update([(c, known[c]) for c in last.keys() & known.keys() if known[c] > last[c]])
            known.update(last)
        del oc, oe
        if self.tmin is None or lo < self.tmin:
            self.tmin = lo
        if self.tmax is None or hi > self.tmax:
            self.tmax = hi
        return ordered, hi, days, dlo

    def add_events(self, clients, eps):
        """Error-log or fail2ban events of one block (columns): they extend the clients' time ranges and
        days and are not hits. Returns ``(days, day)`` as ``_account_times`` does."""
        if not clients:
            return None, None
        return self._account_times(clients, eps, dict.fromkeys(clients))[2:]

    def _count_page_clients(self, clients, paths, days, dlo, tracked_rows):
        """Clients per day and page for the drill-down: the tracked clients' hits on each day's leading
        pages (twice as many as the result shows, so a page that overtakes another is counted).
        ``tracked_rows``: True for the rows of tracked clients (None: every row)."""
        want = 2 * self.cfg.day_pages
        lead = {}
        for day in [dlo] if days is None else set(days):
            counter = self.day_pages[day]
            if len(counter) <= want:
                lead[day] = counter.keys()
            else:
                lead[day] = set(map(itemgetter(0), heapq.nlargest(want, counter.items(), key=itemgetter(1))))
        if days is None:
            mask = map(lead[dlo].__contains__, paths)
            daycol = repeat(dlo)
        else:
            pairs = set((day, path) for day, top in lead.items() for path in top)
            mask = map(pairs.__contains__, zip(days, paths))
            daycol = days
        mask = list(mask if tracked_rows is None else map(and_, mask, tracked_rows))
        self.dpc.update(zip(compress(clients, mask), compress(daycol, mask), compress(paths, mask)))

    def prune_tracked(self):
        """Drop the detail of the lightest tracked clients until at most track_max are left."""
        self._track({})

    def _track(self, per_client):
        """Update the tracked set with this block's clients; return those of them that are tracked."""
        tracked, hits, offcount = self.tracked, self.hits, self.offcount
        limit = self.cfg.track_max
        while True:
            floor = self.track_min
            cand = list(per_client.keys() - tracked)
            if cand:
                offs = map(offcount.get, cand, repeat(0))
                scores = map(add, map(hits.__getitem__, cand), map(mul, offs, repeat(OFFENSE_WEIGHT)))
                tracked.update(compress(cand, map(floor.__le__, scores)))
            if len(tracked) <= limit:
                break
            self.track_min *= 2
            floor = self.track_min
            keep = {c for c in tracked if hits[c] + OFFENSE_WEIGHT * offcount.get(c, 0) >= floor}
            self.tracked = tracked = keep
            self.cps = _keep_clients(self.cps, keep)
            self.cref = _keep_clients(self.cref, keep)
            self.dpc = _keep_clients(self.dpc, keep)
            self.samples = dict(kv for kv in self.samples.items() if self._score(kv[0]) >= floor)
            self.samples_full.intersection_update(self.samples)
        return tracked.intersection(per_client)

    def _days_of(self, eps):
        table = {}
        for e in set(eps):
            table[e] = local_day(e)
        return list(map(table.__getitem__, eps))

    def _flood(self, clients, paths, eps, newest, per_client, *, rowid=None, ordered=False):
        """Sliding-window flood detection.

        The context from earlier blocks is the rows (client, path, epoch columns) of the widest window
        ending at the newest line so far; only the (client, path) pairs with more than the smallest
        window's limit over context and block are looked at one by one.
        """
        cfg = self.cfg
        tc, tp, te = self.flood_tail
        nmin = cfg.flood_nmin
        # Only clients with more than nmin lines in this block and the context can flood a path.
        if tc:
            tail_count = Counter(tc)
            keys = list(per_client)
            totals = map(add, per_client.values(), map(tail_count.get, keys, repeat(0)))
            heavy = set(compress(keys, map(nmin.__lt__, totals)))
        else:
            heavy = set(compress(per_client.keys(), map(nmin.__lt__, per_client.values())))
        cand = ()
        if heavy:
            mask = list(map(heavy.__contains__, clients))
            pairs = Counter(zip(compress(clients, mask), compress(paths, mask)))
            if tc:
                tmask = list(map(heavy.__contains__, tc))
                old_pairs = Counter(zip(compress(tc, tmask), compress(tp, tmask)))
                cand = {p for p, n in pairs.items() if n + old_pairs.get(p, 0) > nmin}
            else:
                cand = {p for p, n in pairs.items() if n > nmin}
        if cand:
            rows_of = defaultdict(list)
            cand_clients = {c for c, _p in cand}
            for i in compress(range(len(eps)), map(cand_clients.__contains__, clients)):
                pair = (clients[i], paths[i])
                if pair in cand:
                    rows_of[pair].append(i)
            old_of = self._flood_context(cand)
            lines = self._block_lines
            for p, idx in rows_of.items():
                old = old_of.get(p, [])
                new = sorted(map(eps.__getitem__, idx))
                seq = old + new if not old or old[-1] <= new[0] else sorted(old + new)
                offences = flood_offences(seq, cfg.flood_windows, len(old))
                if offences:
                    n_off = len(offences)
                    self.offend_at(p[0], "flood", offences)
                    if lines is not None and self.needs_sample(p[0]):
                        # The requests that overflow a window are the later ones of the pair.
                        for i in idx[-min(n_off, cfg.sample_lines) :]:
                            self.sample(p[0], lines(i if rowid is None else rowid[i]))
        if self.flood_head is not None and self.flood_log == self.flood_head_log:
            # A worker that starts mid-log remembers its first window; merge() completes it with the
            # context of the process that read the lines before (when they are of the same log).
            if self.flood_head_until is None:
                self.flood_head_until = min(eps) + cfg.flood_wmax
            until = self.flood_head_until
            for i in compress(range(len(eps)), map(until.__gt__, eps)):
                self.flood_head.setdefault((clients[i], paths[i]), []).append(eps[i])
        # Keep the rows of the last widest window as context for the next block.
        cut = newest - cfg.flood_wmax
        tc, tp, te = _rows_after(cut, (tc, tp, te))
        if ordered:  # lines in time order: the window is the end of the block
            k = bisect.bisect_right(eps, cut)
            nc, np_, ne = clients[k:], paths[k:], eps[k:]
        else:
            nc, np_, ne = _rows_after(cut, (clients, paths, eps))
        self.flood_tail = (tc + nc, tp + np_, te + ne)

    def _flood_context(self, pairs):
        """(client, path) -> sorted epochs of the context rows, for ``pairs``."""
        ctx = defaultdict(list)
        tc, tp, te = self.flood_tail
        for c, p, t in compress(zip(tc, tp, te), map(pairs.__contains__, zip(tc, tp))):
            ctx[(c, p)].append(t)
        for times in ctx.values():
            times.sort()
        return ctx

    # -- merging (parallel workers) ----------------------------------------------------------

    def drop_caches(self):
        """Forget the parsing caches (rebuilt on demand): before a worker sends its result, and before
        the parent receives it, so the two copies of the statistics fit in memory."""
        self.times = TimeParser()
        self._block_lines = None
        self.addresses = _Memo(_client_name)
        self.error_times = {}
        self.error_minutes = {}
        self.error_verdicts = {}
        self.fail2ban_cache = {}
        self._path_of = {}
        self._target_class = {}

    # The large per-client containers a worker sends one at a time (see split_parts).
    PARTS = ("client_days", "hits", "first", "last", "off", "offcount", "cps", "cref", "dpc")

    def split_parts(self):
        """Take the large containers out of this Stats: ``[(name, container)]`` in PARTS order. The rest is
        small; ``merge`` of it afterwards completes the merge of parts given to ``merge_part``."""
        parts = []
        for name in self.PARTS:
            value = getattr(self, name)
            parts.append((name, value))
            setattr(self, name, None if value is None else type(value)())
        return parts

    def merge_part(self, name, theirs, other):
        """Merge one container of a later worker's Stats (see split_parts); ``other`` is the rest of it."""
        if not theirs:
            return
        if name == "client_days":
            # The other's bits stand for days in its own order: translated into this Stats' bits, once per
            # distinct combination of days. A client both saw on a day is counted once.
            mine_of = dict((bit, self._day_bit(day)) for day, bit in other.day_bits.items())
            table = {}
            for bits in set(theirs.values()):
                table[bits] = sum(mine for bit, mine in mine_of.items() if bits & bit)
            mine, keys = self.client_days, list(theirs)
            days = map(table.__getitem__, map(theirs.__getitem__, keys))
            mine.update(zip(keys, map(or_, map(mine.get, keys, repeat(0)), days)))
        elif name == "first":
            mine = self.first
            for c, e in theirs.items():
                if c not in mine or e < mine[c]:
                    mine[c] = e
        elif name == "last":
            mine = self.last
            for c, e in theirs.items():
                if mine.get(c, -1) < e:
                    mine[c] = e
        else:
            self._merge_counter(name, theirs)

    def _merge_counter(self, name, theirs):
        """Add the Counter ``theirs`` to this Stats' Counter ``name`` (the smaller one into the larger)."""
        mine = getattr(self, name)
        if len(theirs) > len(mine):
            theirs.update(mine)
            setattr(self, name, theirs)
        else:
            mine.update(theirs)

    def merge(self, other):
        """Add another Stats (from a worker that read a later part of the input)."""
        for name in self.PARTS:
            self.merge_part(name, getattr(other, name), other)
        for name in ("pages", "refs", "day_hits"):
            self._merge_counter(name, getattr(other, name))
        self.tracked |= other.tracked
        for name in ("lines", "bytes", "malformed", "matched", "bad_clients", "continued"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.tmin is not None and (self.tmin is None or other.tmin < self.tmin):
            self.tmin = other.tmin
        if other.tmax is not None and (self.tmax is None or other.tmax > self.tmax):
            self.tmax = other.tmax
        for jail, cnt in other.fail2ban.items():
            self.fail2ban[jail].update(cnt)
        self.ban_keys |= other.ban_keys
        for day, counter in other.day_pages.items():
            self.day_pages[day].update(counter)
        k = self.cfg.sample_lines
        for c, got in other.samples.items():
            mine = self.samples.setdefault(c, [])
            mine.extend(got[: max(0, k - len(mine))])
            if len(mine) >= k:
                self.samples_full.add(c)
        if other.flood_head and other.flood_head_log == self.flood_log:
            windows = self.cfg.flood_windows
            ctx = self._flood_context(other.flood_head)
            for pair, head in other.flood_head.items():
                old = ctx.get(pair)
                if not old:
                    continue
                head.sort()
                # The worker charged the offences its own rows show; the context adds some of the others.
                extra = Counter(flood_offences(sorted(old + head), windows, len(old)))
                extra.subtract(flood_offences(head, windows))
                extra = list(extra.elements())
                if extra:
                    self.offend_at(pair[0], "flood", extra)
        # The context for a worker merged next: the rows of the widest window ending at the newest row,
        # which reaches back into this Stats' rows when the other worker read less than a window's time
        # of the same log.
        oc, op, oe = other.flood_tail
        if other.flood_log is None and not oe:
            pass  # the other read no access-log lines (error logs only)
        elif other.flood_log != self.flood_log:
            self.flood_log, self.flood_tail = other.flood_log, other.flood_tail
        elif oe:
            tc, tp, te = _rows_after(max(oe) - self.cfg.flood_wmax, self.flood_tail)
            self.flood_tail = (tc + oc, tp + op, te + oe)

    # -- output ------------------------------------------------------------------------------

    def result(self, top=100, prefixes=(24, 16), prefixes6=(64, 48), top_pages=10, top_networks=10000):
        """Build the module's output dictionaries (interface for blocklist_plan and report)."""
        hits, first, last = self.hits, self.first, self.last
        off_total = self.offcount
        clients_all = set(hits)
        clients_all.update(off_total)

        def rank(c):
            return (-off_total.get(c, 0), -hits.get(c, 0), c)

        chosen = heapq.nsmallest(top, clients_all, key=rank) if top else sorted(clients_all, key=rank)
        chosen_set = set(chosen)
        # Offences per detector for the chosen clients only (a Counter per client for all of them would
        # be the largest allocation of the run).
        offenses = defaultdict(Counter)
        day_off = Counter()
        for (c, det, day), n in self.off.items():
            if c in chosen_set:
                offenses[c][det] += n
            if day is not None:
                day_off[day] += n
        statuses = defaultdict(Counter)
        cpages = defaultdict(Counter)
        status_text = {}
        for (c, path, status), n in [kv for kv in self.cps.items() if kv[0][0] in chosen_set]:
            text = status_text.get(status)
            if text is None:
                text = status_text[status] = _text(status)
            statuses[c][text] += n
            cpages[c][path] += n
        crefs = defaultdict(Counter)
        for (c, ref), n in [kv for kv in self.cref.items() if kv[0][0] in chosen_set and kv[0][1] != b"-"]:
            crefs[c][ref] += n

        clients = {}
        stamps = iso_texts([first.get(c) for c in chosen] + [last.get(c) for c in chosen])
        for c in chosen:
            entry = clients[c] = {
                "hits": hits.get(c, 0),
                "offenses": dict(offenses[c]) if c in offenses else {},
                "first_seen": stamps[first.get(c)],
                "last_seen": stamps[last.get(c)],
            }
            if self.cfg.detail:
                entry["statuses"] = dict(statuses[c])
                entry["pages"] = [{"page": _text(p), "hits": n} for p, n in _top(cpages[c], top_pages)]
                entry["referers"] = [{"referer": _text(r), "hits": n} for r, n in _top(crefs[c], top_pages)]
                entry["lines"] = list(self.samples.get(c, ()))

        def net_rank(kv):
            return (-kv[1][1], -kv[1][0], kv[0])

        networks = {}
        columns = {}  # version -> (addresses, their hits, their offences)
        for version in (4, 6):
            group = [c for c in clients_all if (":" in c) == (version == 6)]
            columns[version] = (
                group,
                list(map(hits.get, group, repeat(0))),
                list(map(off_total.get, group, repeat(0))),
            )
        for version, prefix in [(4, p) for p in prefixes] + [(6, p) for p in prefixes6]:
            group, hits_l, off_l = columns[version]
            nets = _network_table(_network_keys(group, prefix, version), hits_l, off_l)
            if top_networks and top_networks * 8 < len(nets):
                ordered = heapq.nsmallest(top_networks, nets.items(), key=net_rank)
            else:  # keeping most of them: a sort is faster than a heap
                ordered = sorted(nets.items(), key=net_rank)[: top_networks or None]
            networks[str(prefix)] = dict(
                (cidr, {"hits": e[0], "offenses": e[1], "hosts": e[2], "offending_hosts": e[3]}) for cidr, e in ordered
            )

        days = {}
        day_clients = self.clients_per_day()
        day_pages = self._day_pages(self.cfg.day_pages) if self.cfg.day_pages else None
        for day in sorted(set(self.day_hits) | set(day_off)):
            key = day_text(day)
            days[key] = {
                "hits": self.day_hits.get(day, 0),
                "offenses": day_off.get(day, 0),
                "clients": day_clients.get(day, 0),
            }
            if day_pages is not None:
                days[key]["pages"] = day_pages.get(day, {})
        return {
            "clients": clients,
            "clients_total": len(clients_all),
            "networks": networks,
            "pages": [{"page": _text(p), "hits": n} for p, n in _top(self.pages, top)],
            "days": days,
            "referers": [{"referer": _text(r), "hits": n} for r, n in _top(self.refs, top, skip=b"-")],
            "fail2ban": dict((jail, dict(cnt)) for jail, cnt in sorted(self.fail2ban.items())),
        }

    def _day_pages(self, top_n):
        """day -> {page: {hits, clients: {address: hits}}}: the day's ``top_n`` pages, each with its
        ``top_n`` heaviest clients (from the tracked clients' detail)."""
        chosen = {}
        for day, counter in self.day_pages.items():
            for path, n in _top(counter, top_n):
                chosen[(day, path)] = n
        by_page = defaultdict(Counter)
        for (c, day, path), n in self.dpc.items():
            if (day, path) in chosen:
                by_page[(day, path)][c] += n
        out = defaultdict(dict)
        for (day, path), n in chosen.items():
            page = out[day][_text(path)] = {"hits": n}
            if self.cfg.detail:
                page["clients"] = dict(_top(by_page.get((day, path), {}), top_n))
        return out


def days_at(rows, days, day):
    """The days of ``rows`` (row numbers): from the ``days`` column, or ``day`` when that is None."""
    return repeat(day) if days is None else list(map(days.__getitem__, rows))


def _rows_after(cut, cols):
    """The rows of the (clients, paths, epochs) columns ``cols`` whose epoch is after ``cut``, as three lists."""
    keep = list(map(cut.__lt__, cols[2]))
    return tuple(list(compress(col, keep)) for col in cols)


def _keep_clients(counter, keep):
    """A copy of ``counter`` (keys are tuples, the client first) with the clients of ``keep`` only."""
    return Counter(dict(compress(counter.items(), map(keep.__contains__, map(itemgetter(0), counter)))))


def _network_keys(addresses, prefix, version):
    """CIDR texts (an iterator) of the ``prefix``-bit network of each address (all of IP version ``version``)."""
    if version == 4 and prefix in (8, 16, 24):
        heads = iter(addresses)
        if prefix == 8:
            heads = map(itemgetter(0), map(methodcaller("partition", "."), heads))
        else:
            for _i in range(4 - prefix // 8):
                heads = map(itemgetter(0), map(methodcaller("rpartition", "."), heads))
        return map(add, heads, repeat(".0" * (4 - prefix // 8) + "/%d" % prefix))
    return (network_of(a, prefix, version) for a in addresses)


def _network_table(keys, hits, offences):
    """cidr -> [hits, offences, hosts, offending hosts] from per-address columns (one pass, one dict)."""
    nets = {}
    for key, n_hits, n_off in zip(keys, hits, offences):
        entry = nets.get(key)
        if entry is None:
            nets[key] = [n_hits, n_off, 1, 1 if n_off else 0]
        else:
            entry[0] += n_hits
            entry[1] += n_off
            entry[2] += 1
            if n_off:
                entry[3] += 1
    return nets


def _column(rows, index, name):
    """One field of every ``findall`` row (``-`` when the format lacks it)."""
    i = index.get(name)
    if i is None:
        return [b"-"] * len(rows)
    return list(map(itemgetter(i - 1), rows))


def _text(raw):
    return raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw


def _top(counter, n, skip=None):
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if skip is not None:
        items = [kv for kv in items if kv[0] != skip]
    return items[:n] if n else items


def _valid_utf8_lines(buf):
    """Drop lines that are not valid UTF-8 from ``buf``; returns (clean buffer, dropped count)."""
    good, bad = [], 0
    for line in buf.split(b"\n")[:-1]:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
            continue
        good.append(line)
    return b"\n".join(good) + b"\n" if good else b"", bad


def _isascii(buf):
    return buf.isascii()


if not hasattr(b"", "isascii"):  # Python 3.6

    def _isascii(buf):  # noqa: F811 - the 3.6 stand-in
        return False


def add_access_block(stats, buf, fmt):
    """Account one block of complete access-log lines (bytes ending with a newline)."""
    n = buf.count(b"\n")
    stats.lines += n
    stats.bytes += len(buf)
    try:
        if not _isascii(buf):  # an ASCII block is valid UTF-8; the check is much cheaper than decoding
            buf.decode("utf-8")
    except UnicodeDecodeError:
        buf, bad = _valid_utf8_lines(buf)
        stats.malformed += bad
        n -= bad
    if b"\0" in buf:
        kept = [line for line in buf.split(b"\n")[:-1] if b"\0" not in line]
        stats.malformed += n - len(kept)
        n = len(kept)
        buf = b"\n".join(kept) + b"\n" if kept else b""
    if not n:
        return
    cols = fmt.splitter.columns(buf, n) if fmt.splitter is not None else None
    if cols is not None:
        # a field the format lacks is "-" on every line, as the regex path's _column gives it
        blank = None if {"target", "status", "referer"} <= cols.keys() else [b"-"] * n
        if "time" in cols:
            eps = stats.times.epochs(cols["time"], cols["zone"])
        else:
            eps = fmt.times.token_epochs(cols["ttext"], fmt.splitter.time_affix)
        stats.add_access_columns(
            cols["client"],
            eps,
            cols.get("target", blank),
            cols.get("status", blank),
            referers=cols.get("referer", blank),
            lines=fmt.splitter.line if stats.cfg.sample_lines else None,
        )
        fmt.splitter.release()
        return
    findall = fmt.fast.findall
    rows = findall(buf)
    extra = {}  # row number -> raw line, of the rows the full regex read
    if len(rows) < n:
        # Lines with a backslash (Apache's escapes, \" inside a quoted field) need the full regex. Their rows
        # go between the fast rows of the lines before and after them: rows stay in line order.
        fast, full = fmt.fast.match, fmt.full.match
        found = []  # (start, end, row) of the lines only the full regex reads
        pos = buf.find(b"\\")
        while pos >= 0:
            start = buf.rfind(b"\n", 0, pos) + 1
            end = buf.find(b"\n", pos)
            line = buf[start:end]
            if fast(line) is None:
                m = full(line)
                if m is not None:
                    found.append((start, end, tuple(g or b"" for g in m.groups())))
            pos = buf.find(b"\\", end)
        if found:
            rows, pos = [], 0
            for start, end, row in found:
                rows.extend(findall(buf, pos, start))
                extra[len(rows)] = buf[start:end]
                rows.append(row)
                pos = end + 1
            rows.extend(findall(buf, pos))
    stats.malformed += n - len(rows)
    if not rows:
        return
    lines = _BlockLines(buf, rows, extra, fmt) if stats.cfg.sample_lines else None
    index = fmt.index
    if index.get("query") is not None:
        it, iq = index["target"] - 1, index["query"] - 1
        targets = [r[it] + r[iq] for r in rows]
    else:
        targets = _column(rows, index, "target")
    stats.add_access_columns(
        _column(rows, index, "client"),
        stats.times.texts(_column(rows, index, "time")) if fmt.times is None else fmt.times.epochs(rows),
        targets,
        _column(rows, index, "status"),
        referers=_column(rows, index, "referer"),
        lines=lines,
    )


class _BlockLines:
    """The raw line of a row of one block (``rows`` in line order), found only when asked for (samples are rare).

    ``extra`` holds the lines of the rows the full regex read. The others come from the fast regex, which
    skips the malformed lines: row ``i`` is one of the lines ``i`` to ``i + skipped``, the one whose fields are
    the row's. When more than one of them holds those fields (the same request twice), or many lines were
    skipped, the lines of the rows are listed once for the block, in order.
    """

    def __init__(self, buf, rows, extra, fmt):
        self.buf, self.rows, self.extra, self.fmt = buf, rows, extra, fmt
        self.lines = None
        self.order = None  # the line of each row, once it is needed

    def __call__(self, i):
        line = self.extra.get(i)
        if line is not None:
            return line
        if self.lines is None:
            self.lines = self.buf.split(b"\n")[:-1]
        lines = self.lines
        skipped = len(lines) - len(self.rows)
        if not skipped:
            return lines[i]
        if self.order is None and skipped <= 32:
            row = self.rows[i]
            fields = row if isinstance(row, tuple) else (row,)
            found = [j for j in range(i, i + skipped + 1) if self._holds(lines[j], fields)]
            found = [j for j in found if self._matches(lines[j], fields)]
            if len(found) == 1:
                return lines[found[0]]
        if self.order is None:
            fast, full = self.fmt.fast.match, self.fmt.full.match
            self.order = [j for j, text in enumerate(lines) if fast(text) is not None or full(text) is not None]
        return lines[self.order[i]] if len(self.order) == len(self.rows) else None

    @staticmethod
    def _holds(line, fields):
        """Cheap test: the line holds every captured field."""
        return all(map(line.__contains__, fields))

    def _matches(self, line, fields):
        m = self.fmt.fast.match(line)
        return m is not None and tuple(g or b"" for g in m.groups()) == fields
