# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""offender_stats core: read every source (in parallel when large), run detectors, build the result."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc
import multiprocessing
import os
import sqlite3
import time
import traceback
from operator import itemgetter

from ansible_collections.fleetguard.webshield.plugins.module_utils._logerror import (
    AH_CODE_BYTES,
    error_client,
    error_epoch,
    error_rows,
    is_noscript_text,
    parse_error_line,
    parse_fail2ban_line,
    read_fail2ban_db,
)
from ansible_collections.fleetguard.webshield.plugins.module_utils._logformat import AccessFormat, access_formats
from ansible_collections.fleetguard.webshield.plugins.module_utils._logsource import (
    MAX_LINE,
    STATE_VERSION,
    SourceError,
    discover,
    is_compressed,
    line_start,
    load_state,
    log_name,
    plan,
    read_blocks,
    read_work,
)
from ansible_collections.fleetguard.webshield.plugins.module_utils._stats import (
    Config,
    Stats,
    add_access_block,
    days_at,
    iso,
    wall_clock_readings,
)

MAX_ERROR_LINE = 65536
PARALLEL_MIN_BYTES = 48 << 20
MAX_WORKERS = 64  # the workers option's upper bound
# fail2ban writes a ban to its log and to its database at about the same time, and a run reads the log first,
# then the database: a ban written while a run reads can be in the one source that run reads and only in the
# other one the next run reads (each read on from where the previous run stopped). The state file keeps the
# bans counted in the last RECENT_BANS seconds before a run started (at most RECENT_BANS_MAX), and the next run
# counts none of them again (same jail, address, second +-1, as within one run).
RECENT_BANS = 600
RECENT_BANS_MAX = 20000


class CollectError(Exception):
    """A failure to report with fail_json (message already says what and where)."""


def add_error_block(stats, buf):
    """Error-log lines: missing_script and tripwire markers, charged to the [client]/[remote] field."""
    lines = buf.split(b"\n")
    n = len(lines) - 1
    rows = error_rows(buf, n) if max(map(len, lines)) <= MAX_ERROR_LINE else None
    if rows is None:
        _add_error_lines(stats, buf)
        return
    stats.lines += n
    stats.bytes += len(buf)
    cfg = stats.cfg
    noscript = "missing_script" in cfg.detectors
    markers = [m.encode("utf-8") for m in cfg.tripwire_markers] if "tripwire" in cfg.detectors else ()
    times, names, verdicts = stats.error_times, stats.addresses, stats.error_verdicts
    for cache, most in ((times, 100000), (names, 100000), (verdicts, 20000)):
        if len(cache) > most:
            cache.clear()
    windowed = cfg.since is not None or cfg.until is not None
    carriage = b"\r" in buf
    clients, eps, rows_of = [], [], []  # the events: client, epoch, row
    found = []  # the offences: (event, detector)
    for i, (stamp, frac, year, level, field, message, other) in enumerate(rows):
        if not stamp:
            # not an error line: a CGI's raw stderr (continued), or malformed
            line = other.rstrip(b"\r")
            if line.startswith(b"[") or not line.strip() or b"\r" in line:
                stats.malformed += 1
            else:
                stats.continued += 1
            continue
        key = stamp + b" " + year
        epoch = times.get(key, False)
        if epoch is False:
            epoch = times[key] = error_epoch(stamp, year, stats.error_minutes)
        if epoch is None:
            stats.malformed += 1
            continue
        if not field:
            continue
        if carriage:
            message = message.rstrip(b"\r")
        new_style = (
            b":" in level
            or frac != b""
            or not year
            or (message[:2] == b"AH" and AH_CODE_BYTES.match(message) is not None)
        )
        client = None
        if new_style:  # address:port, the port differs from line to line
            head, sep, port = field.rpartition(b":")
            if sep and port.isdigit():
                client = names[head]
        elif b":" not in field:  # Apache 2.2: an IPv4 address
            client = names[field]
        if client is None:
            client = error_client(field.decode("ascii"), new_style)
        if client is None:
            stats.malformed += 1
            continue
        if windowed and not cfg.in_window(epoch):
            continue
        # what the message says (a detector, or None), worked out once per distinct message
        verdict = verdicts.get(message, False)
        if verdict is False:
            text = message.rpartition(b", referer: ")[0] if b", referer: " in message else message
            verdict = None
            if noscript and is_noscript_text(text):
                verdict = "missing_script"
            elif markers and any(m in text for m in markers):
                verdict = "tripwire"
            verdicts[message] = verdict
        if verdict is not None:
            found.append((len(clients), verdict))
        clients.append(client)
        eps.append(epoch)
        rows_of.append(i)
    days, day = stats.add_events(clients, eps)
    if not found:
        return
    # The offences after the events (as add_access_columns does), then the raw lines for evidence.
    for name in ("missing_script", "tripwire"):
        mine = [k for k, detector in found if detector == name]
        if mine:
            stats.offend_rows(list(map(clients.__getitem__, mine)), name, days_at(mine, days, day))
    if cfg.sample_lines:
        found.sort()
        stats.sample_rows([clients[k] for k, _detector in found], lambda j: lines[rows_of[found[j][0]]])


