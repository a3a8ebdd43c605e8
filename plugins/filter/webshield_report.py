# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn offender_stats results and a blocklist plan into the report model.

The documentation of each filter lives in the ``.yml`` file of the same name beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import datetime
import io
import ipaddress
import json
import math
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

SCHEMA = 1
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_TEXT = 2000
_ALL_DAYS = "all days"

# Figures of the plan's summary under the names this report uses, with the names a plan may use.
_SUMMARY_ALIASES = {
    "total_offending_hosts": ("total_offending_hosts", "offending_hosts", "total_offenders"),
    "hosts_covered": ("hosts_covered", "covered_hosts", "hosts_dropped", "dropped_hosts"),
    "drop_rate": ("drop_rate", "coverage", "covered_rate"),
    "networks": ("networks", "network_count", "networks_count"),
    "network_hosts": ("network_hosts", "hosts_in_networks", "networks_hosts", "hosts_inside_networks"),
    "addresses": ("addresses", "address_count", "single_addresses"),
    "entries": ("entries", "entry_count", "total_entries"),
}
_ENTRY_KEYS = ("cidr", "network", "entry", "address", "prefix")

CSV_TABLES = {
    "days": ("scope", "day", "hits", "offenses", "clients"),
    "pages": ("scope", "page", "hits", "offenses", "clients"),
    "clients": (
        "scope",
        "address",
        "hits",
        "offenses",
        "detectors",
        "first_seen",
        "last_seen",
        "servers",
        "blocked_by",
    ),
    "networks": ("scope", "cidr", "prefix", "hits", "offenses", "hosts", "offending_hosts", "blocked_by"),
    "referers": ("scope", "referer", "hits"),
    "detectors": ("scope", "detector", "offenses", "clients"),
    "bans": ("scope", "address", "bans", "first_seen", "last_seen", "servers", "blocked_by"),
    "jails": ("scope", "jail", "bans", "unbans", "found"),
    "files": ("scope", "path", "kind", "lines", "malformed", "status", "format"),
    "blocklist": (
        "cidr",
        "family",
        "reason",
        "hits",
        "hosts",
        "servers",
        "first_seen",
        "last_seen",
        "expires",
        "status",
    ),
}


