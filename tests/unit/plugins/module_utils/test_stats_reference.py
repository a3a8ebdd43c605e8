# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""offender_stats against a reference: random access and error logs, read by the module in blocks of any
size and by one to three processes, give what a plain line-by-line count of the same lines gives.

Access logs are written in the host's local time and offset (as Apache writes them), in the ``combined`` and
``vhost_combined`` layouts and a custom one with an ISO time. The reference is written for clarity, not speed:
every line is looked at on its own, a flood is counted over all requests of a client and path sorted by time,
days are the host-local dates of ``time.localtime``; an error-log time (local, without offset) in the hour
that repeats when the clocks go back stands for the earlier of its two readings. The logs are drawn around the
days the clocks change, with rotated parts compressed in the four ways logrotate may compress them,
overlapping vhosts, an error log in Apache 2.4's and 2.2's layouts, IPv4-mapped clients and a
``since``/``until`` window.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import time
from collections import Counter, defaultdict
from datetime import datetime

import compressors
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.fleetguard.webshield.plugins.module_utils import _logsource, _stats, _stats_collect
from ansible_collections.fleetguard.webshield.plugins.module_utils._stats_collect import collect

CLIENTS = ["192.0.2.%d" % i for i in range(1, 6)] + ["198.51.100.7", "2001:db8::1", "2001:db8::2", "::ffff:192.0.2.1"]
# path -> (tripwire, script path, open redirect)
PATHS = {
    "/": (False, False, False),
    "/a.html": (False, False, False),
    "/wp-login.php": (True, True, False),
    "/cgi-bin/x.cgi": (False, True, False),
    "/go?u=http://evil.example/": (False, False, True),
    "/go?u=http%3A%2F%2Fevil.example%2F": (False, False, True),
    "/go?u=http://www.example.com/": (False, False, False),
    "/.env": (True, False, False),
}
# error-log message -> detector
MESSAGES = [
    ("AH01264: script not found or unable to stat: /usr/lib/cgi-bin/x.cgi", "missing_script"),
    ("AH01630: client denied by server configuration: /srv/EVILMARK", "tripwire"),
    ("AH00128: File does not exist: /var/www/x", None),
]
WINDOWS = [(60, 3), (10, 2)]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
# An hour before the clocks change: Berlin (summer time, 2021-03-28 01:00 UTC; winter time, 2021-10-31 01:00 UTC),
# New York (2021-03-14 07:00 UTC), Lord Howe (back half an hour, 2021-04-03 15:00 UTC); 3 seconds to midnight UTC
STARTS = [1616889600, 1635638400, 1615701600, 1617458400, 1612396797]

STEPS = st.sampled_from([0, 0, 1, 1, 2, 5, 30, 3000, 20000])
access_row = st.tuples(
    st.sampled_from(CLIENTS),
    STEPS,
    st.sampled_from(sorted(PATHS)),
    st.sampled_from([200, 302, 404]),
    st.sampled_from(["-", "http://r1.example/", "http://r2.example/x"]),
    st.integers(0, 40),  # how late Apache writes the line (a slow request): seconds before the line's place
    st.sampled_from([1, 1, 1, 6]),  # the request several times in a row, a second apart (a flood)
)
error_row = st.tuples(
    st.sampled_from(CLIENTS),
    STEPS,
    st.integers(0, len(MESSAGES) - 1),
    st.booleans(),  # Apache 2.4 layout or 2.2
)


def _norm(client):
    return client[7:] if client.startswith("::ffff:") else client


def _day(epoch):
    return time.strftime("%Y-%m-%d", time.localtime(epoch))


def _access_rows(rows, start, late_lines):
    """(client, epoch, path, status, referer) in the order Apache writes them."""
    out, t = [], start
    for client, step, path, status, referer, late, repeat in rows:
        t += step
        for k in range(repeat):
            out.append((client, t + k - (late if late_lines else 0), path, status, referer))
        t += repeat - 1
    return out


