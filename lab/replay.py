#!/usr/bin/env python3
"""Replay the two field reports' abuse against the Apache inside one lab container, from loopback addresses.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a client can bind any 127.x.y.z address without
adding it: each simulated client connects from its own address and Apache logs that address (%h).

Traffic for server INDEX of COUNT (deterministic, split so that no single server sees enough to block a network
but the fleet does, which is the point of merging the servers' statistics):
  - benign visitors                      127.10.INDEX.1-30    pages, search-engine referers
  - open-redirect botnet, 3 strong /24s  127.66.{1,2,3}.x     2 requests each for the renamed CGI with an
                                                              external URL; bitrix/redirect.php referers
  - a weak /24 (below every threshold)   127.66.9.x           one request each, on server 1 only
  - one address flooding one file        127.77.0.77          cocoon-service-worker.js, 1,313 times (server 1)
  - missing-script probes                127.88.0.1-4         7 requests each; one carries markup in its
                                                              user agent and referer (the report escapes it)
A client whose request fails (fail2ban banned it meanwhile) stops, as a blocked bot would.
Usage: replay.py INDEX COUNT
"""

import http.client
import os
import random
import sys
import urllib.parse

TARGET = "127.0.0.1"
PORT = int(os.environ.get("WEBSHIELD_LAB_PORT", "80"))
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
OLD_CGI = "/cgi-bin/jump.cgi"  # renamed to jump2.cgi: requests for the old name are "script not found"
FLOOD_FILE = "/wp-content/themes/cocoon-master/cocoon-service-worker.js"
counts = {}


def client(address, requests):
    """Send (path, referer, user_agent) requests from one source address over one keep-alive connection."""
    conn = None
    sent = 0
    for path, referer, agent in requests:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(TARGET, PORT, timeout=2, source_address=(address, 0))
            headers = {"User-Agent": agent, "Connection": "keep-alive"}
            if referer:
                headers["Referer"] = referer
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            sent += 1
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except OSError:
            break  # banned by fail2ban (dropped) or refused: a bot would give up here too
    if conn is not None:
        conn.close()
    return sent


def run(kind, address, requests):
    sent = client(address, requests)
    done, total = counts.get(kind, (0, 0))
    counts[kind] = (done + sent, total + len(requests))


def main():
    index, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(4242 + index)
    pages = ["/", "/index.html", "/blog/2025/03/spring.html", "/about.html", "/feed/"]
    for n in range(1, 31):
        reqs = [(rng.choice(pages), "https://www.google.com/search?q=blog", UA) for _ in range(rng.randint(2, 5))]
        run("benign", "127.10.%d.%d" % (index, n), reqs)
    for net in (1, 2, 3):
        for host in range(1, 46):
            if host % count != index:
                continue
            target = urllib.parse.quote("http://spam%d.example/landing" % (host % 5), safe="")
            goto = urllib.parse.quote("http://web/cgi-bin/jump.cgi", safe="")
            referer = "http://site%d.example.com/bitrix/redirect.php?goto=%s" % (host % 7, goto)
            path = "%s?url=%s" % (OLD_CGI, target)
            run("botnet", "127.66.%d.%d" % (net, host), [(path, referer, UA)] * 2)
    if index == 0:
        for host in range(1, 11):
            path = "%s?url=%s" % (OLD_CGI, urllib.parse.quote("https://phish.example/", safe=""))
            run("weak /24", "127.66.9.%d" % host, [(path, None, UA)])
        run("flood", "127.77.0.77", [(FLOOD_FILE, None, UA)] * 1313)
    probes = ["/cgi-bin/test.cgi", "/phpmyadmin/index.php", "/cgi-bin/php-cgi", "/wp-login.php"]
    for n in range(1, 5):
        agent = UA if n != 4 else 'Mozilla/5.0 <script>alert("xss")</script>'
        referer = None if n != 4 else 'http://evil.example/"><img src=x onerror=alert(1)>'
        requests = [(p, referer, agent) for p in probes] + [(probes[0], referer, agent)] * 3
        run("probes", "127.88.%d.%d" % (index, n), requests)
    for kind, (done, total) in counts.items():
        print("  %-9s %5d of %5d requests answered" % (kind, done, total))


if __name__ == "__main__":
    main()
