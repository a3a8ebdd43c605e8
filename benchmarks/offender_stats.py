#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of offender_stats (a benchmark, not a test: it prints figures and asserts nothing).

Builds a deterministic combined log of N lines (default 1M; ``--lines 5000000 --clients 200000`` for the
memory figure), then prints, in one run:

* the module core (every detector on) with 1 and 2 processes: seconds, lines/s, peak RSS;
* ``mawk '{c[$1]++}'`` on the same file (best of three runs) and the ratio (module time / mawk time);
* mawk running a part of the module's counting (per-client hits, times, statuses, days; pages, referers;
  two detectors), to show what the floor of 2x ``mawk '{c[$1]++}'`` compares the module with;
* a rerun with ``state_file`` on the unchanged file;
* a 200k-line Apache 2.4 error log (``--error-lines``), next to ``mawk '{c[$1]++}'`` on it;
* every client returned (``top: 0``), with and without per-client detail and network tables (what
  ``blocklist_push.yml`` asks each server for): time and size of the result;
* what parsing alone costs: the module's own reader and column splitter cut every line into the fields the
  detectors need and read its time, in as many processes as the module would use, and count nothing. This
  is the part of the work no detector can skip, set beside the floor of the issue (2x mawk's time);
* the same log cut into 15 files as Debian's logrotate leaves them (``access.log``, ``access.log.1``,
  ``access.log.2.gz`` to ``access.log.14.gz``), read with 2 processes: the first run of the report on a
  server; then the same set compressed with zstd (``compresscmd zstd``) instead of gzip (``--no-rotated``
  leaves both out);
* one run through the real module entry point (``ansible localhost -m fleetguard.webshield.offender_stats``),
  unless ``--no-ansible``.

