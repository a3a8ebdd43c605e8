# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: offender_stats
short_description: Per-host offender statistics from Apache access/error logs and fail2ban
version_added: 0.1.0
author: Fleetguard contributors (@fleetguard)
description:
  - Reads Apache access logs (any C(LogFormat)), Apache error logs (2.2, 2.4, CentOS 7 old-style
    C(ErrorLogFormat), mod_cgi and mod_cgid lines, C(stderr from) lines and lines a CGI writes on purpose,
    also over two lines), fail2ban's log and fail2ban's SQLite database, and returns per-client, per-network,
    per-page, per-day and referer statistics with the offences found by its detectors.
  - Read-only on the logs. Rotated files (C(access.log.1), C(access_log-20250101), and those compressed with
    gzip, bzip2, xz or zstd, C(.gz), C(.bz2), C(.xz), C(.zst)) are read oldest first. C(.zst) files are
    decompressed by the host's C(zstd) program (Python has no zstd reader before 3.14); without it they fail
    the run with the reason. Malformed, binary, non-UTF-8 and over-long lines are counted in
    RV(summary.malformed), never fatal.
  - The client address comes only from the field Apache itself writes (C(%h)/C(%a) in access logs,
    C([client ...]) or C([remote ...]) in error logs). Text in a URL, referer, user agent or a CGI's message
    never decides who is charged.
  - With O(state_file), a run reads only what was added since the previous run (the statistics then cover
    the new lines only); rename rotation, copytruncate and gzip after rotation lose no line and count none
    twice. The state file is written atomically and never in check mode.
  - Large inputs are read by up to O(workers) processes at once (the module and its children), each taking
    its own part of the bytes.
