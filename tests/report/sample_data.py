"""Deterministic sample data in the shapes of offender_stats results (issue 3) and a blocklist plan (issue 5).

It replays both field reports on three servers: an open-redirect botnet from a few /24s hitting a renamed CGI,
one address flooding ``cocoon-service-worker.js``, missing-script probes, fail2ban bans and benign visitors.
Some user agents, referers and URLs carry HTML/JS payloads: the report must show them as text.
"""

import random

PWN = "document.documentElement.setAttribute('data-pwned','%s')"
XSS_REFERER = 'http://evil.example/"><script>' + PWN % 1 + '</script><img src=x onerror="' + PWN % 2 + '">'
XSS_PAGE = "/cgi-bin/jump.cgi?u=</textarea></script><svg/onload=" + PWN % 3 + ">"
XSS_LINE = (
    '198.51.100.7 - - [10/Mar/2025:09:00:01 +0900] "GET /cgi-bin/jump.cgi?url=http://spam.example/ HTTP/1.1" 404 196 '
    '"http://a.example/bitrix/redirect.php?goto=x" "Mozilla/5.0 <script>' + PWN % 4 + '</script><!--"'
)
FLOODER = "192.0.2.77"
FLOOD_PAGE = "/wp-content/themes/cocoon-master/cocoon-service-worker.js"
CGI = "/cgi-bin/jump.cgi"
BOTNETS = ("198.51.100", "203.0.113", "100.64.12")
DAYS = ["2025-03-%02d" % d for d in range(1, 15)]
SERVERS = ("web1.example.net", "web2.example.net", "web3.example.net")


def _client(hits, offenses, *, first, last, pages, referers, lines):
    return {
        "hits": hits,
        "offenses": offenses,
        "first_seen": first,
        "last_seen": last,
        "statuses": {"404": hits} if offenses else {"200": hits},
        "pages": pages,
        "referers": referers,
        "lines": lines,
    }


