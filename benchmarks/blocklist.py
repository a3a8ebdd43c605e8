#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blocklist speed: plan 1M offending addresses from 50 servers; apply 100k entries in a network namespace.

    .venv/bin/python benchmarks/blocklist.py [--addresses 1000000] [--servers 50] [--entries 100000] [--nft]
        [--repeat 3] [--skip-plan] [--skip-apply]

Prints figures only (no pass/fail). The plan runs in a child process so its peak memory can be read
(VmHWM). `iprange --optimize` (Debian package iprange) runs on the same addresses when installed. The apply
part runs the module exactly as Ansible does (a new Python process inside the namespace), beside a bare
`ipset restore` + `ipset swap` of the same entries, each case --repeat times (wall seconds min / median / max,
and the median CPU seconds of the process and its children); the namespace is removed at the end, even on failure.
"""

import argparse
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
sys.path.insert(0, COLLECTIONS)
MODULE = "ansible_collections.fleetguard.webshield.plugins.modules.ipset_blocklist"


def _link():
    link = os.path.join(COLLECTIONS, "ansible_collections", "fleetguard", "webshield")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)


_link()

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr, _plan  # noqa: E402


def proc_status(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def make_stats(n_addresses, n_servers, seed=5):
    """Deterministic offender_stats results: 1/3 of the addresses packed into 'bot' /24s, the rest scattered."""
    rng = random.Random(seed)
    per = [dict() for _i in range(n_servers)]
    pack = struct.Struct("!I").pack
    ntoa = socket.inet_ntoa
    clustered = n_addresses // 3
    bot_nets = [rng.randrange(0x2D000000, 0x5F000000) & 0xFFFFFF00 for _i in range(max(1, clustered // 60))]
    addrs = []
    for i in range(clustered):
        addrs.append(bot_nets[i % len(bot_nets)] | rng.randrange(1, 255))
    while len(addrs) < n_addresses:
        addrs.append(rng.randrange(0x2D000000, 0xDF000000))
    for i, value in enumerate(addrs):
        server = per[i % n_servers]
        hits = 1 + (i % 7)
        server[ntoa(pack(value))] = {
            "hits": hits,
            "offenses": {"missing_script": hits},
            "first_seen": "2026-01-01T00:00:00+00:00",
            "last_seen": "2026-01-02T00:00:00+00:00",
        }
    return {"web%02d" % i: {"clients": c, "clients_total": len(c), "summary": {}} for i, c in enumerate(per)}, addrs


def plan_child(n_addresses, n_servers, queue):
    t0 = time.perf_counter()
    stats, _addrs = make_stats(n_addresses, n_servers)
    built = time.perf_counter() - t0
    rss_input = proc_status("VmRSS")
    special = _cidr.RangeSet(ranges=_cidr.special_cidrs()).to_cidrs()
    protection = _plan.Protection(
        [("trusted", ["127.0.0.0/8", "::1/128"]), ("special", special["ipv4"] + special["ipv6"])]
    )
    levels = {"address": {"min_offenses": 7}, "24": {"min_hits": 50, "min_hosts": 30}}
    t0 = time.perf_counter()
    try:
        result, state = _plan.build_plan(stats, protection, {"levels": levels, "max_entries": 1 << 20}, now=1767225600)
    except Exception as exc:  # report it in the parent instead of leaving it waiting
        queue.put({"error": repr(exc)})
        raise
    seconds = time.perf_counter() - t0
    queue.put(
        {
            "build": built,
            "seconds": seconds,
            "rss_input": rss_input,
            "peak": proc_status("VmHWM"),
            "summary": result["summary"],
            "entries": len(result["blocklist"]["ipv4"]),
            "state_entries": len(state["entries"]),
        }
    )


def bench_plan(args):
    queue = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(target=plan_child, args=(args.addresses, args.servers, queue))
    proc.start()
    out = queue.get()
    proc.join()
    if "error" in out:
        print("plan failed: %s" % out["error"])
        return
    s = out["summary"]
    print("plan: %d offending addresses from %d servers" % (args.addresses, args.servers))
    print("  input built in %.2f s, RSS with input %.0f MiB" % (out["build"], out["rss_input"]))
    print(
        "  blocklist_plan: %.2f s, peak RSS %.0f MiB (+%.0f MiB over the input)"
        % (out["seconds"], out["peak"], out["peak"] - out["rss_input"])
    )
    print(
        "  plan: %d IPv4 entries (%d networks, %d addresses); %d offending hosts, %d covered, drop rate %.3f"
        % (out["entries"], s["networks"], s["addresses"], s["offending_hosts"], s["hosts_covered"], s["drop_rate"])
    )
    if shutil.which("iprange"):
        _stats, addrs = make_stats(args.addresses, args.servers)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            pack = struct.Struct("!I").pack
            handle.write("\n".join(socket.inet_ntoa(pack(a)) for a in addrs) + "\n")
            path = handle.name
        try:
            t0 = time.perf_counter()
            proc = subprocess.run(["iprange", "--optimize", path], stdout=subprocess.PIPE, check=True)
            seconds = time.perf_counter() - t0
            lines = proc.stdout.count(b"\n")
            print(
                "  iprange --optimize on the same addresses (merge only, no thresholds): %.2f s, %d CIDRs"
                % (seconds, lines)
            )
        finally:
            os.unlink(path)
    else:
        print("  iprange not installed (apt-get install iprange) - no comparison")


def ns_run(ns, args, data=None):
    """Run a command in the namespace: ``(wall seconds, CPU seconds, stdout)``.

    CPU seconds are user + system time of the command and everything it waited for (the module's ipset and
    iptables children too), from the rusage of terminated children.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["ip", "netns", "exec", ns] + args,
        input=data,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (args[:3], proc.stderr[:500]))
    return seconds, cpu, proc.stdout