Run from the repository root: ``python3 benchmarks/offender_stats.py [--lines N] [--clients K]``.
"""

from __future__ import absolute_import, division, print_function

import argparse
import gzip
import importlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "fleetguard", "webshield")


def ensure_import_path():
    if not os.path.exists(LINK):
        os.makedirs(os.path.dirname(LINK), exist_ok=True)
        os.symlink(ROOT, LINK)
    sys.path.insert(0, COLLECTIONS)


def build_log(path, lines, clients, seed=1):
    """A combined log with Zipf-like clients, pages and referers, 2% open-redirect attempts, 3% missing
    scripts, tripwire probes and one flooding client; about 12 lines per second."""
    rnd = random.Random(seed)
    addrs = []
    for i in range(clients):
        if i % 50 == 49:
            addrs.append("2001:db8:%x:%x::%x" % (i >> 16, (i >> 4) & 0xFFFF, i & 0xF))
        else:
            addrs.append("%d.%d.%d.%d" % (1 + (i * 7) % 223, (i >> 8) % 256, (i * 13) % 256, i % 256))
    pages = ["/", "/index.html", "/feed/", "/style.css", "/app.js", "/favicon.ico"]
    pages += ["/blog/%d/post-%d.html" % (i % 40, i) for i in range(1500)]
    referers = ["-"] * 30 + ["https://www.google.com/", "http://www.example.com/"]
    referers += ["http://site%d.example/bitrix/redirect.php?goto=x" % i for i in range(300)]
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "curl/8.0",
        'Mozilla/5.0 \\"quoted\\" [client 198.51.100.7]',
    ]
    t0 = 1612346400  # 2021-02-03T10:00:00Z
    stamps = {}
    out = []
    with open(path, "w") as fobj:
        for i in range(lines):
            t = t0 + i // 12
            ts = stamps.get(t)
            if ts is None:
                stamps.clear()
                ts = stamps[t] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
            c = (int(clients * rnd.random() ** 3) * 7919) % clients  # skewed: a few heavy clients, a long tail
            r = rnd.random()
            status, size = 200, 512 + (i % 4000)
            if r < 0.02:
                target, status = "/cgi-bin/jump.cgi?url=http%3A%2F%2Fevil.example%2F", 302
            elif r < 0.05:
                target, status = "/cgi-bin/old.cgi", 404
            elif r < 0.055:
                target, status = "/wp-login.php", 404
            elif r < 0.06:
                c, target = 0, "/wp-content/themes/cocoon-master/cocoon-service-worker.js"
            else:
                target = pages[min(int(rnd.expovariate(0.01)), len(pages) - 1)]
                if r < 0.08:
                    target += "?p=%d" % (i % 97)
            ref = referers[min(int(rnd.expovariate(0.05)), len(referers) - 1)]
            agent = agents[3] if r > 0.9995 else agents[i % 3]
            out.append(
                '%s - - [%s] "GET %s HTTP/1.1" %d %d "%s" "%s"\n' % (addrs[c], ts, target, status, size, ref, agent)
            )
            if len(out) >= 10000:
                fobj.write("".join(out))
                out = []
        fobj.write("".join(out))


def build_error_log(path, lines, clients, seed=2):
    """An Apache 2.4 error log (the default ErrorLogFormat of Debian and EL): missing scripts from mod_cgid
    (AH01264, some with a referer), a CGI's stderr in its two-line form (AH01215 and the raw line after it),
    files that do not exist, TLS connection lines ([remote]) and server notices without a client; skewed
    clients with a new port on each line; about 4 lines per second."""
    rnd = random.Random(seed)
    addrs = ["%d.%d.%d.%d" % (1 + (i * 11) % 223, (i >> 8) % 256, (i * 17) % 256, i % 256) for i in range(clients)]
    addrs[7] = "2001:db8:7::7"
    t0 = 1612346400
    out = []
    with open(path, "w") as fobj:
        n = 0
        while n < lines:
            t = t0 + n // 4
            stamp = time.strftime("%a %b %d %H:%M:%S", time.gmtime(t)) + ".%06d %s" % (n * 37 % 1000000, 2021)
            client = "%s:%d" % (addrs[int(clients * rnd.random() ** 3)], 1024 + rnd.randrange(60000))
            head = "[%s] [%%s] [pid %d:tid %d] [client %s] " % (stamp, 1000 + n % 7, 2000 + n % 13, client)
            r = rnd.random()
            if r < 0.4:
                text = head % "cgid:error" + "AH01264: script not found or unable to stat: /usr/lib/cgi-bin/s%d.cgi" % (
                    n % 300
                )
                if r < 0.1:
                    text += ", referer: http://site%d.example/" % (n % 50)
                out.append(text)
            elif r < 0.5:
                out.append(
                    head % "cgid:error" + "AH01215: script not found or unable to stat: at /usr/lib/cgi-bin/jump.cgi "
                    "line 12.: /usr/lib/cgi-bin/jump.cgi"
                )
                out.append("script not found or unable to stat: at /usr/lib/cgi-bin/jump.cgi line 12.")
                n += 1
            elif r < 0.8:
                out.append(head % "core:info" + "AH00128: File does not exist: /var/www/html/p%d.png" % (n % 500))
            elif r < 0.9:
                out.append(
                    head.replace("[client ", "[remote ") % "ssl:info" + "AH01964: Connection to child 3 established"
                )
            else:
                out.append("[%s] [mpm_event:notice] [pid 1:tid 2] AH00489: Apache configured -- resuming" % stamp)
            n += 1
            if len(out) >= 10000:
                fobj.write("\n".join(out) + "\n")
                out = []
        if out:
            fobj.write("\n".join(out) + "\n")


def module_options(path, workers, state_file=None):
    return dict(
        access_logs=[path],
        access_format="combined",
        error_logs=[],
        fail2ban_logs=[],
        fail2ban_db=None,
        detectors=["missing_script", "open_redirect", "flood", "tripwire", "fail2ban"],
        script_patterns=["^/cgi-bin/", r"\.(?:cgi|pl|php|py|sh|asp|aspx|jsp)$"],
        script_statuses=[404],
        redirect_paths=[],
        redirect_allow_hosts=["www.example.com"],
        flood_windows=[{"seconds": 300, "requests": 60}, {"seconds": 60, "requests": 30}],
        tripwire_paths=["/wp-login.php", "/.env"],
        tripwire_markers=[],
        fail2ban_ignore_jails=["recidive"],
        since_epoch=None,
        until_epoch=None,
        state_file=state_file,
        missing="warn",
        top=100,
        top_pages=10,
        top_networks=10000,
        top_day_pages=20,
        sample_lines=5,
        prefixes=[24, 16],
        prefixes6=[64, 48],
        workers=workers,
    )


def build_rotated(path, directory, parts=15, ext=".gz"):
    """The log cut into ``parts`` files in time order, as Debian's logrotate leaves them: ``access.log``,
    ``access.log.1`` and ``access.log.2.gz`` to ``access.log.<parts - 1>.gz`` (the oldest); with ``ext``
    ``.zst``, compressed by the zstd program reading the log on its standard input, as logrotate runs it."""
    os.makedirs(directory)
    size = os.path.getsize(path)
    with open(path, "rb") as src:
        for k in range(parts):
            data = src.read(size // parts) + (src.readline() if k < parts - 1 else src.read())
            n = parts - 1 - k
            name = os.path.join(directory, "access.log" + (".%d" % n if n else ""))
            if n >= 2 and ext == ".zst":
                with open(name + ext, "wb") as dst:
                    subprocess.run(["zstd", "-q", "-c"], input=data, stdout=dst, check=True)
            elif n >= 2:
                with gzip.open(name + ".gz", "wb", compresslevel=6) as dst:
                    dst.write(data)
            else:
                with open(name, "wb") as dst:
                    dst.write(data)


def run_core(path, workers, state_file=None, **extra):
    """Run the core in a child process; returns (seconds, summary, peak RSS MiB of the child and its worker)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        base = "ansible_collections.fleetguard.webshield.plugins.module_utils."
        save_state = importlib.import_module(base + "_logsource").save_state
        collect = importlib.import_module(base + "_stats_collect").collect
        start, cpu0 = time.time(), _cpu()
        opts = module_options(path, workers, state_file)
        opts.update(extra)
        result, _old, new_state, _warnings = collect(opts)
        seconds, cpu = time.time() - start, _cpu() - cpu0
        if state_file:
            save_state(state_file, new_state)
        with os.fdopen(writer, "w") as fobj:
            json.dump(
                {
                    "seconds": seconds,
                    "cpu": cpu,
                    "summary": result["summary"],
                    "clients_total": result["clients_total"],
                    "result_bytes": len(json.dumps(result)),
                },
                fobj,
            )
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as fobj:
        data = json.load(fobj)
    _pid, _status, usage = os.wait4(pid, 0)
    return data, usage.ru_maxrss / 1024.0