def offender_stats(server_index):
    rng = random.Random(1000 + server_index)
    clients = {}
    days = {d: {"hits": 0, "offenses": {}, "clients": 0, "pages": {}} for d in DAYS}

    def charge(address, day, page, hits, detectors, *, referer=None, line=None):
        c = clients.setdefault(
            address,
            _client(
                0,
                {},
                first="%sT08:49:02+09:00" % day,
                last="%sT08:49:02+09:00" % day,
                pages={},
                referers={},
                lines=[],
            ),
        )
        c["hits"] += hits
        for det in detectors:
            c["offenses"][det] = c["offenses"].get(det, 0) + hits
        c["last_seen"] = max(c["last_seen"], "%sT10:10:41+09:00" % day)
        c["pages"][page] = c["pages"].get(page, 0) + hits
        if referer:
            c["referers"][referer] = c["referers"].get(referer, 0) + hits
        if line and len(c["lines"]) < 5:
            c["lines"].append(line)
        if detectors:
            c["statuses"] = {"404": c["hits"]}
        drow = days[day]
        drow["hits"] += hits
        for det in detectors:
            drow["offenses"][det] = drow["offenses"].get(det, 0) + hits
        p = drow["pages"].setdefault(page, {"hits": 0, "clients": {}})
        p["hits"] += hits
        p["clients"][address] = p["clients"].get(address, 0) + hits

    # Benign visitors every day.
    for day in DAYS:
        for n in range(25):
            addr = "10.%d.%d.%d" % (server_index, n % 7, 10 + n)
            page = rng.choice(["/", "/index.html", "/blog/2025/03/spring.html", "/about.html", "/feed.php"])
            charge(addr, day, page, rng.randint(1, 6), [], referer="https://www.example.org/")
    # Open-redirect botnet from a few /24s hitting the renamed CGI, from day 5 on.
    for day in DAYS[4:]:
        for net in BOTNETS:
            for host in rng.sample(range(1, 255), 12):
                addr = "%s.%d" % (net, host)
                referer = "http://site%d.example.com/bitrix/redirect.php?goto=http%%3A%%2F%%2F%s%s" % (
                    host % 9,
                    SERVERS[server_index],
                    CGI,
                )
                line = (
                    "[Mon Mar %02d 09:%02d:11 2025] [error] [client %s] script not found or unable to stat: "
                    "/var/www/cgi-bin/jump.cgi, referer: %s" % (int(day[-2:]), host % 60, addr, referer)
                )
                charge(
                    addr,
                    day,
                    CGI + "?url=http://spam.example/",
                    rng.randint(1, 4),
                    ["missing_script", "open_redirect"],
                    referer=referer,
                    line=line,
                )
    # Report 2: one address flooding one file on day 10 (1,313 requests on the first server).
    flood_hits = 1313 if server_index == 0 else 40
    charge(
        FLOODER,
        DAYS[9],
        FLOOD_PAGE,
        flood_hits,
        ["flood"],
        line='%s - - [10/Mar/2025:08:49:02 +0900] "GET %s HTTP/1.1" 200 1042 "-" "Mozilla/5.0"' % (FLOODER, FLOOD_PAGE),
    )
    clients[FLOODER]["first_seen"] = "%sT08:49:02+09:00" % DAYS[9]
    # Missing-script probes, some banned by fail2ban; one carries attacker-controlled markup everywhere.
    for n, probe in enumerate(["/cgi-bin/test.cgi", "/phpmyadmin/index.php", "/wp-login.php", XSS_PAGE]):
        addr = "45.%d.%d.%d" % (10 + n, server_index, 9)
        charge(
            addr,
            DAYS[12],
            probe,
            7,
            ["missing_script"],
            referer=XSS_REFERER if n == 3 else None,
            line=XSS_LINE if n == 3 else None,
        )
        clients[addr]["offenses"]["fail2ban"] = 1 + n % 2
    for drow in days.values():
        drow["clients"] = sum(1 for c in clients.values())  # per-day distinct count (approximate here)
    networks = {"24": {}, "16": {}}
    for addr, c in clients.items():
        o = addr.split(".")
        for prefix, cidr in (("24", "%s.%s.%s.0/24" % tuple(o[:3])), ("16", "%s.%s.0.0/16" % tuple(o[:2]))):
            row = networks[prefix].setdefault(cidr, {"hits": 0, "offenses": {}, "hosts": 0, "offending_hosts": 0})
            row["hits"] += c["hits"]
            for det, v in c["offenses"].items():
                row["offenses"][det] = row["offenses"].get(det, 0) + v
            row["hosts"] += 1
            row["offending_hosts"] += 1 if c["offenses"] else 0
    pages = {}
    referers = {}
    for c in clients.values():
        for p, h in c["pages"].items():
            row = pages.setdefault(p, {"hits": 0, "offenses": 0, "clients": 0})
            row["hits"] += h
            row["clients"] += 1
            row["offenses"] += h if c["offenses"] else 0
        for r, h in c["referers"].items():
            referers[r] = referers.get(r, 0) + h
    lines = sum(c["hits"] for c in clients.values())
    return {
        "changed": False,
        "summary": {
            "files": 4,
            "lines": lines + 3,
            "bytes": lines * 180,
            "malformed": 3,
            "matched": sum(1 for c in clients.values() if c["offenses"]),
            "seconds": 0.05,
            "first": "2025-03-01T00:00:03+09:00",
            "last": "2025-03-14T23:59:58+09:00",
        },
        "clients": clients,
        "clients_total": len(clients),
        "networks": networks,
        "pages": pages,
        "days": days,
        "referers": referers,
        "fail2ban": {"webshield-noscript": {"bans": 4 + server_index, "unbans": 2, "found": 30}},
        "files": [
            {
                "path": "/var/log/apache2/access.log",
                "kind": "access",
                "lines": lines,
                "malformed": 3,
                "status": "read",
                "format": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
            },
            {"path": "/var/log/apache2/error.log", "kind": "error", "lines": 800, "malformed": 0, "status": "read"},
        ],
        "warnings_list": ["fail2ban_logs: '/var/log/fail2ban.log*' matches no file"] if server_index == 2 else [],
    }


