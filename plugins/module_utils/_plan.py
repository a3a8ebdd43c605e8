# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet blocklist planning: merge every server's offender_stats, promote to networks, protect, expire.

Pure Python, no Ansible import: the ``blocklist_plan`` action plugin gathers its inputs (hostvars, facts,
options) and calls :func:`build_plan`; unit tests call it directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import datetime
import gc
import json
import os
import re
import shutil
import socket
import tempfile
import time

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr, _mmdb

STATE_VERSION = 1

# Thresholds a level gets when it is switched on without its own values. Levels not listed in the
# ``levels`` option are off. "address" means single addresses (IPv4 and IPv6).
LEVEL_DEFAULTS = {
    "address": {"min_offenses": 5, "min_hits": 0, "min_hosts": 1, "min_servers": 1},
    "24": {"min_offenses": 0, "min_hits": 50, "min_hosts": 30, "min_servers": 1},
    "16": {"min_offenses": 0, "min_hits": 1000, "min_hosts": 300, "min_servers": 1},
    "8": {"min_offenses": 0, "min_hits": 20000, "min_hosts": 3000, "min_servers": 1},
    "64": {"min_offenses": 0, "min_hits": 50, "min_hosts": 5, "min_servers": 1},
    "48": {"min_offenses": 0, "min_hits": 500, "min_hosts": 30, "min_servers": 1},
}
DEFAULT_LEVELS = {"address": {"min_offenses": 5}, "24": {"min_hits": 50, "min_hosts": 30}}
LEVEL_VERSION = {"24": 4, "16": 4, "8": 4, "64": 6, "48": 6}
THRESHOLD_KEYS = ("min_offenses", "min_hits", "min_hosts", "min_servers")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?)?\s*(Z|z|[+-]\d\d:?\d\d)?$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PlanError(ValueError):
    """A plan that must not be pushed; the message says why and how to fix it."""


def parse_duration(value):
    """``3600``, ``"90m"``, ``"12h"``, ``"30d"``, ``"2w"`` -> seconds; 0 means never expire."""
    if isinstance(value, bool):
        raise PlanError("duration must be a number of seconds or like 30d, got %r" % (value,))
    if isinstance(value, (int, float)):
        return int(value)
    match = _DURATION.match(str(value))
    if not match:
        raise PlanError("duration must be a number of seconds or like 90m, 12h, 30d, 2w; got %r" % (value,))
    return int(match.group(1)) * _UNITS[match.group(2)]