options:
  access_logs:
    description:
      - Access log paths or globs (for example C(/var/log/apache2/access.log*)).
    type: list
    elements: str
    default: []
  access_format:
    description:
      - The access logs' format. A preset (V(common), V(combined), V(combined_duration) = combined + C(%D),
        V(vhost_combined)) or an Apache C(LogFormat) string given verbatim.
      - Or a list of them, for servers whose access logs are not all in one format (for example CentOS's
        C(access_log) in V(combined) and C(ssl_access_log) in V(common)). Each file is then read with the
        first format of the list that reads the most of the lines this run reads of it (judged on up to
        64 KiB); RV(files) names the format used for each file.
      - The format needs a client field (C(%a), C(%h) or C(%{c}a)); C(%a) wins when several are present.
      - "The format needs the time: C(%t), or C(%{format}t) directives, which may split it in parts as in
        C(%{%Y-%m-%d}tT%{%T}t.%{msec_frac}t%{%z}t): strftime conversions (C(%Y %m %d %H %M %S %b %z %T %F %c)
        and more; an unsupported one is named in the error), C(%{sec}t), C(%{msec}t), C(%{usec}t), with or
        without C(begin:)/C(end:). Without C(%z) the time is the host's local time, as Apache writes it."
      - Double quotes escaped as in C(httpd.conf) (C(\"%r\")) are read as plain quotes, so a C(LogFormat)
        line can be copied as it is. In a playbook, a format with C({%) must be kept from Jinja with C(!unsafe).
      - When more than half of a file's lines cannot be read with this format, the run warns, naming the file
        and showing its first such line.
    type: raw
    default: combined
  error_logs:
    description:
      - Apache error log paths or globs.
      - Apache 2.2 and 2.4 layouts (the built-in ones, CentOS 7's old-style C(ErrorLogFormat), the
        C(fleetguard.webshield.apache_logging) role's); the time as Apache writes it by default or in the compact
        ISO form (C([%{cu}t]), C([%{c}t])), in host-local time. The client is read from the C([client ...]) or
        C([remote ...]) field that follows Apache's own prefix.
    type: list
    elements: str
    default: []
  fail2ban_logs:
    description:
      - fail2ban log paths or globs (C(/var/log/fail2ban.log*)). C(Ban) lines are offences of the
        V(fail2ban) detector; C(Found), C(Restore Ban) and C(Unban) are counted per jail in RV(fail2ban).
    type: list
    elements: str
    default: []
  fail2ban_db:
    description:
      - fail2ban's SQLite database (schema of 0.9.x or 0.11+), opened read-only. Every row of its C(bans)
        table is a ban; a ban also seen in O(fail2ban_logs) (same jail, address and second) is counted once.
    type: path
  detectors:
    description:
      - The detectors to run.
      - V(missing_script) - the error-log missing-script lines, and access-log requests for script paths
        (O(script_patterns)) answered with a status in O(script_statuses).
      - V(open_redirect) - a query value that is an external absolute URL, plain or percent-encoded.
      - V(flood) - one client requesting one path more often than allowed by O(flood_windows).
      - V(tripwire) - requests for O(tripwire_paths), error-log lines holding O(tripwire_markers).
      - V(fail2ban) - bans from O(fail2ban_logs) and O(fail2ban_db).
    type: list
    elements: str
    choices: [missing_script, open_redirect, flood, tripwire, fail2ban]
    default: [missing_script, open_redirect, flood, tripwire, fail2ban]
  script_patterns:
    description:
      - Regular expressions (Python syntax) for script paths, searched in the request path (no query).
    type: list
    elements: str
    default: ['^/cgi-bin/', '\.(?:cgi|pl|php|py|sh|asp|aspx|jsp)$']
  script_statuses:
    description:
      - HTTP statuses that make a request for a script path an offence of V(missing_script).
    type: list
    elements: int
    default: [404]
  redirect_paths:
    description:
      - Regular expressions for the paths the V(open_redirect) detector looks at. Empty means every path.
    type: list
    elements: str
    default: []
  redirect_allow_hosts:
    description:
      - Host names that are not external (your own sites), compared case-insensitively.
    type: list
    elements: str
    default: []
  flood_windows:
    description:
      - Flood limits. A request is an offence when the window of O(flood_windows[].seconds) ending at it
        holds more than O(flood_windows[].requests) requests by that client for that path (query ignored).
      - The requests counted together are those of one access log and its rotated files. Two logs (of two
        vhosts, or HTTP and HTTPS) are counted each on its own, as if read alone.
    type: list
    elements: dict
    default: [{seconds: 300, requests: 60}]
    suboptions:
      seconds:
        description: Window length in seconds.
        type: int
        required: true
      requests:
        description: Requests allowed within the window.
        type: int
        required: true
  tripwire_paths:
    description:
      - Request paths (exact, without query, starting with C(/)) that no legitimate client asks for, such as
        C(/wp-login.php) on a site without WordPress or a retired CGI. Every request for one is an offence.
    type: list
    elements: str
    default: []
  tripwire_markers:
    description:
      - Texts that a web application writes into the error log on purpose; a line whose message holds one
        is an offence of V(tripwire) charged to the line's client. Not empty or blank.
    type: list
    elements: str
    default: []
  fail2ban_ignore_jails:
    description:
      - Jails whose bans are not offences (the recidive jail bans addresses that were already counted).
    type: list
    elements: str
    default: [recidive, webshield-recidive]
  since:
    description:
      - Only lines at or after this time. ISO 8601 (V(2025-01-31), V(2025-01-31T10:00:00+09:00)), epoch
        seconds, or relative to now (V(-24h), V(-7d), V(-30m)).
    type: str
  until:
    description:
      - Only lines before this time; same forms as O(since).
    type: str
  state_file:
    description:
      - Remember what was read, for incremental runs. Its directory must exist.
      - For the log files, the identity and offset of each; for O(fail2ban_db), the newest ban read (a later
        run counts only the bans added since); and the bans counted in the ten minutes before the run, so that a
        ban fail2ban wrote while the run read its log and database, found in one of them now and in the other
        next time, counts once.
    type: path
  missing:
    description:
      - What to do when a path or glob matches no file.
    type: str
    choices: [warn, fail]
    default: warn
  top:
    description:
      - How many clients, pages and referers to return (heaviest offenders first, then most hits).
        V(0) returns all.
    type: int
    default: 100
  top_pages:
    description:
      - How many pages and referers to return per client.
    type: int
    default: 10
  top_networks:
    description:
      - How many networks to return per prefix length (most offences first, then hits). V(0) returns all.
    type: int
    default: 10000
  top_day_pages:
    description:
      - How many pages to return per day in RV(days) (C(pages), most hits first), and how many clients to
        return per such page (most hits first), for the report's drill-down (day, page, client).
      - V(0) leaves the per-day pages out.
    type: int
    default: 20
  sample_lines:
    description:
      - How many raw log lines to keep per offending client as evidence (RV(clients) C(lines)), the first
        lines that made a detector charge the client (access, error or fail2ban log lines). Each line is
        decoded as UTF-8 with invalid bytes replaced and cut to 2000 characters.
      - V(0) keeps no lines.
    type: int
    default: 5
  client_detail:
    description:
      - Return each client's detail (C(statuses), C(pages), C(referers) and the evidence C(lines) in
        RV(clients)) and the C(clients) of each day's pages in RV(days).
      - V(false) returns, per client, only C(hits), C(offenses), C(first_seen) and C(last_seen), which is all
        M(fleetguard.webshield.blocklist_plan) reads. The result is much smaller and the run
        faster; the counts are the same. Use it with O(top=0), where the result lists every client.
    type: bool
    default: true
  prefixes:
    description:
      - IPv4 prefix lengths to aggregate networks for.
    type: list
    elements: int
    default: [24, 16]
  prefixes6:
    description:
      - IPv6 prefix lengths to aggregate networks for.
    type: list
    elements: int
    default: [64, 48]
  workers:
    description:
      - The most processes used to read large access and error logs (1 to 64). Fewer are used on a host with fewer
        usable CPUs, and no process gets less than 24 MiB of input (inputs under 48 MiB are read by one). A
        compressed file is read whole by one process and counts as the log it holds (a gzip file says how
        large; bzip2 and xz are estimated).
      - Each child holds the statistics of its part until the parent has merged them, so memory grows with
        the number of processes. The default leaves the other cores of a busy web server to Apache.
    type: int
    default: 2
notes:
  - Times are returned in ISO 8601 with the host's UTC offset. Error-log and fail2ban times carry no zone and
    are read as host-local time; a time in the hour that the clocks go back over happens twice and is read
    as the first of the two (the line alone cannot tell), so a line of the second pass is an hour early (half
    an hour in Lord Howe). Every run and process reads such a time alike. The same holds for access-log times
    without C(%z) and for O(since)/O(until) without an offset.
  - Use C(%a) rather than C(%h) with C(HostnameLookups On); lines whose client is not an IP address are
    counted as malformed.
  - To keep memory bounded, per-client C(pages), C(referers) and C(statuses) are kept for the heaviest
    clients only (offences first, then hits; at least 2000 clients or five times O(top)), chosen while the
    logs are read; a client that becomes heavy late has them counted from then on. The same holds for the
    clients of the per-day pages in RV(days) and the raw C(lines). Each process of a multi-process read
    chooses for its own part, so these can differ a little with O(workers). C(hits), C(offenses),
    C(first_seen), C(last_seen), networks, pages, referers and the hits and offences per day are exact.
seealso:
  - module: fleetguard.webshield.blocklist_plan
attributes:
  check_mode:
    support: full
    description: Statistics are computed; the state file is not written.
  diff_mode:
    support: none
    description: Nothing on the host changes except the state file.
"""

EXAMPLES = r"""
- name: Gather offender statistics of the last day
  fleetguard.webshield.offender_stats:
    access_logs: [/var/log/apache2/access.log*]
    error_logs: [/var/log/apache2/error.log*]
    fail2ban_db: /var/lib/fail2ban/fail2ban.sqlite3
    since: -24h
    tripwire_paths: [/wp-login.php, /.env, /cgi-bin/old.cgi]
    redirect_allow_hosts: [www.example.com]
  register: offender_stats

- name: Incremental run over a custom LogFormat
  fleetguard.webshield.offender_stats:
    access_logs: [/var/log/httpd/ssl_access_log*]
    access_format: '%a %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
    state_file: /var/lib/webshield/offender_stats.state
    flood_windows:
      - {seconds: 60, requests: 30}
      - {seconds: 3600, requests: 600}
"""

RETURN = r"""
summary:
  description: What was read.
  returned: always
  type: dict
  contains:
    files:
      description: Files read in this run (unchanged files skipped through O(state_file) not counted).
      type: int
    lines:
      description: Lines read (complete lines only; a last line without newline waits for the next run).
      type: int
    bytes:
      description: Bytes read (uncompressed).
      type: int
    malformed:
      description: Lines that could not be parsed (malformed, binary, non-UTF-8, over-long, bad client field).
      type: int
    matched:
      description: Offences found by the detectors.
      type: int
    seconds:
      description: Time taken.
      type: float
    processes:
      description: Processes that read the access and error logs (at most O(workers); see there).
      type: int
    first:
      description: Time of the oldest line counted (ISO 8601 with offset), or null.
      type: str
    last:
      description: Time of the newest line counted (ISO 8601 with offset), or null.
      type: str
  sample:
    files: 3
    lines: 1000000
    bytes: 182323254
    malformed: 12
    matched: 9774
    seconds: 2.31
    processes: 2
    first: "2021-02-03T10:00:00+00:00"
    last: "2021-02-04T09:08:53+00:00"
clients:
  description:
    - Per client address, heaviest offenders first, then most hits; at most O(top).
    - C(offenses) maps detector to count; C(pages) and C(referers) are the client's top O(top_pages).
    - C(lines) holds up to O(sample_lines) raw log lines that made a detector charge the client (empty for
      a client without offences or when O(sample_lines=0)).
    - With O(client_detail=false), a client has only C(hits), C(offenses), C(first_seen) and C(last_seen).
  returned: always
  type: dict
  sample:
    "203.0.113.5":
      hits: 1313
      offenses: {flood: 1200, open_redirect: 2}
      first_seen: "2021-02-03T08:49:00+00:00"
      last_seen: "2021-02-03T10:10:00+00:00"
      statuses: {"200": 1311, "302": 2}
      pages: [{page: /cocoon-service-worker.js, hits: 1311}]
      referers: [{referer: "http://www.example.org/bitrix/redirect.php", hits: 2}]
      lines:
        - '203.0.113.5 - - [03/Feb/2021:10:11:12 +0000] "GET /cgi-bin/jump.cgi?url=http://evil.example/ HTTP/1.1"
          302 215 "-" "Mozilla/5.0"'
clients_total:
  description: Number of distinct clients seen (before the O(top) cap).
  returned: always
  type: int
  sample: 20226
networks:
  description:
    - Prefix length (string) to CIDR to C(hits), C(offenses), C(hosts) (distinct addresses) and
      C(offending_hosts). Most offences first, at most O(top_networks) per prefix length.
  returned: always
  type: dict
  sample:
    "24":
      "203.0.113.0/24": {hits: 5120, offenses: 310, hosts: 41, offending_hosts: 33}
pages:
  description: Most requested paths (query removed).
  returned: always
  type: list
  elements: dict
  sample: [{page: /cgi-bin/jump.cgi, hits: 24000}]
days:
  description:
    - Per local date (the host's time zone), C(hits), C(offenses) and distinct C(clients) (a client seen
      that day in any log counts once). A day whose clocks change (summer time) is one date like any other.
    - With O(top_day_pages) above 0, also C(pages) - the day's O(top_day_pages) most requested paths, each
      with its C(hits) and C(clients) (address to hits, the page's O(top_day_pages) heaviest clients among
      those whose per-client detail is kept, see the notes; no C(clients) with O(client_detail=false)).
  returned: always
  type: dict
  sample:
    "2021-02-03":
      hits: 84000
      offenses: 2200
      clients: 9000
      pages:
        /cgi-bin/jump.cgi: {hits: 24000, clients: {"203.0.113.5": 1313, "203.0.113.6": 900}}
referers:
  description: Most frequent referers (C(-) left out).
  returned: always
  type: list
  elements: dict
  sample: [{referer: "http://www.example.org/bitrix/redirect.php", hits: 900}]
fail2ban:
  description: Per jail, counts of C(bans), C(found), C(restored), C(unbans) and C(increased) events.
  returned: always
  type: dict
  sample: {webshield-noscript: {bans: 12, unbans: 10, found: 40}}
files:
  description:
    - Per file read, with where reading started and ended (uncompressed offsets).
    - An access log's C(format) is the O(access_format) it was read with (null when the file was unchanged).
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /var/log/apache2/access.log, kind: access, start: 0, offset: 182323254, lines: 1000000,
       bytes: 182323254, malformed: 0, status: read, format: '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'}
warnings_list:
  description: The warnings of this run (also shown as Ansible warnings), for example globs that matched nothing.
  returned: always
  type: list
  elements: str
  sample: ["error_logs: '/var/log/httpd/error_log*' matches no file"]
"""

import calendar
import re
import time
import traceback
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetguard.webshield.plugins.module_utils._logformat import LogFormatError, access_formats
from ansible_collections.fleetguard.webshield.plugins.module_utils._logsource import SourceError, save_state
from ansible_collections.fleetguard.webshield.plugins.module_utils._stats import (
    DETECTORS,
    in_time_range,
    local_epoch,
)
from ansible_collections.fleetguard.webshield.plugins.module_utils._stats_collect import (
    MAX_WORKERS,
    CollectError,
    collect,
)

ARGUMENT_SPEC = dict(
    access_logs=dict(type="list", elements="str", default=[]),
    access_format=dict(type="raw", default="combined"),
    error_logs=dict(type="list", elements="str", default=[]),
    fail2ban_logs=dict(type="list", elements="str", default=[]),
    fail2ban_db=dict(type="path"),
    detectors=dict(type="list", elements="str", choices=list(DETECTORS), default=list(DETECTORS)),
    script_patterns=dict(type="list", elements="str", default=["^/cgi-bin/", r"\.(?:cgi|pl|php|py|sh|asp|aspx|jsp)$"]),
    script_statuses=dict(type="list", elements="int", default=[404]),
    redirect_paths=dict(type="list", elements="str", default=[]),
    redirect_allow_hosts=dict(type="list", elements="str", default=[]),
    flood_windows=dict(
        type="list",
        elements="dict",
        default=[{"seconds": 300, "requests": 60}],
        options=dict(seconds=dict(type="int", required=True), requests=dict(type="int", required=True)),
    ),
    tripwire_paths=dict(type="list", elements="str", default=[]),
    tripwire_markers=dict(type="list", elements="str", default=[]),
    fail2ban_ignore_jails=dict(type="list", elements="str", default=["recidive", "webshield-recidive"]),
    since=dict(type="str"),
    until=dict(type="str"),
    state_file=dict(type="path"),
    missing=dict(type="str", choices=["warn", "fail"], default="warn"),
    top=dict(type="int", default=100),
    top_pages=dict(type="int", default=10),
    top_networks=dict(type="int", default=10000),
    top_day_pages=dict(type="int", default=20),
    sample_lines=dict(type="int", default=5),
    client_detail=dict(type="bool", default=True),
    prefixes=dict(type="list", elements="int", default=[24, 16]),
    prefixes6=dict(type="list", elements="int", default=[64, 48]),
    workers=dict(type="int", default=2),
)

_RELATIVE = re.compile(r"^-\s*([0-9]+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value, now=None):
    """ISO 8601 date/time, epoch seconds or ``-N[smhdw]`` -> epoch seconds. Raises ValueError."""
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        return int((now if now is not None else time.time()) - int(m.group(1)) * _UNITS[m.group(2)])
    if re.match(r"^[0-9]{9,11}$", text):
        return int(text)
    if re.match(r".*[+-][0-9]{2}:[0-9]{2}$", text):
        text = text[:-3] + text[-2:]
    if text.endswith("Z"):
        text = text[:-1] + "+0000"
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"):
        try:
            return calendar.timegm(datetime.strptime(text, fmt).utctimetuple())
        except ValueError:
            pass
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return local_epoch(datetime.strptime(text, fmt).timetuple())
        except ValueError:
            pass
    raise ValueError(value)


def validate(module, params):
    """Check option values the argument spec cannot express; fail with a hint."""
    p = params
    for key in ("since", "until"):
        if p[key] is not None:
            try:
                p[key + "_epoch"] = parse_when(p[key])
            except ValueError:
                module.fail_json(
                    msg="%s=%r is not a time; use ISO 8601 (2025-01-31 or 2025-01-31T10:00:00+09:00), "
                    "epoch seconds, or a relative time like -24h" % (key, p[key])
                )
            if in_time_range(p[key + "_epoch"]) is None:
                module.fail_json(msg="%s=%r is out of range: a time in the years 1900-9999 is needed" % (key, p[key]))
        else:
            p[key + "_epoch"] = None
    if p["since_epoch"] is not None and p["until_epoch"] is not None and p["until_epoch"] <= p["since_epoch"]:
        module.fail_json(msg="until (%s) must be after since (%s)" % (p["until"], p["since"]))
    for key in ("script_patterns", "redirect_paths"):
        for pattern in p[key]:
            try:
                re.compile(pattern)
            except re.error as exc:
                module.fail_json(msg="%s: %r is not a valid regular expression: %s" % (key, pattern, exc))
    for w in p["flood_windows"]:
        if w["seconds"] <= 0 or w["requests"] < 1:
            module.fail_json(msg="flood_windows: %r needs seconds > 0 and requests >= 1" % (w,))
    for path in p["tripwire_paths"]:
        if not path.startswith("/"):
            module.fail_json(
                msg="tripwire_paths: %r is not a request path (one starts with /, as /wp-login.php)" % path
            )
    for marker in p["tripwire_markers"]:
        if not marker.strip():
            module.fail_json(msg="tripwire_markers: %r would be found in every error-log line" % marker)
    for status in p["script_statuses"]:
        if not 100 <= status <= 599:
            module.fail_json(msg="script_statuses: %d is not an HTTP status (100-599)" % status)
    for pfx in p["prefixes"]:
        if not 1 <= pfx <= 32:
            module.fail_json(msg="prefixes: %d is not an IPv4 prefix length (1-32)" % pfx)
    for pfx in p["prefixes6"]:
        if not 1 <= pfx <= 128:
            module.fail_json(msg="prefixes6: %d is not an IPv6 prefix length (1-128)" % pfx)
    for key in ("top", "top_pages", "top_networks"):
        if p[key] < 0:
            module.fail_json(msg="%s must be 0 (all) or more, got %d" % (key, p[key]))
    for key in ("top_day_pages", "sample_lines"):
        if p[key] < 0:
            module.fail_json(msg="%s must be 0 (off) or more, got %d" % (key, p[key]))
    if not 1 <= p["workers"] <= MAX_WORKERS:
        module.fail_json(msg="workers must be between 1 and %d, got %d" % (MAX_WORKERS, p["workers"]))
    try:
        access_formats(p["access_format"])
    except LogFormatError as exc:
        module.fail_json(msg="access_format: %s" % exc)
    if not (p["access_logs"] or p["error_logs"] or p["fail2ban_logs"] or p["fail2ban_db"]):
        module.fail_json(msg="nothing to read: give access_logs, error_logs, fail2ban_logs or fail2ban_db")


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = dict(module.params)
    validate(module, params)
    try:
        result, old_state, new_state, warnings = collect(params)
    except SourceError as exc:
        module.fail_json(msg="cannot read %s: %s" % (exc.path, exc.reason), log_file=exc.path)
    except (CollectError, LogFormatError) as exc:
        module.fail_json(msg=str(exc))
    except MemoryError:
        module.fail_json(msg="out of memory; narrow the input with since/until or lower top")
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user, but keep it for debugging
        module.fail_json(msg="offender_stats failed: %s" % exc, exception=traceback.format_exc())
    changed = False
    if params["state_file"]:
        changed = old_state != new_state
        if changed and not module.check_mode:
            try:
                save_state(params["state_file"], new_state)
            except (OSError, IOError) as exc:
                module.fail_json(
                    msg="cannot write state_file %s: %s; check that its directory exists and is writable"
                    % (params["state_file"], getattr(exc, "strerror", None) or exc)
                )
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=changed, warnings_list=warnings, **result)


if __name__ == "__main__":
    main()