def results():
    return {server: offender_stats(i) for i, server in enumerate(SERVERS)}


def plan():
    """In the shape blocklist_plan returns: CIDR lists in ``blocklist``, evidence in ``entries``."""
    entries = [
        {
            "cidr": "%s.0/24" % net,
            "reason": "network/24: >= 50 hits and >= 30 offending hosts over the fleet",
            "hits": 700 + 10 * i,
            "offenses": 1400 + 20 * i,
            "hosts": 96 - i,
            "servers": list(SERVERS),
            "first_seen": "2025-03-05T09:00:11+09:00",
            "last_seen": "2025-03-14T09:59:11+09:00",
            "expires": "2025-04-13T09:59:11+09:00",
        }
        for i, net in enumerate(BOTNETS[:2])
    ]
    entries.append(
        {
            "cidr": FLOODER + "/32",
            "reason": "manual ban: 1313 requests for cocoon-service-worker.js in one day",
            "hits": 1393,
            "hosts": 1,
            "servers": [SERVERS[0]],
            "first_seen": "2025-03-10T08:49:02+09:00",
            "last_seen": "2025-03-10T10:10:41+09:00",
            "expires": "2025-04-09T10:10:41+09:00",
        }
    )
    return {
        "changed": True,
        "blocklist": {"ipv4": [e["cidr"] for e in entries], "ipv6": []},
        "entries": entries,
        "added": [FLOODER + "/32"],
        "removed": ["203.0.113.128/25"],
        "expired": ["203.0.113.128/25"],
        "excluded": [{"cidr": "100.64.12.0/24", "why": ["special:shared"], "protected": ["100.64.12.0/24"]}],
        "summary": {
            "servers": 3,
            "offending_hosts": 440,
            "hosts_covered": 193,
            "drop_rate": 0.4386,
            "networks": 2,
            "hosts_in_networks": 192,
            "addresses": 1,
        },
    }


EVIL_SERVER = 'web9"><script>' + PWN % 5 + "</script>"


def xss_results():
    """One server whose busiest client carries markup in its page, referer and raw line, so the drill-down
    opens on it; plus a server name with markup."""
    addr = "45.13.0.9"
    day = DAYS[12]
    client = _client(
        500,
        {"missing_script": 500, "fail2ban": 2},
        first=day + "T09:00:01+09:00",
        last=day + "T09:30:00+09:00",
        pages={XSS_PAGE: 500},
        referers={XSS_REFERER: 500},
        lines=[XSS_LINE, "bad\x1b[31m control \x00 chars"],
    )
    result = {
        "summary": {
            "files": 1,
            "lines": 500,
            "malformed": 0,
            "matched": 500,
            "first": client["first_seen"],
            "last": client["last_seen"],
        },
        "clients": {addr: client},
        "clients_total": 1,
        "networks": {
            "24": {"45.13.0.0/24": {"hits": 500, "offenses": {"missing_script": 500}, "hosts": 1, "offending_hosts": 1}}
        },
        "pages": {XSS_PAGE: {"hits": 500, "offenses": 500, "clients": 1}},
        "days": {
            day: {
                "hits": 500,
                "offenses": {"missing_script": 500},
                "clients": 1,
                "pages": {XSS_PAGE: {"hits": 500, "clients": {addr: 500}}},
            }
        },
        "referers": {XSS_REFERER: 500},
        "warnings": ["log /var/log/<b>x</b> unreadable"],
    }
    return {EVIL_SERVER: result}


def xss_plan():
    return {
        "blocklist": {
            "ipv4": [
                {
                    "cidr": "45.13.0.9/32",
                    "reason": "reason <script>" + PWN % 6 + "</script>",
                    "hits": 500,
                    "hosts": 1,
                    "servers": [EVIL_SERVER],
                }
            ],
            "ipv6": [],
        },
        "summary": {"total_offending_hosts": 1, "hosts_covered": 1, "drop_rate": 1.0, "networks": 0},
    }