def parse_only(path, processes):
    """(wall seconds, CPU seconds) of reading ``path`` and splitting every line into its fields, in
    ``processes`` forked processes over equal byte ranges cut at line starts; nothing is counted."""
    base = "ansible_collections.fleetguard.webshield.plugins.module_utils."
    logsource = importlib.import_module(base + "_logsource")
    access_format = importlib.import_module(base + "_logformat").AccessFormat
    time_parser = importlib.import_module(base + "_stats").TimeParser
    size = os.path.getsize(path)
    cuts = [logsource.line_start(path, size * k // processes) for k in range(processes)] + [size]
    start, cpu0 = time.time(), _cpu()
    pids = []
    for k in range(processes):
        pid = os.fork()
        if pid == 0:
            splitter, times = access_format("combined").splitter, time_parser()
            for data, _pos in logsource.read_blocks(path, cuts[k], cuts[k + 1]):
                cols = splitter.columns(data, data.count(b"\n"))
                times.epochs(cols["time"], cols["zone"])
                splitter.release()
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return time.time() - start, _cpu() - cpu0


def _cpu():
    """CPU seconds (user + system) of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# A part of what the module counts, in awk, for scale: per client hits, first and last time, statuses and
# days; hits per page and referer; 404s on script paths and external URLs in the query as offences.
AWK_COUNTING = r"""
{
  if (split($0, q, "\"") < 7) { bad++; next }
  c = $1; t = substr($4, 2); hits[c]++
  if (!(c in first)) first[c] = t
  last[c] = t
  split(q[2], r, " "); split(q[3], s, " ")
  pages[r[2]]++; refs[q[4]]++; st[c SUBSEP s[1]]++; day[c SUBSEP substr(t, 1, 11)]++
  if (s[1] == 404 && r[2] ~ /\.(cgi|pl|php)$/) off[c]++
  if (r[2] ~ /[?&][^=]*=(https?%3A|https?:)/) off[c]++
}
END { for (c in hits) n++; print n, bad }
"""


def mawk_seconds(path, program="{c[$1]++}"):
    """(wall seconds, CPU seconds) of mawk running ``program`` on the file, or None without mawk."""
    mawk = shutil.which("mawk")
    if not mawk:
        return None
    start = time.time()
    proc = subprocess.Popen([mawk, program, path], stdout=subprocess.DEVNULL)
    _pid, _status, usage = os.wait4(proc.pid, 0)
    return time.time() - start, usage.ru_utime + usage.ru_stime


def ansible_seconds(path):
    ansible = shutil.which("ansible") or os.path.join(os.path.dirname(sys.executable), "ansible")
    if not os.path.exists(ansible):
        return None, "ansible not found"
    args = json.dumps({"access_logs": [path], "top": 10, "tripwire_paths": ["/wp-login.php"]})
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    start = time.time()
    proc = subprocess.run(
        [ansible, "localhost", "-m", "fleetguard.webshield.offender_stats", "-a", args, "-o"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        check=False,
    )
    ok = proc.returncode == 0 and "SUCCESS" in proc.stdout
    return time.time() - start, "ok" if ok else proc.stdout[-500:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000000)
    parser.add_argument("--clients", type=int, default=20000)
    parser.add_argument("--log", help="use (or build, if missing) this log file instead of a temporary one")
    parser.add_argument(
        "--error-lines", type=int, default=200000, help="lines of the error log that is timed too (0: none)"
    )
    parser.add_argument("--no-ansible", action="store_true", help="skip the run through ansible")
    parser.add_argument(
        "--no-rotated", action="store_true", help="skip the runs over the log cut into rotated and compressed files"
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="comma-separated process counts to time (default 1,2; the module uses no more than the usable CPUs)",
    )
    args = parser.parse_args()
    ensure_import_path()
    workdir = tempfile.mkdtemp(prefix="offender_stats-bench-")
    try:
        path = args.log or os.path.join(workdir, "access.log")
        if not os.path.exists(path):
            start = time.time()
            build_log(path, args.lines, args.clients)
            print(
                "built %s: %d lines, %.1f MiB in %.1f s"
                % (path, args.lines, os.path.getsize(path) / 2.0**20, time.time() - start)
            )
        print("load average: %.2f %.2f %.2f (2 cores; other work on the machine inflates wall times)" % os.getloadavg())
        # mawk's best of three: a single run of it is as open to the machine's other work as the module's
        # runs are, and the ratios below are taken against its best
        mawk = mawk_seconds(path)
        if mawk:
            runs = [mawk] + [mawk_seconds(path) for _ in range(2)]
            mawk = (min(r[0] for r in runs), min(r[1] for r in runs))
            print(
                "mawk '{c[$1]++}': %.2f s wall, %.2f s CPU (best of 3; wall of each: %s)"
                % (mawk + (", ".join("%.2f" % r[0] for r in runs),))
            )
        else:
            print("mawk not installed")
        if mawk:
            print(
                "mawk with a part of the module's counting (for scale): %.2f s wall"
                % mawk_seconds(path, AWK_COUNTING)[0]
            )
        collect_module = importlib.import_module(
            "ansible_collections.fleetguard.webshield.plugins.module_utils._stats_collect"
        )
        print("usable CPUs: %d (the module starts no more processes than that)" % collect_module.usable_cpus())
        for workers in [int(w) for w in args.workers.split(",")]:
            data, rss = run_core(path, workers)
            s = data["summary"]
            line = "core, workers=%d: %.2f s wall, %.2f s CPU, %.0f lines/s, peak RSS %.0f MiB" % (
                workers,
                data["seconds"],
                data["cpu"],
                s["lines"] / data["seconds"],
                rss,
            )
            line += "; %d lines, %d malformed, %d matched, %d clients" % (
                s["lines"],
                s["malformed"],
                s["matched"],
                data["clients_total"],
            )
            if mawk:
                line += "; ratio to mawk: wall %.2f, CPU %.2f" % (data["seconds"] / mawk[0], data["cpu"] / mawk[1])
            print(line)
        lean = dict(top=0, client_detail=False, prefixes=[], prefixes6=[], top_day_pages=0)
        for label, extra in (("top=0", dict(top=0, top_networks=0)), ("as blocklist_push asks", lean)):
            data, rss = run_core(path, 2, **extra)
            print(
                "core, workers=2, %s: %.2f s wall, %.2f s CPU, result %.1f MB of JSON"
                % (label, data["seconds"], data["cpu"], data["result_bytes"] / 1e6)
            )
        processes = min(2, collect_module.usable_cpus())
        seconds, cpu = parse_only(path, processes)
        line = "parsing alone (read, split into fields, times; nothing counted), %d processes: " % processes
        line += "%.2f s wall, %.2f s CPU" % (seconds, cpu)
        if mawk:
            line += "; ratio to mawk: wall %.2f (the floor is 2)" % (seconds / mawk[0])
        print(line)
        if args.error_lines:
            error_log = os.path.join(workdir, "error.log")
            build_error_log(error_log, args.error_lines, max(1, args.clients // 10))
            data, rss = run_core(error_log, 1, access_logs=[], error_logs=[error_log])
            s = data["summary"]
            line = "error log (Apache 2.4, %d lines, %d clients): %.2f s wall, %.0f lines/s, %d matched" % (
                s["lines"],
                data["clients_total"],
                data["seconds"],
                s["lines"] / data["seconds"],
                s["matched"],
            )
            emawk = mawk_seconds(error_log)
            if emawk:
                line += "; mawk '{c[$1]++}' %.2f s, ratio %.2f" % (emawk[0], data["seconds"] / emawk[0])
            print(line)
        state = os.path.join(workdir, "state.json")
        run_core(path, 2, state)
        data, rss = run_core(path, 2, state)
        print(
            "rerun with state_file on the unchanged file: %.3f s (%d lines read)"
            % (data["seconds"], data["summary"]["lines"])
        )
        for ext in () if args.no_rotated else (".gz", ".zst"):
            if ext == ".zst" and not shutil.which("zstd"):
                print("the rotation set compressed with zstd: - (no zstd program)")
                continue
            rotated = os.path.join(workdir, "rotated" + ext)
            build_rotated(path, rotated, ext=ext)
            data, rss = run_core(os.path.join(rotated, "access.log*"), 2)
            print(
                "the same log as Debian's logrotate leaves it (access.log, access.log.1, access.log.2%s to .14%s), "
                "workers=2: %.2f s wall, %.2f s CPU, %d lines"
                % (ext, ext, data["seconds"], data["cpu"], data["summary"]["lines"])
            )
        if not args.no_ansible:
            seconds, status = ansible_seconds(path)
            print(
                "ansible localhost -m fleetguard.webshield.offender_stats: %s (%s)"
                % ("%.2f s" % seconds if seconds else "-", status)
            )
        print("peak RSS of this script: %.0f MiB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