# access_format -> how a line of it is written (the host's local time and offset, as Apache writes it)
LAYOUTS = {
    "combined": '%(client)s - - [%(clf)s] "GET %(path)s HTTP/1.1" %(status)d 12 "%(referer)s" "UA x"\n',
    "vhost_combined": 'www.example.com:443 %(client)s - - [%(clf)s] "GET %(path)s HTTP/1.1" %(status)d 12'
    ' "%(referer)s" "UA x"\n',
    '%a %l %u [%{%Y-%m-%dT%H:%M:%S%z}t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D': "%(client)s - - [%(iso)s]"
    ' "GET %(path)s HTTP/1.1" %(status)d 12 "%(referer)s" "UA x" 1234\n',
}


def _access_line(row, layout="combined"):
    client, epoch, path, status, referer = row
    local = time.localtime(epoch)
    fields = dict(client=client, path=path, status=status, referer=referer)
    fields["clf"] = time.strftime("%d/%b/%Y:%H:%M:%S %z", local)
    fields["iso"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", local)
    return LAYOUTS[layout] % fields


def _error_line(row):
    client, epoch, message, new_style = row
    if new_style:  # Apache 2.4: address:port, also for IPv6
        stamp = time.strftime("%a %b %d %H:%M:%S.123456 %Y", time.localtime(epoch))
        return "[%s] [cgid:error] [pid 5:tid 6] [client %s:4321] %s\n" % (stamp, client, MESSAGES[message][0])
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(epoch))
    return "[%s] [error] [client %s] %s\n" % (stamp, _norm(client), MESSAGES[message][0].partition(": ")[2])


def _as_read(epoch):
    """The second an error-log line written at ``epoch`` stands for: its local time has no offset, so in the hour
    that repeats when the clocks go back it is the earlier of the two readings (``fold=0``, as documented)."""
    return int(datetime.fromtimestamp(epoch).replace(fold=0).timestamp())


def _flood_times(times):
    """The times of the requests that overflow a window, over all requests of one client and path."""
    times = sorted(times)
    return [t for i, t in enumerate(times) if any(sum(1 for u in times[: i + 1] if u > t - w) > n for w, n in WINDOWS)]


def reference(logs, errors, since, until, flood):
    """What the module must return, counted line by line. ``logs``: access-log name -> rows."""

    def inside(epoch):
        return (since is None or epoch >= since) and (until is None or epoch < until)

    hits, first, last = Counter(), {}, {}
    statuses, pages, referers = defaultdict(Counter), defaultdict(Counter), defaultdict(Counter)
    offences, day_clients, day_hits, day_offences = defaultdict(Counter), defaultdict(set), Counter(), Counter()
    all_pages, all_referers = Counter(), Counter()

    def seen(client, epoch):
        first[client] = min(first.get(client, epoch), epoch)
        last[client] = max(last.get(client, epoch), epoch)
        day_clients[_day(epoch)].add(client)

    def offend(client, detector, epoch):
        offences[client][detector] += 1
        day_offences[_day(epoch)] += 1

    for rows in logs.values():
        requests = defaultdict(list)
        for client, epoch, target, status, referer in rows:
            if not inside(epoch):
                continue
            client, path = _norm(client), target.partition("?")[0]
            seen(client, epoch)
            hits[client] += 1
            day_hits[_day(epoch)] += 1
            statuses[client][str(status)] += 1
            pages[client][path] += 1
            all_pages[path] += 1
            if referer != "-":
                referers[client][referer] += 1
                all_referers[referer] += 1
            tripwire, script, redirect = PATHS[target]
            for detector, flag in (("tripwire", tripwire), ("missing_script", script and status == 404)):
                if flag:
                    offend(client, detector, epoch)
            if redirect:
                offend(client, "open_redirect", epoch)
            requests[(client, path)].append(epoch)
        for (client, _path), times in requests.items():
            for epoch in _flood_times(times) if flood else ():
                offend(client, "flood", epoch)
    for client, epoch, message, _new_style in errors:
        epoch = _as_read(epoch)  # as the local time text reads back
        if not inside(epoch):
            continue
        client = _norm(client)
        seen(client, epoch)
        detector = MESSAGES[message][1]
        if detector:
            offend(client, detector, epoch)
    listed = set(hits) | set(c for c, n in offences.items() if n)
    clients = {}
    for c in listed:
        clients[c] = {
            "hits": hits[c],
            "offenses": dict(offences[c]),
            "first_seen": _stats.iso(first[c]),
            "last_seen": _stats.iso(last[c]),
            "statuses": dict(statuses[c]),
            "pages": dict(pages[c]),
            "referers": dict(referers[c]),
        }
    networks = {"24": {}, "64": {}}
    for c in listed:
        prefix = "24" if ":" not in c else "64"
        cidr = str(ipaddress.ip_network("%s/%s" % (c, prefix), strict=False))
        entry = networks[prefix].setdefault(cidr, {"hits": 0, "offenses": 0, "hosts": 0, "offending_hosts": 0})
        n = sum(offences[c].values())
        entry["hits"] += hits[c]
        entry["offenses"] += n
        entry["hosts"] += 1
        entry["offending_hosts"] += 1 if n else 0
    days = dict(
        (d, {"hits": day_hits[d], "offenses": day_offences[d], "clients": len(day_clients[d])})
        for d in set(day_hits) | set(d for d, n in day_offences.items() if n)
    )
    return {
        "clients": clients,
        "networks": networks,
        "days": days,
        "pages": dict(all_pages),
        "referers": dict(all_referers),
    }