def _text(value, limit=_MAX_TEXT):
    """Text for display: always a str, control characters shown as escapes, bounded length."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    elif not isinstance(value, str):
        value = str(value)
    value = _CONTROL.sub(
        lambda m: "\\x%02x" % ord(m.group(0)) if ord(m.group(0)) < 256 else "\\u%04x" % ord(m.group(0)), value
    )
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    return value


def _seq(value):
    """``value`` when it is a list or tuple, else an empty list (a result not written by the collection)."""
    return value if isinstance(value, (list, tuple)) else []


def _int(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, (list, tuple, set)):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_int(v) for v in value.values())
    try:
        return int(str(value).strip() or 0)
    except (ValueError, OverflowError):
        return 0


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _offenses(value):
    """Offenses as detector -> count (a bare number becomes ``{"total": n}``)."""
    if isinstance(value, Mapping):
        return {_text(k, 100): _int(v) for k, v in value.items() if _int(v)}
    n = _int(value)
    return {"total": n} if n else {}


def _add_counts(into, more):
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


def _pairs(value, name_keys, count_key="hits"):
    """Normalise ``{name: n}``, ``{name: {...}}`` or ``[{name_key: ..., ...}]`` into ``[(name, dict)]``."""
    out = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping):
                out.append((_text(key), dict(item)))
            else:
                out.append((_text(key), {count_key: _int(item)}))
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, Mapping):
                name = next((item[k] for k in name_keys if k in item), None)
                if name is not None:
                    out.append((_text(name), dict(item)))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                out.append((_text(item[0]), {count_key: _int(item[1])}))
            elif isinstance(item, str):
                out.append((_text(item), {}))
    return out


def _stamp(value):
    """A timestamp as ISO text; numbers are taken as Unix seconds (UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            return _text(value, 40)
    return _text(value, 40)


def _min_stamp(a, b):
    return min((x for x in (a, b) if x), default="")


def _max_stamp(a, b):
    return max((x for x in (a, b) if x), default="")


def _network(text):
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return None


def _address(text):
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None


def _lines(client):
    for key in ("lines", "samples", "raw", "evidence"):
        value = client.get(key)
        if isinstance(value, (list, tuple)):
            return [_text(v) for v in value if not isinstance(v, Mapping)] + [
                _text(v.get("line", v.get("text", ""))) for v in value if isinstance(v, Mapping)
            ]
        if isinstance(value, str) and value:
            return [_text(v) for v in value.splitlines()]
    return []


class _Blocklist:
    """Plan entries, with a lookup from an address or network to the entry that covers it."""

    def __init__(self, plan, state, lines_cap):
        self.entries = []
        self.warnings = []
        self.summary = {}
        self.added = []
        self.removed = []
        self.expired = []
        self.excluded = []
        self._nets = []
        if plan is None:
            plan = {}
        if not isinstance(plan, Mapping):
            raise AnsibleFilterError(
                "webshield_report: plan must be a dict (the blocklist_plan result), got %s" % type(plan).__name__
            )
        plan = plan.get("plan", plan) if isinstance(plan.get("plan"), Mapping) else plan
        state_entries = {}
        if isinstance(state, Mapping):
            for cidr, item in _pairs(state.get("entries", state), _ENTRY_KEYS):
                net = _network(cidr)
                if net is not None:
                    state_entries[str(net)] = item
        raw = plan.get("blocklist", plan.get("entries", []))
        listed = []
        if isinstance(raw, Mapping):
            for family in ("ipv4", "ipv6"):
                listed.extend(_pairs(_seq(raw.get(family)), _ENTRY_KEYS, "hits"))
        else:
            listed = _pairs(raw, _ENTRY_KEYS, "hits")
        self.pushed = [cidr for cidr, _item in listed]
        planned = plan.get("entries")
        if isinstance(planned, (list, tuple)) and any(isinstance(e, Mapping) for e in planned):
            # blocklist_plan: ``entries`` are the planned entries with their evidence (each says which
            # collapsed CIDR it was pushed as); ``blocklist`` holds the collapsed CIDRs.
            items = _pairs(planned, _ENTRY_KEYS, "hits")
        else:
            items = listed
        evidence = dict(plan.get("evidence")) if isinstance(plan.get("evidence"), Mapping) else {}
        self.excluded = []
        for item in _seq(plan.get("excluded")):
            if isinstance(item, Mapping):
                why = item.get("why", [])
                self.excluded.append(
                    {
                        "cidr": _text(item.get("cidr", ""), 60),
                        "why": ", ".join(_text(w, 60) for w in why)
                        if isinstance(why, (list, tuple))
                        else _text(why, 200),
                        "protected": [_text(p, 60) for p in _seq(item.get("protected"))][:20],
                    }
                )
        self.expired = sorted({_text(x, 60) for x in self._cidrs(plan.get("expired"))})
        self.added = sorted({_text(x, 60) for x in self._cidrs(plan.get("added"))})
        self.removed = sorted({_text(x, 60) for x in self._cidrs(plan.get("removed"))})
        for cidr, item in items:
            net = _network(cidr)
            if net is None:
                self.warnings.append("blocklist entry %r is not an address or network; shown as given" % cidr)
                key = cidr
            else:
                key = str(net)
            info = {}
            info.update(state_entries.get(key, {}))
            extra = evidence.get(cidr) or evidence.get(key) or {}
            if isinstance(extra, Mapping):
                info.update(extra)
            info.update({k: v for k, v in item.items() if k not in _ENTRY_KEYS})
            ev = info.get("evidence") if isinstance(info.get("evidence"), Mapping) else {}
            merged = dict(ev)
            merged.update({k: v for k, v in info.items() if k != "evidence"})
            pushed_as = merged.get("pushed") or []
            if not isinstance(pushed_as, (list, tuple)):
                pushed_as = [pushed_as]
            servers = merged.get("servers", merged.get("seen_by", []))
            if isinstance(servers, Mapping):
                servers = list(servers)
            elif not isinstance(servers, (list, tuple)):
                servers = [servers] if servers else []
            entry = {
                "cidr": _text(key, 60),
                "family": "ipv6" if net is not None and net.version == 6 else "ipv4",
                "prefix": net.prefixlen if net is not None else None,
                "size": net.num_addresses if net is not None else None,
                "reason": _text(merged.get("reason", merged.get("why", "")), 300),
                "hits": _int(merged.get("hits", 0)),
                "hosts": _int(merged.get("hosts", merged.get("offending_hosts", 0))),
                "offenses": _offenses(merged.get("offenses", {})),
                "servers": sorted(_text(s, 200) for s in servers),
                "first_seen": _stamp(merged.get("first_seen")),
                "last_seen": _stamp(merged.get("last_seen")),
                "expires": _stamp(merged.get("expires", merged.get("expiry"))),
                "pushed_as": sorted({_text(p, 60) for p in pushed_as if _text(p, 60) != key}),
                "status": "added" if self._in_added(key, net) else "kept",
                "samples": [_text(x) for x in (merged.get("samples") or [])][:lines_cap]
                if isinstance(merged.get("samples"), (list, tuple))
                else [],
            }
            self.entries.append(entry)
            if net is not None:
                self._nets.append((net, entry["cidr"]))
        self.entries.sort(key=lambda e: (e["family"], -(e["hosts"] or 0), -(e["hits"] or 0), e["cidr"]))
        self._nets.sort(key=lambda pair: pair[0].prefixlen, reverse=True)
        raw_summary = plan.get("summary") if isinstance(plan.get("summary"), Mapping) else {}
        for name, aliases in _SUMMARY_ALIASES.items():
            for alias in aliases:
                if alias in raw_summary:
                    value = raw_summary[alias]
                    self.summary[name] = _float(value) if name == "drop_rate" else _int(value)
                    break
        if "entries" not in self.summary:
            self.summary["entries"] = len(self.pushed) if self.pushed else len(self.entries)
        if "networks" not in self.summary and self.entries:
            self.summary["networks"] = sum(1 for e in self.entries if e["size"] and e["size"] > 1)
        if (
            self.summary.get("drop_rate") is None
            and self.summary.get("total_offending_hosts")
            and "hosts_covered" in self.summary
        ):
            self.summary["drop_rate"] = self.summary["hosts_covered"] / float(self.summary["total_offending_hosts"])
        if self.summary.get("drop_rate") is not None:
            self.summary["drop_rate"] = round(self.summary["drop_rate"], 3)

    def _in_added(self, key, net):
        """Whether an entry was added by the last push (``added`` may name the collapsed CIDRs)."""
        if key in self.added:
            return True
        if net is None:
            return False
        for cidr in self.added:
            other = _network(cidr)
            if other is not None and other.version == net.version and net.subnet_of(other):
                return True
        return False

    @staticmethod
    def _cidrs(value):
        if not value:
            return []
        if isinstance(value, Mapping) and any(k in value for k in ("ipv4", "ipv6")):
            return [c for fam in ("ipv4", "ipv6") for c, _item in _pairs(value.get(fam) or [], _ENTRY_KEYS)]
        return [c for c, _item in _pairs(value, _ENTRY_KEYS)]

    def covering(self, text):
        """The blocklist entry (CIDR text) that covers an address or network, or ``""``."""
        if not self._nets:
            return ""
        target = _network(text)
        if target is None:
            return ""
        for net, cidr in self._nets:
            if net.version == target.version and target.subnet_of(net):
                return cidr
        return ""


class _Scope:
    """Statistics of one server, or of the whole fleet merged."""

    def __init__(self):
        self.summary = {"lines": 0, "bytes": 0, "malformed": 0, "matched": 0, "files": 0, "clients_total": 0}
        self.first = ""
        self.last = ""
        self.days = {}
        self.day_clients_exact = True
        self.pages = {}
        self.clients = {}
        self.networks = {}
        self.referers = {}
        self.drill = {}
        self.jails = {}
        self.files = []

    def add(self, server, result, lines_cap):
        summary = result.get("summary") if isinstance(result.get("summary"), Mapping) else {}
        for key in ("lines", "bytes", "malformed", "matched", "files"):
            self.summary[key] += _int(summary.get(key, 0))
        self.first = _min_stamp(self.first, _stamp(summary.get("first")))
        self.last = _max_stamp(self.last, _stamp(summary.get("last")))
        for jail, item in _pairs(result.get("fail2ban") or {}, ("jail", "name"), "bans"):
            row = self.jails.setdefault(jail, {"bans": 0, "unbans": 0, "found": 0})
            for key in row:
                row[key] += _int(item.get(key, 0))
        for item in _seq(result.get("files")) if server is None else []:
            if isinstance(item, Mapping):
                self.files.append(
                    {
                        "path": _text(item.get("path", ""), 500),
                        "kind": _text(item.get("kind", ""), 40),
                        "lines": _int(item.get("lines", 0)),
                        "malformed": _int(item.get("malformed", 0)),
                        "status": _text(item.get("status", ""), 200),
                        "format": _text(item.get("format") or "", 500),
                    }
                )
        clients = _pairs(result.get("clients") or {}, ("address", "ip", "client"))
        self.summary["clients_total"] += _int(result.get("clients_total", len(clients)))
        for day, item in _pairs(result.get("days") or {}, ("day", "date")):
            day_row = self.days.setdefault(day, {"hits": 0, "offenses": {}, "clients": 0, "client_set": set()})
            day_row["hits"] += _int(item.get("hits", 0))
            _add_counts(day_row["offenses"], _offenses(item.get("offenses", {})))
            day_clients = item.get("clients", 0)
            if isinstance(day_clients, (list, tuple, Mapping)):
                day_row["client_set"].update(_text(c, 60) for c in day_clients)
            else:
                day_row["clients"] += _int(day_clients)
                if server is not None:
                    self.day_clients_exact = False
            if item.get("pages"):
                drill_day = self.drill.setdefault(day, {})
                for page, pitem in _pairs(item["pages"], ("page", "path", "url")):
                    self._drill_page(drill_day, page, pitem)
        for page, item in _pairs(result.get("pages") or {}, ("page", "path", "url")):
            row = self.pages.setdefault(page, {"hits": 0, "offenses": {}, "clients": 0})
            row["hits"] += _int(item.get("hits", 0))
            _add_counts(row["offenses"], _offenses(item.get("offenses", {})))
            row["clients"] += _int(item.get("clients", 0))
        for referer, item in _pairs(result.get("referers") or {}, ("referer", "url")):
            self.referers[referer] = self.referers.get(referer, 0) + _int(item.get("hits", 0))
        for address, item in clients:
            row = self.clients.setdefault(
                address,
                {
                    "hits": 0,
                    "offenses": {},
                    "first_seen": "",
                    "last_seen": "",
                    "statuses": {},
                    "pages": {},
                    "referers": {},
                    "lines": [],
                    "servers": set(),
                },
            )
            row["hits"] += _int(item.get("hits", 0))
            _add_counts(row["offenses"], _offenses(item.get("offenses", {})))
            row["first_seen"] = _min_stamp(row["first_seen"], _stamp(item.get("first_seen")))
            row["last_seen"] = _max_stamp(row["last_seen"], _stamp(item.get("last_seen")))
            for status, sitem in _pairs(item.get("statuses") or {}, ("status",)):
                row["statuses"][status] = row["statuses"].get(status, 0) + _int(sitem.get("hits", 0))
            for page, pitem in _pairs(item.get("pages") or {}, ("page", "path", "url")):
                row["pages"][page] = row["pages"].get(page, 0) + _int(pitem.get("hits", 0))
            for referer, ritem in _pairs(item.get("referers") or {}, ("referer", "url")):
                row["referers"][referer] = row["referers"].get(referer, 0) + _int(ritem.get("hits", 0))
            prefix = "[%s] " % _text(server, 200) if server is not None else ""
            for line in _lines(item):
                if len(row["lines"]) < lines_cap:
                    row["lines"].append(prefix + line)
            if server is not None:
                row["servers"].add(_text(server, 200))
            else:
                row["servers"].update(_text(s, 200) for s in _seq(item.get("servers")))
        networks = result.get("networks") if isinstance(result.get("networks"), Mapping) else {}
        for prefix, table in networks.items():
            for cidr, item in _pairs(table, ("cidr", "network")):
                row = self.networks.setdefault(
                    cidr, {"prefix": _text(prefix, 10), "hits": 0, "offenses": {}, "hosts": 0, "offending_hosts": 0}
                )
                row["hits"] += _int(item.get("hits", 0))
                _add_counts(row["offenses"], _offenses(item.get("offenses", {})))
                # Distinct counts from different servers cannot be unioned: keep the largest (a lower bound).
                row["hosts"] = max(row["hosts"], _int(item.get("hosts", 0)))
                row["offending_hosts"] = max(row["offending_hosts"], _int(item.get("offending_hosts", 0)))

    def _drill_page(self, drill_day, page, item):
        row = drill_day.setdefault(page, {"hits": 0, "clients": {}})
        row["hits"] += _int(item.get("hits", 0))
        for address, citem in _pairs(item.get("clients") or {}, ("address", "ip", "client")):
            row["clients"][address] = row["clients"].get(address, 0) + _int(citem.get("hits", 0))

    def model(self, scope_id, name, kind, blocklist, *, top, lines_cap, chart_days):
        def ranked(mapping, key):
            return sorted(mapping.items(), key=lambda kv: (-key(kv[1]), kv[0]))

        days = []
        for day in sorted(self.days):
            row = self.days[day]
            clients = len(row["client_set"]) if row["client_set"] else row["clients"]
            days.append(
                {
                    "day": day,
                    "hits": row["hits"],
                    "offenses": sum(row["offenses"].values()),
                    "detectors": dict(sorted(row["offenses"].items())),
                    "clients": clients,
                }
            )
        detectors = {}
        clients = []
        for address, row in ranked(self.clients, lambda r: sum(r["offenses"].values()) * 10**12 + r["hits"]):
            total = sum(row["offenses"].values())
            for detector, count in row["offenses"].items():
                d = detectors.setdefault(detector, {"offenses": 0, "clients": 0})
                d["offenses"] += count
                d["clients"] += 1
            clients.append(
                {
                    "address": address,
                    "hits": row["hits"],
                    "offenses": total,
                    "detectors": dict(sorted(row["offenses"].items())),
                    "first_seen": row["first_seen"],
                    "last_seen": row["last_seen"],
                    "statuses": dict(sorted(row["statuses"].items())),
                    "pages": [{"page": p, "hits": h} for p, h in ranked(row["pages"], lambda h: h)[:top]],
                    "referers": [{"referer": r, "hits": h} for r, h in ranked(row["referers"], lambda h: h)[:top]],
                    "lines": row["lines"][:lines_cap],
                    "servers": sorted(row["servers"]),
                    "blocked_by": blocklist.covering(address),
                }
            )
        bans = [
            {
                "address": c["address"],
                "bans": c["detectors"].get("fail2ban", 0),
                "first_seen": c["first_seen"],
                "last_seen": c["last_seen"],
                "servers": c["servers"],
                "blocked_by": c["blocked_by"],
            }
            for c in clients
            if c["detectors"].get("fail2ban")
        ]
        bans.sort(key=lambda b: (-b["bans"], b["address"]))
        pages = [
            {"page": p, "hits": r["hits"], "offenses": sum(r["offenses"].values()), "clients": r["clients"]}
            for p, r in ranked(self.pages, lambda r: r["hits"])
        ]
        networks = []
        for cidr, row in self.networks.items():
            networks.append(
                {
                    "cidr": cidr,
                    "prefix": row["prefix"],
                    "hits": row["hits"],
                    "offenses": sum(row["offenses"].values()),
                    "hosts": row["hosts"],
                    "offending_hosts": row["offending_hosts"],
                    "blocked_by": blocklist.covering(cidr),
                }
            )
        networks.sort(key=lambda n: (-n["offending_hosts"], -n["hits"], n["cidr"]))
        referers = [{"referer": r, "hits": h} for r, h in ranked(self.referers, lambda h: h)]
        client_index = {c["address"]: c for c in clients}
        drill = self._drill_model(pages, clients, client_index, top, lines_cap)
        summary = dict(self.summary)
        summary.update(
            {
                "first": self.first,
                "last": self.last,
                "hits": sum(d["hits"] for d in days) if days else sum(c["hits"] for c in clients),
                "offenses": sum(d["offenses"] for d in detectors.values()),
                "offending_clients": sum(1 for c in clients if c["offenses"]),
                "blocked_clients": sum(1 for c in clients if c["blocked_by"]),
                "days": len(days),
            }
        )
        return {
            "id": scope_id,
            "name": name,
            "kind": kind,
            "summary": summary,
            "days": days,
            "day_clients_exact": self.day_clients_exact,
            "chart": _chart(days[-chart_days:] if chart_days else days),
            "detectors": [
                {"detector": k, "offenses": v["offenses"], "clients": v["clients"]}
                for k, v in sorted(detectors.items(), key=lambda kv: (-kv[1]["offenses"], kv[0]))
            ],
            "pages": pages[:top],
            "clients": clients[:top],
            "networks": networks[:top],
            "referers": referers[:top],
            "bans": bans[:top],
            "jails": [dict(jail=k, **v) for k, v in sorted(self.jails.items(), key=lambda kv: (-kv[1]["bans"], kv[0]))],
            "files": self.files,
            "drill": drill,
            "truncated": {
                "pages": max(0, len(pages) - top),
                "clients": max(0, len(clients) - top),
                "networks": max(0, len(networks) - top),
                "referers": max(0, len(referers) - top),
                "bans": max(0, len(bans) - top),
            },
        }

    def _drill_model(self, pages, clients, client_index, top, lines_cap):
        """day -> page -> clients (address, hits); details of each client named once in ``details``."""
        small = min(top, 15)
        details = {}

        def client_rows(hits_by_client):
            rows = []
            for address, hits in sorted(hits_by_client.items(), key=lambda kv: (-kv[1], kv[0]))[:small]:
                rows.append({"address": address, "hits": hits})
                if address not in details:
                    info = client_index.get(address, {})
                    details[address] = {
                        "hits": info.get("hits", 0),
                        "offenses": info.get("offenses", 0),
                        "detectors": info.get("detectors", {}),
                        "first_seen": info.get("first_seen", ""),
                        "last_seen": info.get("last_seen", ""),
                        "blocked_by": info.get("blocked_by", ""),
                        "referers": info.get("referers", [])[:10],
                        "lines": info.get("lines", [])[:lines_cap],
                    }
            return rows

        days = []
        if self.drill:
            for day in sorted(self.drill, reverse=True):
                page_rows = []
                ranked_pages = sorted(self.drill[day].items(), key=lambda kv: (-kv[1]["hits"], kv[0]))
                for page, row in ranked_pages[:small]:
                    page_rows.append({"page": page, "hits": row["hits"], "clients": client_rows(row["clients"])})
                days.append({"day": day, "hits": sum(r["hits"] for _page, r in ranked_pages), "pages": page_rows})
        else:
            # No per-day page figures in the results: one level "all days", clients from each client's pages.
            by_page = {}
            for client in clients:
                for page in client["pages"]:
                    by_page.setdefault(page["page"], {})[client["address"]] = page["hits"]
            page_rows = [
                {"page": page["page"], "hits": page["hits"], "clients": client_rows(by_page.get(page["page"], {}))}
                for page in pages[:small]
            ]
            if page_rows:
                days.append({"day": _ALL_DAYS, "hits": sum(p["hits"] for p in pages), "pages": page_rows})
        return {"days": days, "details": details}


def _chart(days, width=760, height=220):
    """Geometry of the hits-per-day bar chart (SVG user units), so the template only places shapes."""
    left, right, top, bottom = 56, 10, 12, 40
    inner_w = width - left - right
    inner_h = height - top - bottom
    peak = max([d["hits"] for d in days] + [d["offenses"] for d in days] + [1])
    step = _nice_step(peak)
    ceiling = step * -(-peak // step)
    slot = inner_w / float(max(len(days), 1))
    bar_w = max(1.0, min(slot * 0.38, 40.0))
    label_every = max(1, int(len(days) / 12.0 + 0.999))
    bars = []
    for i, day in enumerate(days):
        h = inner_h * day["hits"] / float(ceiling)
        oh = inner_h * day["offenses"] / float(ceiling)
        x = left + i * slot + slot / 2.0 - bar_w
        bars.append(
            {
                "day": day["day"],
                "hits": day["hits"],
                "offenses": day["offenses"],
                "x": round(x, 1),
                "ox": round(x + bar_w, 1),
                "w": round(bar_w, 1),
                "y": round(top + inner_h - h, 1),
                "h": round(h, 1),
                "oy": round(top + inner_h - oh, 1),
                "oh": round(oh, 1),
                "label": day["day"][5:] if (i % label_every == 0 or i == len(days) - 1) else "",
                "lx": round(left + i * slot + slot / 2.0, 1),
            }
        )
    ticks = []
    value = 0
    while value <= ceiling:
        ticks.append({"value": value, "y": round(top + inner_h - inner_h * value / float(ceiling), 1)})
        value += step
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "base": top + inner_h,
        "label_y": top + inner_h + 16,
        "bars": bars,
        "ticks": ticks,
        "max": peak,
    }


def _nice_step(peak):
    raw = peak / 4.0
    magnitude = 1
    while magnitude * 10 <= raw:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if magnitude * factor >= raw:
            return max(1, magnitude * factor)
    return max(1, magnitude * 10)


def webshield_report(
    results, plan=None, state=None, *, top=50, lines=20, title="webshield report", generated=None, chart_days=0
):
    """Build the report model from ``{server: offender_stats result}`` and an optional blocklist plan."""
    if results is None:
        results = {}
    if isinstance(results, (list, tuple)):
        converted = {}
        for item in results:
            if isinstance(item, Mapping) and ("item" in item or "server" in item or "host" in item):
                name = item.get("server", item.get("host", item.get("item")))
                converted[_text(name, 200)] = item.get("stats", item.get("result", item))
        results = converted
    if not isinstance(results, Mapping):
        raise AnsibleFilterError(
            "webshield_report: expected a dict of server name -> offender_stats result, got %s" % type(results).__name__
        )
    try:
        top = int(top)
        lines = int(lines)
        chart_days = int(chart_days)
    except (TypeError, ValueError):
        raise AnsibleFilterError("webshield_report: top, lines and chart_days must be integers")
    if top < 1 or lines < 0 or chart_days < 0:
        raise AnsibleFilterError("webshield_report: top must be >= 1, lines and chart_days >= 0")
    blocklist = _Blocklist(plan, state, lines)
    warnings = list(blocklist.warnings)
    fleet = _Scope()
    hosts = []
    for index, server in enumerate(sorted(results, key=str)):
        result = results[server]
        if not isinstance(result, Mapping):
            warnings.append("%s: no offender_stats result (got %s)" % (_text(server, 200), type(result).__name__))
            continue
        if result.get("skipped"):
            warnings.append("%s: offender_stats did not run" % _text(server, 200))
            continue
        if result.get("failed") or ("msg" in result and "summary" not in result and "clients" not in result):
            warnings.append("%s: offender_stats failed: %s" % (_text(server, 200), _text(result.get("msg", ""), 500)))
            continue
        for warning in list(_seq(result.get("warnings"))) + list(_seq(result.get("warnings_list"))):
            warnings.append("%s: %s" % (_text(server, 200), _text(warning, 500)))
        scope = _Scope()
        scope.add(None, result, lines)
        fleet.add(server, result, lines)
        hosts.append(
            scope.model(
                "host-%d" % (index + 1),
                _text(server, 200),
                "host",
                blocklist,
                top=top,
                lines_cap=lines,
                chart_days=chart_days,
            )
        )
    warnings = list(dict.fromkeys(warnings))
    fleet_model = fleet.model("fleet", "Fleet", "fleet", blocklist, top=top, lines_cap=lines, chart_days=chart_days)
    fleet_model["summary"]["servers"] = len(hosts)
    if generated is None:
        generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = {
        "servers": len(hosts),
        "lines": fleet_model["summary"]["lines"],
        "malformed": fleet_model["summary"]["malformed"],
        "hits": fleet_model["summary"]["hits"],
        "offenses": fleet_model["summary"]["offenses"],
        "offending_clients": fleet_model["summary"]["offending_clients"],
        "first": fleet_model["summary"]["first"],
        "last": fleet_model["summary"]["last"],
    }
    plan_summary = dict(blocklist.summary)
    if "total_offending_hosts" not in plan_summary:
        plan_summary["total_offending_hosts"] = summary["offending_clients"]
    summary.update(plan_summary)
    return {
        "schema": SCHEMA,
        "title": _text(title, 200),
        "generated": _text(generated, 40),
        "summary": summary,
        "scopes": [fleet_model] + hosts,
        "blocklist": {
            "entries": blocklist.entries,
            "pushed": blocklist.pushed,
            "added": blocklist.added,
            "removed": blocklist.removed,
            "expired": blocklist.expired,
            "excluded": blocklist.excluded,
            "summary": blocklist.summary,
        },
        "warnings": warnings,
    }


def _csv_cell(value):
    if isinstance(value, Mapping):
        value = " ".join("%s=%s" % (k, v) for k, v in sorted(value.items()))
    elif isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    elif value is None:
        value = ""
    value = str(value)
    # Spreadsheet formula injection: attacker text (URLs, referers) must never start a formula.
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.match(r"^-?\d+(\.\d+)?$", value):
        value = "'" + value
    return value


def webshield_report_csv(model, table):
    """One table of the report model as CSV text (every scope, with a ``scope`` column)."""
    if not isinstance(model, Mapping) or "scopes" not in model:
        raise AnsibleFilterError("webshield_report_csv: expected the model made by webshield_report")
    if table not in CSV_TABLES:
        raise AnsibleFilterError(
            "webshield_report_csv: unknown table %r; choose one of %s" % (table, ", ".join(sorted(CSV_TABLES)))
        )
    columns = CSV_TABLES[table]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    if table == "blocklist":
        rows = [dict(r) for r in model["blocklist"]["entries"]]
    else:
        rows = []
        for scope in model["scopes"]:
            for row in scope.get(table, []):
                row = dict(row)
                row["scope"] = scope["name"]
                rows.append(row)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c, "")) for c in columns])
    return buf.getvalue()


def webshield_report_jsonscript(value):
    """JSON text safe to place inside an HTML ``<script type="application/json">`` element."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class FilterModule(object):
    """fleetguard.webshield report filters."""

    def filters(self):
        return {
            "webshield_report": webshield_report,
            "webshield_report_csv": webshield_report_csv,
            "webshield_report_jsonscript": webshield_report_jsonscript,
        }