# The Python the module runs with, as Ansible would start it (the collection importable).
PYTHON_CMD = ["env", "PYTHONPATH=" + COLLECTIONS, sys.executable]


def run_module(ns, tmpdir, **params):
    path = os.path.join(tmpdir, "args-%s.json" % secrets.token_hex(3))
    with open(path, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    seconds, cpu, out = ns_run(ns, PYTHON_CMD + ["-m", MODULE, path])
    result = json.loads(out)
    if result.get("failed"):
        raise RuntimeError(result["msg"])
    return seconds, cpu, result


def figures(runs):
    """``min / median / max`` wall seconds and the median CPU seconds of ``[(wall, cpu), ...]``."""
    walls = sorted(r[0] for r in runs)
    cpus = sorted(r[1] for r in runs)
    mid = len(runs) // 2
    return "%.2f / %.2f / %.2f s wall, %.2f s CPU" % (walls[0], walls[mid], walls[-1], cpus[mid])


def entries_list(n, offset):
    """``n`` /24 networks that do not touch each other (every other /24), so the set really holds ``n`` entries."""
    out = []
    for i in range(offset, offset + n):
        k = 2 * i
        out.append("%d.%d.%d.0/24" % (46 + k // 65536, (k // 256) % 256, k % 256))
    return out


def bench_apply(args):
    if os.geteuid() != 0 or not shutil.which("ipset"):
        print("apply: needs root and ipset - skipped")
        return
    _link()
    ns = "wsf-bl-bench-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    tmpdir = tempfile.mkdtemp(prefix="wsf-bl-bench-")
    try:
        n = args.entries
        a, b = entries_list(n, 0), entries_list(n, n // 2)  # b: half the entries changed
        runs = {key: [] for key in ("bare", "create", "change", "rerun", "import")}
        notes = {}
        # bare ipset: restore into a temporary set, swap, destroy
        script = "create bare hash:net family inet maxelem %d\n" % (4 * n) + "".join("add bare %s\n" % e for e in a)
        script2 = "create bare-new hash:net family inet maxelem %d\n" % (4 * n) + "".join(
            "add bare-new %s\n" % e for e in b
        )
        for i in range(args.repeat):
            ns_run(ns, ["ipset", "restore"], data=script)
            t_restore, c_restore, _ = ns_run(ns, ["ipset", "restore"], data=script2)
            t_swap, c_swap, _ = ns_run(ns, ["ipset", "swap", "bare-new", "bare"])
            ns_run(ns, ["ipset", "destroy", "bare-new"])
            ns_run(ns, ["ipset", "destroy", "bare"])
            runs["bare"].append((t_restore + t_swap, c_restore + c_swap))
            # the module, as Ansible runs it: create, half the entries changed, no change
            name = "wsbl%d" % i
            t1, c1, r1 = run_module(ns, tmpdir, name=name, entries=a, family="ipv4")
            t2, c2, r2 = run_module(ns, tmpdir, name=name, entries=b, family="ipv4")
            t3, c3, r3 = run_module(ns, tmpdir, name=name, entries=b, family="ipv4")
            run_module(ns, tmpdir, name=name, family="ipv4", state="absent")
            runs["create"].append((t1, c1))
            runs["change"].append((t2, c2))
            runs["rerun"].append((t3, c3))
            notes = {
                "create": "changed=%s" % r1["changed"],
                "change": "added %d, removed %d" % (r2["added_total"], r2["removed_total"]),
                "rerun": "changed=%s" % r3["changed"],
            }
            t0, c0, _ = ns_run(ns, PYTHON_CMD + ["-c", "import ansible.module_utils.basic"])
            runs["import"].append((t0, c0))
        print("apply: %d entries in a network namespace, %d run(s) each: min / median / max" % (n, args.repeat))
        print("  bare ipset restore + swap (no reading, no diff): %s" % figures(runs["bare"]))
        print("  ipset_blocklist first apply (create):           %s  (%s)" % (figures(runs["create"]), notes["create"]))
        print("  ipset_blocklist change (half new, swap):        %s  (%s)" % (figures(runs["change"]), notes["change"]))
        print("  ipset_blocklist rerun, no change:               %s  (%s)" % (figures(runs["rerun"]), notes["rerun"]))
        print("  (of which Python start + AnsibleModule import:  %s)" % figures(runs["import"]))
        if args.nft and shutil.which("nft"):
            t1, _c, _r = run_module(ns, tmpdir, name="wsnf", backend="nftables", entries=a, family="ipv4")
            t2, _c, _r = run_module(ns, tmpdir, name="wsnf", backend="nftables", entries=b, family="ipv4")
            t3, _c, r3 = run_module(ns, tmpdir, name="wsnf", backend="nftables", entries=b, family="ipv4")
            print(
                "  nftables backend: first %.2f s, change %.2f s, no change %.2f s (changed=%s)"
                % (t1, t2, t3, r3["changed"])
            )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(tmpdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1000000)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--entries", type=int, default=100000)
    parser.add_argument("--nft", action="store_true", help="also time the nftables backend")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each apply case (min / median / max)")
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--skip-apply", action="store_true")
    args = parser.parse_args()
    if not args.skip_plan:
        bench_plan(args)
    if not args.skip_apply:
        bench_apply(args)


if __name__ == "__main__":
    main()