def iso(ts):
    if ts is None:
        return None
    stamp = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(ts))
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """ISO 8601 time (``2026-01-02T03:04:05Z``, ``+09:00`` offsets, no zone = UTC) or epoch -> epoch seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    text = str(text).strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return int(float(text))
    match = _ISO.match(text)
    if not match:
        raise PlanError("cannot read the time %r (use ISO 8601 like 2026-01-02T03:04:05Z or epoch seconds)" % (text,))
    year, month, day, hour, minute, second = (int(g or 0) for g in match.group(1, 2, 3, 4, 5, 6))
    try:
        stamp = datetime.datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise PlanError("cannot read the time %r: %s" % (text, exc))
    seconds = int((stamp - datetime.datetime(1970, 1, 1)).total_seconds())
    zone = match.group(7)
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        seconds -= sign * (hh * 3600 + mm * 60)
    return seconds


def _time_text(value):
    """Evidence times are kept as ISO text; epoch numbers are converted."""
    if value is None or isinstance(value, str):
        return value
    try:
        return iso(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _not_later(this, that):
    """Whether the time text ``this`` is not later than ``that``. Servers write their local time with its
    offset (``+01:00``) or ``Z``: texts with the same offset compare as text, others as the instants they name."""
    if len(this) == len(that) and (this[-6:] == that[-6:] or this[-1:] == that[-1:] == "Z"):
        return this <= that
    try:
        return parse_time(this) <= parse_time(that)
    except (PlanError, TypeError, ValueError):
        return this <= that


def _tmin(a, b):
    if a is None:
        return b
    if b is None or _not_later(a, b):
        return a
    return b


def _tmax(a, b):
    if a is None:
        return b
    if b is None or _not_later(b, a):
        return a
    return b


def _count(value):
    """A count from the statistics: a number, or 0 for what is not one (a server's result is not trusted blindly)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _offense_count(value):
    if isinstance(value, dict):
        total = 0
        for n in value.values():
            if isinstance(n, int):
                total += n
        return total
    return _count(value)


def normalize_levels(levels, broadest_prefix=16, broadest_prefix6=48):
    """Fill thresholds from LEVEL_DEFAULTS and refuse unknown levels or levels broader than policy."""
    if levels is None:
        levels = DEFAULT_LEVELS
    if not isinstance(levels, dict):
        raise PlanError("levels must be a mapping like {'address': {'min_offenses': 5}, '24': {}}, got %r" % (levels,))
    out = {}
    for key, conf in levels.items():
        key = str(key)
        if key not in LEVEL_DEFAULTS:
            raise PlanError("unknown level %r; known levels: %s" % (key, ", ".join(sorted(LEVEL_DEFAULTS))))
        if conf is False or (isinstance(conf, dict) and conf.get("enabled") is False):
            continue
        if conf is None or conf is True:
            conf = {}
        if not isinstance(conf, dict):
            raise PlanError("level %s: thresholds must be a mapping, got %r" % (key, conf))
        merged = dict(LEVEL_DEFAULTS[key])
        for name, value in conf.items():
            if name == "enabled":
                continue
            if name not in THRESHOLD_KEYS:
                raise PlanError("level %s: unknown threshold %r; use %s" % (key, name, ", ".join(THRESHOLD_KEYS)))
            try:
                merged[name] = int(value)
            except (TypeError, ValueError):
                raise PlanError("level %s: %s must be an integer, got %r" % (key, name, value))
        if key in LEVEL_VERSION:
            version = LEVEL_VERSION[key]
            limit = broadest_prefix if version == 4 else broadest_prefix6
            if int(key) < limit:
                raise PlanError(
                    "level /%s is broader than the policy allows (broadest_prefix%s: %d); set broadest_prefix%s: %s "
                    "to allow it" % (key, "" if version == 4 else "6", limit, "" if version == 4 else "6", key)
                )
        out[key] = merged
    return out


class Fleet:
    """Every server's offender_stats merged: per address and per network, over the whole fleet."""

    def __init__(self, stats_by_host, prefixes):
        self.servers = []
        self.warnings = []
        self.addrs = {4: {}, 6: {}}  # value -> [hits, offenses, server mask, first_seen, last_seen]
        self.nets = {}  # prefix -> {net value: [hits, offenses, hosts, offending_hosts, server mask]}
        self.clients_capped = False
        self.bad_addresses = 0
        self._names = {}
        for prefix in prefixes:
            self.nets[prefix] = {}
        for host in sorted(stats_by_host):
            result = stats_by_host[host]
            if not isinstance(result, dict):
                self.warnings.append("%s: offender_stats result is not a mapping, skipped" % host)
                continue
            if result.get("failed") or result.get("skipped"):
                self.warnings.append("%s: offender_stats failed or was skipped there, left out of the plan" % host)
                continue
            self._add_host(host, result)

    def _add_host(self, host, result):
        bit = 1 << len(self.servers)
        self.servers.append(host)
        clients = result.get("clients") or {}
        if not isinstance(clients, dict):
            self.warnings.append("%s: clients is not a mapping, skipped" % host)
            clients = {}
        total = result.get("clients_total")
        if isinstance(total, int) and total > len(clients):
            self.clients_capped = True
        networks = result.get("networks") or {}
        derive = []  # prefixes this host has no network statistics for: derive them from its clients
        for prefix in self.nets:
            table = networks.get(str(prefix)) if isinstance(networks, dict) else None
            if isinstance(table, dict):
                self._add_networks(prefix, table, bit)
            else:
                derive.append(prefix)
        parse = _cidr.parse_address
        pton = socket.inet_pton
        af4 = socket.AF_INET
        from_bytes = int.from_bytes
        addrs = self.addrs
        table4 = addrs[4]
        nets = self.nets
        derive4 = [(p, 32 - p, nets[p]) for p in derive if p <= 32 and LEVEL_VERSION.get(str(p)) == 4]
        derive6 = [(p, 128 - p, nets[p]) for p in derive if LEVEL_VERSION.get(str(p)) == 6]
        for addr, info in clients.items():
            try:
                value = from_bytes(pton(af4, addr), "big")
                version = 4
            except (OSError, ValueError, TypeError):
                try:
                    version, value = parse(addr)
                except _cidr.CidrError:
                    self.bad_addresses += 1
                    continue
            if isinstance(info, dict):
                hits = _count(info.get("hits"))
                off = info.get("offenses")
                if isinstance(off, dict):
                    try:
                        offenses = sum(off.values())
                    except TypeError:
                        offenses = _offense_count(off)
                else:
                    offenses = _offense_count(off)
                first = info.get("first_seen")
                last = info.get("last_seen")
                if first is not None and not isinstance(first, str):
                    first = _time_text(first)
                if last is not None and not isinstance(last, str):
                    last = _time_text(last)
            else:
                hits, offenses, first, last = _count(info), 0, None, None
            table = table4 if version == 4 else addrs[6]
            entry = table.get(value)
            if entry is None:
                table[value] = [hits, offenses, bit, first, last]
            else:
                entry[0] += hits
                entry[1] += offenses
                entry[2] |= bit
                entry[3] = _tmin(entry[3], first)
                entry[4] = _tmax(entry[4], last)
            for _p, shift, ntable in derive4 if version == 4 else derive6:
                key = value >> shift
                agg = ntable.get(key)
                if agg is None:
                    ntable[key] = [hits, offenses, 0, 0, bit]
                else:
                    agg[0] += hits
                    agg[1] += offenses
                    agg[4] |= bit

    def _add_networks(self, prefix, table, bit):
        ntable = self.nets[prefix]
        version = LEVEL_VERSION.get(str(prefix), 4)
        shift = _cidr.BITS[version] - prefix
        for cidr, info in table.items():
            try:
                nversion, start, _end = _cidr.parse_cidr(cidr)
            except _cidr.CidrError:
                self.bad_addresses += 1
                continue
            if nversion != version or not isinstance(info, dict):
                continue
            key = start >> shift
            hits = _count(info.get("hits"))
            offenses = _offense_count(info.get("offenses"))
            hosts = info.get("hosts") or 0
            offending = info.get("offending_hosts") or 0
            hosts = len(hosts) if isinstance(hosts, (list, dict)) else _count(hosts)
            offending = len(offending) if isinstance(offending, (list, dict)) else _count(offending)
            agg = ntable.get(key)
            if agg is None:
                ntable[key] = [hits, offenses, hosts, offending, bit]
            else:
                agg[0] += hits
                agg[1] += offenses
                agg[2] = max(agg[2], hosts)  # one server's count is a lower bound of the fleet's
                agg[3] = max(agg[3], offending)
                agg[4] |= bit

    def finish(self):
        """Distinct (offending) hosts per network over the whole fleet, from the merged clients."""
        for prefix, ntable in self.nets.items():
            version = LEVEL_VERSION[str(prefix)]
            shift = _cidr.BITS[version] - prefix
            hosts = {}
            offending = {}
            for value, entry in self.addrs[version].items():
                key = value >> shift
                hosts[key] = hosts.get(key, 0) + 1
                if entry[1] > 0:
                    offending[key] = offending.get(key, 0) + 1
            for key, agg in ntable.items():
                agg[2] = max(agg[2], hosts.get(key, 0))
                agg[3] = max(agg[3], offending.get(key, 0))

    def server_names(self, mask):
        mask_in = mask
        cached = self._names.get(mask)
        if cached is not None:
            return list(cached)
        out = []
        i = 0
        while mask:
            if mask & 1:
                out.append(self.servers[i])
            mask >>= 1
            i += 1
        self._names[mask_in] = out
        return list(out)


def _passes(thr, hits, offenses, hosts, servers):
    return (
        hits >= thr["min_hits"]
        and offenses >= thr["min_offenses"]
        and hosts >= thr["min_hosts"]
        and servers >= thr["min_servers"]
    )


def _popcount(mask):
    return bin(mask).count("1")


def candidates(fleet, levels):
    """Entries whose evidence passes a level's thresholds: ``{cidr: evidence}``."""
    found = {}
    net_ranges = {4: [], 6: []}
    for key in sorted((k for k in levels if k != "address"), key=int):
        thr = levels[key]
        prefix = int(key)
        version = LEVEL_VERSION[key]
        shift = _cidr.BITS[version] - prefix
        for netkey, agg in fleet.nets.get(prefix, {}).items():
            hits, offenses, hosts, offending, mask = agg
            if offending < 1 or not _passes(thr, hits, offenses, offending, _popcount(mask)):
                continue
            start = netkey << shift
            end = start + (1 << shift) - 1
            cidr = _cidr.format_cidr(version, start, prefix)
            found[cidr] = {
                "version": version,
                "start": start,
                "end": end,
                "reason": "network/%s" % key,
                "hits": hits,
                "offenses": offenses,
                "hosts": offending,
                "addresses_seen": hosts,
                "servers": fleet.server_names(mask),
                "first_seen": None,
                "last_seen": None,
            }
            net_ranges[version].append((start, end))
    covering = _cidr.RangeSet.from_ranges(net_ranges)
    # first/last seen of each network from its addresses
    if found:
        by_prefix = {}
        for ev in found.values():
            prefix = int(ev["reason"].split("/")[1])
            by_prefix.setdefault((ev["version"], prefix), {})[ev["start"] >> (_cidr.BITS[ev["version"]] - prefix)] = ev
        for (version, prefix), evs in by_prefix.items():
            shift = _cidr.BITS[version] - prefix
            for value, entry in fleet.addrs[version].items():
                ev = evs.get(value >> shift)
                if ev is not None and entry[1] > 0:
                    ev["first_seen"] = _tmin(ev["first_seen"], entry[3])
                    ev["last_seen"] = _tmax(ev["last_seen"], entry[4])
    thr = levels.get("address")
    if thr:
        min_off = max(thr["min_offenses"], 1)
        min_hits = thr["min_hits"]
        need_servers = thr["min_servers"] > 1
        for version in (4, 6):
            bits = _cidr.BITS[version]
            for value, entry in fleet.addrs[version].items():
                hits, offenses, mask, first, last = entry
                if offenses < min_off or hits < min_hits:
                    continue
                if need_servers and _popcount(mask) < thr["min_servers"]:
                    continue
                if covering and covering.contains(version, value):
                    continue  # already inside a planned network: its evidence is there
                cidr = _cidr.format_cidr(version, value, bits)
                found[cidr] = {
                    "version": version,
                    "start": value,
                    "end": value,
                    "reason": "address",
                    "hits": hits,
                    "offenses": offenses,
                    "hosts": 1,
                    "addresses_seen": 1,
                    "servers": fleet.server_names(mask),
                    "first_seen": first,
                    "last_seen": last,
                }
    return found


class Protection:
    """Protected ranges (never planned) and an optional country check through a .mmdb reader."""

    def __init__(self, cidrs_by_source, geo=None, countries=()):
        self.sources = []  # (source name, RangeSet)
        errors = []
        for source, cidrs in cidrs_by_source:
            good = []
            for text in cidrs or ():
                try:
                    _cidr.parse_cidr(text)
                    good.append(text)
                except _cidr.CidrError:
                    errors.append("%s: %r is not an address or network" % (source, text))
            self.sources.append((source, _cidr.RangeSet(good)))
        if errors:
            raise PlanError("protected addresses could not be read: %s" % "; ".join(errors))
        raw = {4: [], 6: []}
        for _source, rs in self.sources:
            raw[4].extend(rs.ranges[4])
            raw[6].extend(rs.ranges[6])
        self.all = _cidr.RangeSet.from_ranges(raw)
        self.geo = geo
        self.countries = set(c.upper() for c in countries or ())

    def holes(self, version, start, end):
        """Protected parts of ``start..end``: ``[(start, end, why)]``."""
        out = []
        if (self.geo is None or not self.countries) and not self.all.overlapping(version, start, end):
            return out
        for source, rs in self.sources:
            for s, e in rs.overlapping(version, start, end):
                out.append((s, e, source))
        if self.geo is not None and self.countries:
            prefix = _cidr.prefix_of(version, start, end)
            bits = _cidr.BITS[version]
            for nstart, plen, record in self.geo.networks_within(version, start, prefix):
                code = _mmdb.country_of(record)
                if code in self.countries:
                    out.append((nstart, nstart + (1 << (bits - plen)) - 1, "country %s" % code))
        return out

    def why(self, version, start, end):
        return sorted(set(h[2] for h in self.holes(version, start, end)))


def load_state(path):
    """Read the state file; a missing file is an empty state; a corrupt one fails with its name."""
    empty = {"version": STATE_VERSION, "entries": {}, "unbanned": {}, "blocklist": {"ipv4": [], "ipv6": []}}
    if not path or not os.path.exists(path):
        return empty
    try:
        with open(path) as handle:
            state = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise PlanError(
            "cannot read the blocklist state file %s: %s (the previous version is kept as %s.prev)" % (path, exc, path)
        )
    if not isinstance(state, dict) or not isinstance(state.get("entries"), dict):
        raise PlanError("%s is not a blocklist state file (no 'entries' mapping)" % path)
    for key, value in empty.items():
        state.setdefault(key, value)
    problem = _state_problem(state)
    if problem:
        raise PlanError(
            "%s is not a blocklist state file as this module writes it: %s (the previous version is kept as %s.prev)"
            % (path, problem, path)
        )
    return state


# The fields of a state file's entries and unbans, and what each must be (a field may be missing)
_TEXT = (str, type(None))
_ENTRY_FIELDS = {
    "reason": str,
    "hits": int,
    "offenses": int,
    "hosts": int,
    "servers": list,
    "first_seen": _TEXT,
    "last_seen": _TEXT,
    "added": _TEXT,
    "confirmed": _TEXT,
    "expires": _TEXT,
    "manual": (dict, type(None)),
}
_UNBAN_FIELDS = {"by": _TEXT, "at": _TEXT, "comment": _TEXT, "expires": _TEXT}
_TIMES = ("first_seen", "last_seen", "added", "confirmed", "expires", "at")


def _fields_problem(where, item, fields):
    if not isinstance(item, dict):
        return "%s is %s, not a mapping" % (where, json.dumps(item))
    for key, kinds in fields.items():
        if key not in item:
            continue
        value = item[key]
        if not isinstance(value, kinds) or (kinds is int and isinstance(value, bool)):
            return "%s.%s is %s" % (where, key, json.dumps(value))
        if key in _TIMES and value is not None:
            try:
                parse_time(value)
            except PlanError:
                return "%s.%s is %s, not a time" % (where, key, json.dumps(value))
    return None


def _state_problem(state):
    """What is wrong with a loaded state file (None: nothing), as ``where is what``."""
    for name, fields in (("entries", _ENTRY_FIELDS), ("unbanned", _UNBAN_FIELDS)):
        table = state[name]
        if not isinstance(table, dict):
            return "%s is %s, not a mapping" % (name, json.dumps(table))
        for cidr, item in table.items():
            where = "%s[%s]" % (name, json.dumps(cidr))
            problem = _fields_problem(where, item, fields)
            if problem:
                return problem
            if name == "unbanned":
                try:
                    _cidr.parse_cidr(cidr)
                except _cidr.CidrError:
                    return "%s is not an address or network" % where
                continue
            servers = item.get("servers", [])
            if not all(isinstance(server, str) for server in servers):
                return "%s.servers is %s" % (where, json.dumps(servers))
            problem = _fields_problem(where + ".manual", item.get("manual") or {}, _UNBAN_FIELDS)
            if problem:
                return problem
    blocklist = state["blocklist"]
    if not isinstance(blocklist, dict) or not all(
        isinstance(blocklist.get(family, []), list) and all(isinstance(c, str) for c in blocklist.get(family, []))
        for family in ("ipv4", "ipv6")
    ):
        return "blocklist is %s, not {ipv4: [networks], ipv6: [networks]}" % json.dumps(blocklist)
    return None


def save_state(path, state):
    """Atomic write (temporary file in the same directory + os.replace); the old file is kept as .prev."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    fd, tmp = tempfile.mkstemp(prefix=".blocklist-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            prev = path + ".prev"
            shutil.copy2(path, prev + ".tmp")
            os.replace(prev + ".tmp", prev)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


DEFAULT_OPTIONS = {
    "levels": None,
    "broadest_prefix": 16,
    "broadest_prefix6": 48,
    "max_entries": 65536,
    "expire_after": "30d",
    "on_protected": "split",
    "ban": [],
    "unban": [],
    "ban_expire_after": "0",
    "who": None,
    "comment": None,
}


def _flat(blocklist):
    return list(blocklist.get("ipv4", [])) + list(blocklist.get("ipv6", []))


def build_plan(stats_by_host, protection, options=None, state=None, now=None):
    """Make the plan. Returns ``(result, new_state)``; raises PlanError when nothing must be pushed.

    The cyclic garbage collector is paused meanwhile: the plan makes millions of small, acyclic objects, and
    with a large live heap every full collection would walk all of them again (3-4x slower at 1M addresses).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_plan(stats_by_host, protection, options, state, now)
    finally:
        if enabled:
            gc.enable()


def _build_plan(stats_by_host, protection, options, state, now):
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options or {})
    now = int(now if now is not None else time.time())
    broad4 = int(opts["broadest_prefix"])
    broad6 = int(opts["broadest_prefix6"])
    if not 1 <= broad4 <= 32 or not 1 <= broad6 <= 128:
        raise PlanError("broadest_prefix must be 1..32 and broadest_prefix6 1..128, got %s and %s" % (broad4, broad6))
    levels = normalize_levels(opts["levels"], broad4, broad6)
    expire_after = parse_duration(opts["expire_after"])
    ban_expire = parse_duration(opts["ban_expire_after"])
    if opts["on_protected"] not in ("split", "drop"):
        raise PlanError("on_protected must be split or drop, got %r" % (opts["on_protected"],))
    state = state or load_state(None)
    prev_entries = state.get("entries", {})
    unbanned = dict(state.get("unbanned") or {})
    warnings = []
    who = opts["who"] or "unknown"

    # unbans: drop matching entries, remember them as holes until they expire
    unban_list = []
    for text in opts["unban"] or ():
        try:
            cidr = _cidr.normalize(text)
        except _cidr.CidrError as exc:
            raise PlanError("unban: %s" % exc)
        unban_list.append(cidr)
        unbanned[cidr] = {
            "by": who,
            "at": iso(now),
            "comment": opts["comment"],
            "expires": iso(now + expire_after) if expire_after else None,
        }
    unbanned = {
        c: u for c, u in unbanned.items() if not u.get("expires") or parse_time(u["expires"]) > now or c in unban_list
    }
    unban_rs = _cidr.RangeSet(list(unbanned))

    prefixes = sorted(int(k) for k in levels if k != "address")
    fleet = Fleet(stats_by_host or {}, prefixes)
    fleet.finish()
    warnings.extend(fleet.warnings)
    if fleet.bad_addresses:
        warnings.append("%d client addresses in the statistics were unreadable and ignored" % fleet.bad_addresses)
    found = candidates(fleet, levels)

    # manual bans: refused outright when they touch a protected range
    for text in opts["ban"] or ():
        try:
            version, start, end = _cidr.parse_cidr(text)
            cidr = _cidr.normalize(text)
        except _cidr.CidrError as exc:
            raise PlanError("ban: %s" % exc)
        plen = _cidr.prefix_of(version, start, end)
        limit = broad4 if version == 4 else broad6
        if plen < limit:
            raise PlanError(
                "ban: %s is broader than the policy allows (/%d); raise broadest_prefix%s to ban it"
                % (cidr, limit, "" if version == 4 else "6")
            )
        why = protection.why(version, start, end)
        if why:
            raise PlanError(
                "ban: refusing %s: it is or covers a protected address (%s). Protected addresses are never blocked; "
                "ban a narrower network that leaves them out, or change webshield_trusted_networks if this is "
                "really intended." % (cidr, ", ".join(why))
            )
        unbanned.pop(cidr, None)
        found[cidr] = {
            "version": version,
            "start": start,
            "end": end,
            "reason": "manual",
            "manual": {"by": who, "at": iso(now), "comment": opts["comment"]},
            "hits": 0,
            "offenses": 0,
            "hosts": 0,
            "addresses_seen": 0,
            "servers": [],
            "first_seen": None,
            "last_seen": None,
        }
    unban_rs = _cidr.RangeSet(list(unbanned))

    # new state: confirmed entries refreshed, old ones kept until they expire
    now_iso = iso(now)
    expires_iso = iso(now + expire_after) if expire_after else None
    ban_expires_iso = iso(now + ban_expire) if ban_expire else None
    parsed = {}
    entries = {}
    for cidr, ev in found.items():
        parsed[cidr] = (ev["version"], ev["start"], ev["end"])
        old = prev_entries.get(cidr) or {}
        manual = ev["reason"] == "manual" or old.get("reason") == "manual"
        if manual and ev["reason"] != "manual":
            ev = dict(ev, reason="manual", manual=old.get("manual"))
        if manual:
            if ev.get("manual") and ev["manual"].get("at") == now_iso:
                expires = ban_expires_iso
            else:
                expires = old.get("expires")
        else:
            expires = expires_iso
        entry = {
            "reason": ev["reason"],
            "hits": ev["hits"],
            "offenses": ev["offenses"],
            "hosts": ev["hosts"],
            "servers": ev["servers"],
            "first_seen": _tmin(old.get("first_seen"), ev["first_seen"]) if old else ev["first_seen"],
            "last_seen": _tmax(old.get("last_seen"), ev["last_seen"]) if old else ev["last_seen"],
            "added": old.get("added") or now_iso,
            "confirmed": now_iso,
            "expires": expires,
        }
        if ev.get("manual"):
            entry["manual"] = ev["manual"]
        entries[cidr] = entry
    expired = []
    for cidr, old in prev_entries.items():
        if cidr in entries:
            continue
        if old.get("expires") and parse_time(old["expires"]) <= now:
            expired.append(cidr)
            continue
        try:
            parsed[cidr] = _cidr.parse_cidr(cidr)
        except _cidr.CidrError:
            warnings.append("state file entry %r is not a network; dropped" % (cidr,))
            continue
        entries[cidr] = old

    # unbanned ranges leave the plan: entries fully inside are removed, wider ones are split around them
    if unban_rs:
        for cidr in list(entries):
            if unban_rs.contains_text(cidr) or cidr in unban_list:
                del entries[cidr]

    # protection: split (or drop) around every protected address; refuse broader than policy
    pieces = {4: [], 6: []}
    net_pieces = {4: [], 6: []}
    out_entries = []
    excluded = []
    drop = opts["on_protected"] == "drop"
    for cidr in sorted(entries, key=lambda c: (parsed[c][0], parsed[c][1], parsed[c][1] - parsed[c][2])):
        entry = entries[cidr]
        version, start, end = parsed[cidr]
        bits = _cidr.BITS[version]
        if start == end:
            plen = bits
        else:
            plen = _cidr.prefix_of(version, start, end)
        limit = broad4 if version == 4 else broad6
        view = dict(entry)
        view["cidr"] = cidr
        if plen < limit:
            excluded.append({"cidr": cidr, "why": ["broader than /%d (policy)" % limit]})
            view["pushed"] = []
            view["protected"] = ["broader than /%d (policy)" % limit]
            out_entries.append(view)
            continue
        holes = protection.holes(version, start, end)
        if unban_rs:
            holes += [(s, e, "unbanned") for s, e in unban_rs.overlapping(version, start, end)]
        if holes:
            why = sorted(set(h[2] for h in holes))
            hole_ranges = _cidr.merge_ranges([(h[0], h[1]) for h in holes])
            if drop or entry["reason"] == "address":
                ranges = []
            else:
                ranges = _cidr.subtract_ranges([(start, end)], hole_ranges)
            excluded.append({"cidr": cidr, "why": why, "protected": _cidr.ranges_to_cidrs(version, hole_ranges)[:20]})
            view["protected"] = why
            view["pushed"] = _cidr.ranges_to_cidrs(version, ranges, limit)[:64]
        else:
            ranges = [(start, end)]
            view["pushed"] = [cidr]
        pieces[version].extend(ranges)
        if plen < bits:
            net_pieces[version].extend(ranges)
        out_entries.append(view)

    merged = {4: _cidr.merge_ranges(pieces[4]), 6: _cidr.merge_ranges(pieces[6])}
    blocklist = {
        "ipv4": _cidr.ranges_to_cidrs(4, merged[4], broad4),
        "ipv6": _cidr.ranges_to_cidrs(6, merged[6], broad6),
    }
    max_entries = int(opts["max_entries"])
    for family in ("ipv4", "ipv6"):
        if len(blocklist[family]) > max_entries:
            raise PlanError(
                "the plan has %d %s entries, more than max_entries (%d) that the set can hold; nothing was pushed. "
                "Raise max_entries (the set's maxelem follows it) or tighten the levels' thresholds."
                % (len(blocklist[family]), family, max_entries)
            )

    previous = set(_flat(state.get("blocklist") or {}))
    current = _flat(blocklist)
    added = [c for c in current if c not in previous]
    current_set = set(current)
    removed = sorted((c for c in previous if c not in current_set), key=_sort_key)

    # summary figures (the first field report's: offending hosts, covered, drop rate, networks, hosts inside)
    total = covered = in_networks = 0
    for version in (4, 6):
        values = sorted(v for v, e in fleet.addrs[version].items() if e[1] > 0)
        total += len(values)
        covered += _count_inside(values, merged[version])
        in_networks += _count_inside(values, _cidr.merge_ranges(net_pieces[version]))
    n_networks = sum(1 for e in out_entries if e["pushed"] and e["reason"].startswith("network"))
    summary = {
        "servers": len(fleet.servers),
        "offending_hosts": total,
        "hosts_covered": covered,
        "drop_rate": round(float(covered) / total, 4) if total else 0.0,
        "networks": n_networks,
        "hosts_in_networks": in_networks,
        "addresses": sum(1 for e in out_entries if e["pushed"] and e["reason"] == "address"),
        "manual": sum(1 for e in out_entries if e["reason"] == "manual"),
        "entries_ipv4": len(blocklist["ipv4"]),
        "entries_ipv6": len(blocklist["ipv6"]),
        "excluded": len(excluded),
        "expired": len(expired),
        "clients_capped": fleet.clients_capped,
    }
    if fleet.clients_capped:
        warnings.append(
            "some servers' client lists were capped by offender_stats 'top': offending host counts are lower bounds"
        )
    new_state = {
        "version": STATE_VERSION,
        "updated": iso(now),
        "entries": entries,
        "unbanned": unbanned,
        "blocklist": blocklist,
    }
    result = {
        "blocklist": blocklist,
        "entries": out_entries,
        "added": added,
        "removed": removed,
        "expired": sorted(expired, key=_sort_key),
        "excluded": excluded,
        "summary": summary,
        "warnings": warnings,
        "changed": bool(added or removed),
    }
    return result, new_state


def _count_inside(values, ranges):
    """How many of the sorted ``values`` fall inside the merged, sorted ``ranges`` (one sweep)."""
    count = 0
    i = 0
    n = len(values)
    for start, end in ranges:
        i = bisect.bisect_left(values, start, i)
        j = bisect.bisect_right(values, end, i)
        count += j - i
        i = j
        if i >= n:
            break
    return count


def _sort_key(cidr):
    try:
        version, start, end = _cidr.parse_cidr(cidr)
    except _cidr.CidrError:
        return (9, 0, 0)
    return (version, start, -(end - start))