def observed(result):
    """The parts of the module's result the reference gives, in the reference's shape."""
    clients = {}
    for c, info in result["clients"].items():
        clients[c] = {
            "hits": info["hits"],
            "offenses": info["offenses"],
            "first_seen": info["first_seen"],
            "last_seen": info["last_seen"],
            "statuses": info.get("statuses", {}),
            "pages": dict((p["page"], p["hits"]) for p in info.get("pages", [])),
            "referers": dict((r["referer"], r["hits"]) for r in info.get("referers", [])),
        }
    assert result["clients_total"] == len(clients)
    return {
        "clients": clients,
        "networks": result["networks"],
        "days": result["days"],
        "pages": dict((p["page"], p["hits"]) for p in result["pages"]),
        "referers": dict((r["referer"], r["hits"]) for r in result["referers"]),
    }


def _write(path, rows, line):
    data = "".join(map(line, rows)).encode()
    if path.endswith(tuple(compressors.NAME)):
        compressors.write(path, data)
    else:
        with open(path, "wb") as fobj:
            fobj.write(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(STARTS),
    logs=st.lists(
        st.tuples(
            st.lists(access_row, min_size=1, max_size=120), st.integers(0, 300), st.lists(st.floats(0, 1), max_size=4)
        ),
        min_size=1,
        max_size=3,
    ),
    errors=st.lists(st.tuples(st.lists(error_row, max_size=60), st.integers(0, 300)), max_size=2),
    late_lines=st.booleans(),
    layout=st.sampled_from(sorted(LAYOUTS)),
    window=st.tuples(st.none() | st.integers(0, 40000), st.none() | st.integers(0, 80000)),
    block=st.sampled_from([256, 1000, 4096, 1 << 20]),
    workers=st.sampled_from([1, 2, 3]),
)
@example(  # a flood over midnight, read by one process in one block, and its lines split between two
    zone="UTC",
    start=STARTS[-1],
    logs=[([("192.0.2.1", 0, "/", 200, "-", 0, 6)], 0, [])],
    errors=[],
    late_lines=False,
    layout="combined",
    window=(None, None),
    block=1 << 20,
    workers=1,
)
@example(
    zone="UTC",
    start=STARTS[-1],
    logs=[([("192.0.2.1", 0, "/", 200, "-", 0, 6), ("192.0.2.1", 0, "/", 200, "-", 0, 6)], 0, [])],
    errors=[],
    late_lines=False,
    layout="combined",
    window=(None, None),
    block=256,
    workers=2,
)
@example(  # an error-log time in Lord Howe's repeated half hour (01:50 local, first as +11:00, then as +10:30)
    zone="Australia/Lord_Howe",
    start=STARTS[3],
    logs=[([("192.0.2.5", 5, "/go?u=http://evil.example/", 302, "http://r2.example/x", 11, 1)], 6, [])],
    errors=[([("192.0.2.4", 2, 1, False), ("2001:db8::2", 3000, 0, True), ("192.0.2.1", 1800, 1, True)], 17)],
    late_lines=True,
    layout="combined",
    window=(None, None),
    block=256,
    workers=3,
)
@example(  # the same half hour, Apache 2.2's layout, an until just after the first reading of 01:50
    zone="Australia/Lord_Howe",
    start=STARTS[3],
    logs=[([("192.0.2.1", 0, "/", 200, "-", 0, 1)], 0, [])],
    errors=[([("192.0.2.1", 0, 0, False), ("192.0.2.1", 3000, 0, False), ("192.0.2.1", 3000, 0, False)], 0)],
    late_lines=False,
    layout="combined",
    window=(None, 3001),
    block=256,
    workers=3,
)
def test_the_module_counts_what_a_line_by_line_reference_counts(  # noqa: PLR0917
    tmp_path_factory, monkeypatch, zone, start, logs, errors, late_lines, layout, window, block, workers
):
    monkeypatch.setattr(_logsource.read_blocks, "__defaults__", (0, None, block))
    monkeypatch.setattr(_stats_collect, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_stats_collect, "usable_cpus", lambda: 8)
    old_zone = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        d = str(tmp_path_factory.mktemp("ref"))
        access, patterns = {}, []
        for k, (rows, offset, cuts) in enumerate(logs):
            rows = access[k] = _access_rows(rows, start + offset, late_lines)
            # rotated as logrotate leaves it: the oldest part is the highest number, from .2 on compressed (with
            # gzip, bzip2, xz or zstd, whichever compresscmd is: a different one for each part here)
            bounds = sorted(set([0, len(rows)] + [int(len(rows) * c) for c in cuts]))
            parts = [rows[a:b] for a, b in zip(bounds, bounds[1:])]
            for n, part in enumerate(reversed(parts)):
                ext = sorted(compressors.NAME)[(k + n + len(part)) % 4] if n >= 2 else ""
                name = os.path.join(d, "v%d.log" % k) + (".%d" % n if n else "") + ext
                _write(name, part, lambda row: _access_line(row, layout))
            patterns.append(os.path.join(d, "v%d.log*" % k))
        error_rows, error_paths = [], []
        for k, (rows, offset) in enumerate(errors):
            t, mine = start + offset, []
            for client, step, message, new_style in rows:
                t += step
                mine.append((client, t, message, new_style))
            error_paths.append(os.path.join(d, "error%d.log" % k))
            _write(error_paths[-1], mine, _error_line)
            error_rows += mine
        since, until = [None if w is None else start + w for w in window]
        # A late line changes which requests the window before it holds: flood is left out then (the module
        # counts a flood on the lines as they come, in time order, see _flood).
        detectors = [x for x in _stats.DETECTORS if x != "fail2ban" and not (late_lines and x == "flood")]
        result, _old, _state, _warnings = collect(
            dict(
                access_logs=patterns,
                access_format=layout,
                error_logs=error_paths,
                fail2ban_logs=[],
                fail2ban_db=None,
                detectors=detectors,
                script_patterns=[r"^/cgi-bin/", r"\.(?:cgi|pl|php)$"],
                script_statuses=[404],
                redirect_paths=[],
                redirect_allow_hosts=["www.example.com"],
                flood_windows=[{"seconds": w, "requests": n} for w, n in WINDOWS],
                tripwire_paths=["/wp-login.php", "/.env"],
                tripwire_markers=["EVILMARK"],
                fail2ban_ignore_jails=[],
                state_file=None,
                missing="warn",
                since_epoch=since,
                until_epoch=until,
                top=0,
                top_pages=50,
                top_networks=0,
                prefixes=[24],
                prefixes6=[64],
                workers=workers,
            )
        )
        expected = reference(access, error_rows, since, until, flood="flood" in detectors)
        assert observed(result) == expected
    finally:
        if old_zone is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_zone
        time.tzset()