def _add_error_lines(stats, buf):
    """add_error_block line by line: for the blocks its rows cannot be taken from (non-ASCII or control
    bytes, over-long lines)."""
    cfg = stats.cfg
    noscript = "missing_script" in cfg.detectors
    markers = cfg.tripwire_markers if "tripwire" in cfg.detectors else ()
    lines = buf.split(b"\n")[:-1]
    stats.lines += len(lines)
    stats.bytes += len(buf)
    for raw in lines:
        if len(raw) > MAX_ERROR_LINE:
            stats.malformed += 1
            continue
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            stats.malformed += 1
            continue
        parsed = parse_error_line(line)
        if parsed is None:
            stats.malformed += 1
            continue
        if parsed == "continuation":
            stats.continued += 1
            continue
        if parsed.client is None:
            continue
        if not cfg.in_window(parsed.epoch):
            continue
        stats.event(parsed.client, parsed.epoch)
        if noscript and parsed.is_noscript():
            stats.offend(parsed.client, "missing_script", parsed.epoch)
            stats.sample(parsed.client, line)
        elif markers and any(m in parsed.message for m in markers):
            stats.offend(parsed.client, "tripwire", parsed.epoch)
            stats.sample(parsed.client, line)


def _same_wall_clock(epoch, cache):
    """``wall_clock_readings(epoch)``: in the hour that repeats when the clocks go back, fail2ban's log (local
    time, no offset) cannot tell which of the two it was. ``cache``: a dict the caller keeps (the readings are
    worked out once per quarter hour: clocks change on one)."""
    key = ("same wall clock", epoch // 900)
    shifts = cache.get(key)
    if shifts is None:
        shifts = cache[key] = [e - epoch for e in wall_clock_readings(epoch)]
    return [epoch + d for d in shifts]


def _ban(stats, epoch, jail, addr, line=None):
    """One ban; the same ban from the log and the database (same jail, address, second +-1, either reading
    of a time in a repeated hour) counts once."""
    keys = stats.ban_keys
    same = _same_wall_clock(epoch, stats.fail2ban_cache)
    if any((jail, addr, e + delta) in keys for e in same for delta in (-1, 0, 1)):
        return
    keys.add((jail, addr, epoch))
    stats.fail2ban[jail]["bans"] += 1
    if "fail2ban" in stats.cfg.detectors and jail not in stats.cfg.fail2ban_ignore:
        stats.event(addr, epoch)
        stats.offend(addr, "fail2ban", epoch)
        stats.sample(addr, line)


def add_fail2ban_block(stats, buf):
    """fail2ban log lines: Ban counts as an offence; Found, Restore Ban and Unban are counted per jail."""
    cfg = stats.cfg
    lines = buf.split(b"\n")[:-1]
    stats.lines += len(lines)
    stats.bytes += len(buf)
    names = {"Found": "found", "Restore Ban": "restored", "Unban": "unbans", "Increase Ban": "increased"}
    if len(stats.fail2ban_cache) > 100000:
        stats.fail2ban_cache.clear()
    for raw in lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.malformed += 1
            continue
        parsed = parse_fail2ban_line(line, stats.fail2ban_cache)
        if parsed is None:
            if not line.strip():
                stats.malformed += 1
            continue
        epoch, jail, action, addr = parsed
        if not cfg.in_window(epoch):
            continue
        if action == "Ban":
            _ban(stats, epoch, jail, addr, line)
        else:
            stats.fail2ban[jail][names[action]] += 1


def _first_malformed(kind, fmt, cfg, path, start):
    """``(number, offset, line)`` of the first of 2000 lines of ``path`` from ``start`` that is counted
    as malformed (or, in an error log, is not an error line), read the way the run read it; None when there
    is none among them."""
    probe = Stats(cfg)
    number, offset = 0, start
    for data, _end in read_blocks(path, start, block=1 << 16):
        for line in data.split(b"\n")[:-1]:
            number += 1
            before = probe.malformed + probe.continued
            if kind == "access":
                add_access_block(probe, line + b"\n", fmt)
            else:
                add_error_block(probe, line + b"\n")
            if probe.malformed + probe.continued > before:
                return number, offset, line
            offset += len(line) + 1
            if number >= 2000:
                return None
    return None


def _choose_format(formats, cfg, p):
    """The first of ``formats`` that reads the most of the first lines this run reads of ``p`` (up to 64 KiB)."""
    try:
        data = next(read_blocks(p.path, p.start, block=1 << 16), (b"", 0))[0]
    except SourceError:
        return formats[0]  # reading the file fails again, and says why
    best, fewest = formats[0], None
    for fmt in formats:
        probe = Stats(cfg)
        if data:
            add_access_block(probe, data, fmt)
        if fewest is None or probe.malformed < fewest:
            best, fewest = fmt, probe.malformed
        if not fewest:
            break
    return best


def _malformed_warning(kind, fmt, cfg, p, info, *, choices=1):
    """The warning for a file most of whose lines could not be read: the wrong format, or not a log.
    ``fmt`` is the access format used for the file, ``choices`` how many access_format offered."""
    if kind == "access":
        msg = (
            "access log %s: %d of %d lines could not be read with access_format %r%s (counted in summary.malformed)"
            % (
                p.path,
                info["malformed"],
                info["lines"],
                fmt.text,
                " (the best of its %d formats)" % choices if choices > 1 else "",
            )
        )
        hint = "is this the LogFormat of the CustomLog that writes this file?"
    else:
        msg = "error log %s: %d of %d lines are not Apache error-log lines (%d counted in summary.malformed)" % (
            p.path,
            info["malformed"] + info.get("continued", 0),
            info["lines"],
            info["malformed"],
        )
        hint = "is this file an Apache ErrorLog?"
    try:
        first = _first_malformed(kind, fmt, cfg, p.path, p.start)
    except SourceError:
        first = None
    if first is not None:
        number, offset, line = first
        where = "line %d" % number if not p.start else "the line at byte %d" % offset
        if line == b"\0":
            text = "(a line over %d bytes)" % MAX_LINE
        else:
            text = repr(line[:200].decode("utf-8", "backslashreplace")) + (" (cut)" if len(line) > 200 else "")
        msg += "; %s: %s" % (where, text)
    return msg + "; " + hint


def _read_file(stats, job, info):
    """Read ``job`` = (kind, access format, path, start, end) into ``stats``; returns the end offset."""
    kind, fmt, path, start, end = job
    before = (stats.lines, stats.bytes, stats.malformed, stats.continued)
    offset = start
    if kind == "access":
        stats.begin_log(log_name(path))
    for data, pos in read_blocks(path, start, end):
        offset = pos
        if kind == "access":
            add_access_block(stats, data, fmt)
        elif kind == "error":
            add_error_block(stats, data)
        else:
            add_fail2ban_block(stats, data)
    info["lines"] += stats.lines - before[0]
    info["bytes"] += stats.bytes - before[1]
    info["malformed"] += stats.malformed - before[2]
    if kind == "error":
        info["continued"] = info.get("continued", 0) + stats.continued - before[3]
    return offset


def _worker(conn, cfg, fmt_texts, ranges):
    """Child process: read byte ranges of access and error logs (``(kind, path, start, end)``; each access log
    with its format, ``fmt_texts``: path -> format text) into its own Stats and send it back."""
    try:
        stats = Stats(cfg)
        stats.flood_head = {}
        formats = {}
        infos = []
        for kind, path, start, end in ranges:
            fmt = None
            if kind == "access":
                text = fmt_texts[path]
                if text not in formats:
                    formats[text] = AccessFormat(text)
                fmt = formats[text]
            info = {"lines": 0, "bytes": 0, "malformed": 0}
            end_off = _read_file(stats, (kind, fmt, path, start, end), info)
            infos.append(((kind, path), end_off, info))
        stats.drop_caches()
        # The large containers go one at a time, so the parent holds at most one of them besides its own
        # statistics while it merges (the peak memory of a two-process run).
        parts = stats.split_parts()
        conn.send(("ok", stats, infos))
        while parts:
            conn.send(parts.pop(0))
    except SourceError as exc:
        conn.send(("source", exc.path, exc.reason))
    except Exception:  # noqa: BLE001 - reported to the parent, which fails cleanly
        conn.send(("bug", traceback.format_exc(), None))
    finally:
        conn.close()


def usable_cpus():
    """The CPUs this process may run on (more processes than that only compete for them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _split_work(todo, weights, n):
    """Cut the files of ``todo`` (``(kind, path, start, size, compressed)``) into ``n`` runs of about equal
    weight, in order: ``[[(kind, path, start, end)]]`` (``end`` None: to the end of the file). Plain files are
    cut at a line start; a compressed file goes whole to one run. A run may be empty."""
    total = sum(weights)
    bounds = [total * (k + 1) // n for k in range(n - 1)]  # the weight where run k ends
    runs = [[] for _i in range(n)]
    k, acc = 0, 0
    for (kind, path, start, _size, packed), weight in zip(todo, weights):
        seg = start
        while not packed and k < n - 1 and bounds[k] < acc + weight:
            if bounds[k] > acc:
                cut = line_start(path, start + (bounds[k] - acc))
                if cut > seg:
                    runs[k].append((kind, path, seg, cut))
                    seg = cut
            k += 1
        runs[k].append((kind, path, seg, None))
        acc += weight
        while k < n - 1 and bounds[k] <= acc:
            k += 1
    return runs


def _parallel_read(stats, fmt_of, planned, infos, workers):
    """Read access and error logs (``planned``: ``(kind, Planned)`` in that order; each access log with its
    format, ``fmt_of``: path -> AccessFormat), the later parts of the bytes by child processes (``workers``
    processes in all, at most one per usable CPU and per PARALLEL_MIN_BYTES / 2 of input). Returns
    (end offsets, processes used)."""
    todo = [(kind, p.path, p.start, p.entry["size"], is_compressed(p.path)) for kind, p in planned if not p.skip]
    # Work is estimated in the bytes of plain files (an error-log byte costs about what an access-log byte
    # does); a compressed file holds more than its size. One process does not need it.
    weights = [read_work(path, size, start) for _kind, path, start, size, _packed in todo] if workers > 1 else []
    total = sum(weights)
    ends = {}
    if workers < 2 or total < PARALLEL_MIN_BYTES:
        for kind, path, start, _size, _packed in todo:
            ends[kind, path] = _read_file(stats, (kind, fmt_of.get(path), path, start, None), infos[kind, path])
        return ends, 1
    runs = _split_work(todo, weights, min(workers, usable_cpus(), total // max(1, PARALLEL_MIN_BYTES // 2)))
    # The parent reads the first run (the oldest lines); a child each of the others, in order.
    ctx = multiprocessing.get_context("fork")
    children = []  # (process, connection), in the order of their runs
    done = False
    try:
        for run in runs[1:]:
            if run:
                parent_conn, child_conn = ctx.Pipe(duplex=False)
                texts = dict((path, fmt_of[path].text) for kind, path, _s, _e in run if kind == "access")
                proc = ctx.Process(target=_worker, args=(child_conn, stats.cfg, texts, run))
                proc.start()
                child_conn.close()
                children.append((proc, parent_conn))
        for kind, path, start, end in runs[0]:
            ends[kind, path] = _read_file(stats, (kind, fmt_of.get(path), path, start, end), infos[kind, path])
        stats.drop_caches()  # room for the children's results
        for proc, conn in children:
            _merge_child(stats, proc, conn, infos, ends)
        done = True
    finally:
        for proc, conn in children:
            if not done and proc.is_alive():
                proc.terminate()  # a failure: the other children's results are not wanted
            conn.close()
            proc.join()
    return ends, 1 + len(children)


def _merge_child(stats, proc, conn, infos, ends):
    """Receive one child's statistics (its large containers one at a time) and merge them into ``stats``."""
    try:
        msg = conn.recv()
        if msg[0] == "ok":
            for _i in range(len(stats.PARTS)):
                name, part = conn.recv()
                stats.merge_part(name, part, msg[1])
                del part
    except EOFError:
        proc.join()
        msg = ("bug", "worker process ended without a result (exit code %s)" % proc.exitcode, None)
    if msg[0] == "source":
        raise SourceError(msg[1], msg[2])
    if msg[0] == "bug":
        raise CollectError("offender_stats worker failed: %s" % msg[1])
    child, child_infos = msg[1], msg[2]
    del msg
    stats.merge(child)
    del child
    # Each process tracked up to track_max clients: back to track_max after each merge.
    stats.prune_tracked()
    for key, end_off, info in child_infos:  # key: (kind, path)
        for name, value in info.items():
            infos[key][name] = infos[key].get(name, 0) + value
        ends[key] = end_off


def _recent_bans(value):
    """The ``(jail, address, second)`` bans of a state file's ``fail2ban_recent`` (an entry that is not what the
    module writes is left out: at worst that ban may count again)."""
    bans = set()
    for item in value if isinstance(value, list) else ():
        if (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and isinstance(item[2], int)
            and not isinstance(item[2], bool)
        ):
            bans.add(tuple(item))
    return bans


def _db_mark(mark, path):
    """``(second, {(jail, address)})`` of the state file's mark for the fail2ban database ``path``, or None
    (no mark, another database's, or not what this module writes: the whole database is read then)."""
    try:
        if mark.get("path") == path and isinstance(mark["time"], int):
            return mark["time"], set((str(jail), str(addr)) for jail, addr in mark.get("seen") or ())
    except (AttributeError, KeyError, TypeError, ValueError):
        pass
    return None


def collect(opts):
    """Run offender_stats over ``opts`` (the module parameters).

    Returns ``(result, old_state, new_state, warnings)``; the caller decides whether to save the state.
    """
    # The statistics are millions of small tuples and no reference cycles: the cyclic garbage
    # collector would only walk them again and again (about a tenth of the run time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _collect(opts)
    finally:
        if enabled:
            gc.enable()


def _collect(opts):
    started = time.time()
    warnings = []
    cfg = Config(
        detectors=opts["detectors"],
        script_patterns=opts["script_patterns"],
        script_statuses=opts["script_statuses"],
        redirect_paths=opts["redirect_paths"],
        redirect_allow_hosts=opts["redirect_allow_hosts"],
        flood_windows=[(w["seconds"], w["requests"]) for w in opts["flood_windows"]],
        tripwire_paths=opts["tripwire_paths"],
        tripwire_markers=opts["tripwire_markers"],
        fail2ban_ignore_jails=opts["fail2ban_ignore_jails"],
        track_max=max(2000, 5 * opts["top"]),
        sample_lines=opts.get("sample_lines", 5),
        day_pages=opts.get("top_day_pages", 0),
        detail=opts.get("client_detail", True),
        since=opts.get("since_epoch"),
        until=opts.get("until_epoch"),
    )
    formats = access_formats(opts["access_format"])
    stats = Stats(cfg)
    state = load_state(opts["state_file"]) if opts.get("state_file") else {}
    old_files = state.get("files", []) if state else []
    if state:
        stats.ban_keys.update(_recent_bans(state.get("fail2ban_recent")))
    new_entries = []
    processes = 1  # that read the access and error logs
    files_out = []
    planned_of = {}  # kind -> its files
    for kind, key in (("access", "access_logs"), ("error", "error_logs"), ("fail2ban", "fail2ban_logs")):
        patterns = opts.get(key) or []
        if not patterns:
            continue
        found, missing = discover(patterns)
        for pattern in missing:
            msg = "%s: %r matches no file" % (key, pattern)
            if opts.get("missing") == "fail":
                raise CollectError(msg + " (missing=fail); check the path or set missing=warn")
            warnings.append(msg)
        planned_of[kind] = plan(found, {"files": [o for o in old_files if o.get("kind") == kind]})
    # per (kind, path): a file may be given as an access log and as an error log
    infos = dict(((k, p.path), {"lines": 0, "bytes": 0, "malformed": 0}) for k, ps in planned_of.items() for p in ps)
    fmt_of = {}  # access log -> its format (the first of several that reads its lines best)
    for p in planned_of.get("access", []):
        if not p.skip:
            fmt_of[p.path] = formats[0] if len(formats) == 1 else _choose_format(formats, cfg, p)
    # Access and error logs share the processes; fail2ban's log (bans are matched with its database) is
    # read here afterwards.
    shared = [(kind, p) for kind in ("access", "error") for p in planned_of.get(kind, [])]
    ends, processes = _parallel_read(stats, fmt_of, shared, infos, opts.get("workers", 2))
    for p in planned_of.get("fail2ban", []):
        if not p.skip:
            ends["fail2ban", p.path] = _read_file(
                stats, ("fail2ban", None, p.path, p.start, None), infos["fail2ban", p.path]
            )
    for kind in ("access", "error", "fail2ban"):
        for p in planned_of.get(kind, []):
            entry = dict(p.entry)
            entry["kind"] = kind
            end_off = ends.get((kind, p.path), p.start)
            entry["offset"] = end_off
            # Read to the end: a rerun may skip the file while its size and mtime stay the same.
            entry["complete"] = p.skip or is_compressed(p.path) or end_off == entry["size"]
            new_entries.append(entry)
            info = infos[kind, p.path]
            out = {
                "path": p.path,
                "kind": kind,
                "start": p.start,
                "offset": end_off,
                "lines": info["lines"],
                "bytes": info["bytes"],
                "malformed": info["malformed"],
                "status": "unchanged" if p.skip else "read",
            }
            if kind == "access":
                out["format"] = fmt_of[p.path].text if p.path in fmt_of else None
            files_out.append(out)
            # most lines unreadable, or an "error log" of 20 lines or more without one error line (a few
            # lines of a CGI's raw stderr can be all a run reads): the wrong format or the wrong file
            unread = info["malformed"] + info.get("continued", 0)
            foreign = info["lines"] >= 20 and unread == info["lines"]
            if kind != "fail2ban" and (info["malformed"] * 2 > info["lines"] or foreign):
                warnings.append(_malformed_warning(kind, fmt_of.get(p.path), cfg, p, info, choices=len(formats)))
    # The newest ban read from fail2ban's database, for the state file (kept as it was when it is not read)
    db_mark = state.get("fail2ban_db") if state else None
    if opts.get("fail2ban_db"):
        path = opts["fail2ban_db"]
        if not os.path.exists(path):
            msg = "fail2ban_db: %s does not exist" % path
            if opts.get("missing") == "fail":
                raise CollectError(msg + " (missing=fail)")
            warnings.append(msg)
        else:
            # With a state file, the bans up to the newest second the previous run read were counted then.
            after = _db_mark(db_mark, path)
            skipped = []
            try:
                rows = read_fail2ban_db(path, cfg.since, cfg.until, after, skipped)
            except (sqlite3.Error, OSError) as exc:
                raise SourceError(path, "cannot read fail2ban database: %s" % exc)
            for epoch, jail, addr in rows:
                _ban(stats, epoch, jail, addr)
            if rows:
                newest = rows[-1][0]
                seen = set(after[1]) if after is not None and after[0] == newest else set()
                seen.update(row[1:] for row in rows if row[0] == newest)
                db_mark = {"path": path, "time": newest, "seen": sorted(list(pair) for pair in seen)}
            files_out.append(
                {
                    "path": path,
                    "kind": "fail2ban_db",
                    "start": 0,
                    "offset": 0,
                    "lines": len(rows) + len(skipped),
                    "bytes": 0,
                    "malformed": len(skipped),
                    "status": "read",
                }
            )
            if skipped:
                jail, addr, value = skipped[0]
                warnings.append(
                    "fail2ban_db: %s: %d bans skipped: their timeofban is not a time in the years 1900-9999 (first: "
                    "jail %s, %s, timeofban %r)" % (path, len(skipped), jail, addr, value)
                )
    # Reading is over: the parsing caches and the per-day bookkeeping make room for the result.
    stats.drop_caches()
    stats.settle_days()
    stats.flood_tail = ([], [], [])
    result = stats.result(
        top=opts["top"],
        prefixes=opts["prefixes"],
        prefixes6=opts["prefixes6"],
        top_pages=opts["top_pages"],
        top_networks=opts["top_networks"],
    )
    if stats.bad_clients:
        warnings.append(
            "%d lines had a client field that is not an IP address (use %%a, not %%h with HostnameLookups On); "
            "counted as malformed" % stats.bad_clients
        )
    result["summary"] = {
        "files": sum(1 for f in files_out if f["status"] == "read"),
        "lines": stats.lines,
        "bytes": stats.bytes,
        "malformed": stats.malformed,
        "matched": stats.matched,
        "seconds": round(time.time() - started, 3),
        "processes": processes,
        "first": iso(stats.tmin),
        "last": iso(stats.tmax),
    }
    result["files"] = files_out
    new_state = {"version": STATE_VERSION, "files": new_entries}
    if db_mark is not None:
        new_state["fail2ban_db"] = db_mark
    recent = sorted((ban for ban in stats.ban_keys if ban[2] >= started - RECENT_BANS), key=itemgetter(2, 0, 1))
    if recent:
        new_state["fail2ban_recent"] = [list(ban) for ban in recent[-RECENT_BANS_MAX:]]
    return result, state, new_state, warnings
