"""lab/replay.py, the `make demo` traffic, against a local HTTP server on loopback: every simulated client
connects from its own 127.x.y.z address, and the split over three servers is what makes the fleet's merged
statistics (not any single server's) pass the /24 rule (>= 50 hits, >= 30 hosts)."""

import collections
import http.server
import ipaddress
import os
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPLAY = os.path.join(ROOT, "lab", "replay.py")


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one segment per response (no delayed-ACK stall on keep-alive)
    disable_nagle_algorithm = True
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        Recorder.seen.append(
            (self.client_address[0], self.path, self.headers.get("Referer"), self.headers["User-Agent"])
        )
        body = b"ok"
        self.send_response(404 if "cgi" in self.path or "php" in self.path else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def traffic():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    per_server = []
    try:
        for index in range(3):
            Recorder.seen = []
            env = dict(os.environ, WEBSHIELD_LAB_PORT=str(server.server_address[1]))
            proc = subprocess.run(
                [sys.executable, REPLAY, str(index), "3"], env=env, capture_output=True, text=True, check=False
            )
            assert proc.returncode == 0, proc.stderr
            per_server.append(list(Recorder.seen))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    return per_server


def per_24(requests, prefix):
    hosts = collections.defaultdict(set)
    hits = collections.Counter()
    for address, _path, _referer, _agent in requests:
        if address.startswith(prefix):
            net = str(ipaddress.ip_network(address + "/24", strict=False))
            hosts[net].add(address)
            hits[net] += 1
    return hosts, hits


@pytest.mark.parametrize("net", ["127.66.1.0/24", "127.66.2.0/24", "127.66.3.0/24"])
def test_botnet_passes_the_rule_only_over_the_fleet(traffic, net):
    for requests in traffic:
        hosts, _ = per_24(requests, "127.66.")
        assert len(hosts[net]) < 30
    fleet = [r for requests in traffic for r in requests]
    hosts, hits = per_24(fleet, "127.66.")
    assert len(hosts[net]) >= 30
    assert hits[net] >= 50


def test_botnet_requests_look_like_the_first_report(traffic):
    bot = [r for r in traffic[1] if r[0].startswith("127.66.")]
    assert bot and all(path.startswith("/cgi-bin/jump.cgi?url=http%3A%2F%2F") for _, path, _, _ in bot)
    assert all("/bitrix/redirect.php?goto=" in referer for _, _, referer, _ in bot)


@pytest.mark.parametrize(
    "server, address, path, count",
    [
        (0, "127.77.0.77", "/wp-content/themes/cocoon-master/cocoon-service-worker.js", 1313),
        (1, "127.77.0.77", "/wp-content/themes/cocoon-master/cocoon-service-worker.js", 0),
        (0, "127.88.0.1", "/cgi-bin/test.cgi", 4),
        (2, "127.88.2.3", "/wp-login.php", 1),
    ],
)
def test_flood_and_probes(traffic, server, address, path, count):
    assert sum(1 for a, p, _, _ in traffic[server] if a == address and p == path) == count


def test_weak_network_stays_below_the_rule(traffic):
    fleet = [r for requests in traffic for r in requests]
    hosts, hits = per_24(fleet, "127.66.9.")
    assert len(hosts["127.66.9.0/24"]) == 10
    assert hits["127.66.9.0/24"] < 50


def test_benign_visitors_and_markup_probe(traffic):
    benign = {a for a, _, _, _ in traffic[0] if a.startswith("127.10.0.")}
    assert len(benign) == 30
    assert any("<script>" in agent for a, _, _, agent in traffic[0] if a == "127.88.0.4")
