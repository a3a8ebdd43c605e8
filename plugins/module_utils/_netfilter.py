# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build and parse ipset, iptables and nft input/output, and edit the persistence files.

No command is run here: the module runs them. Everything is unit-testable without a kernel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re
import shlex

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr

SET_TYPE = "hash:net"
IPSET_NAME_MAX = 31
MIN_MAXELEM = 65536
FAMILY_INET = {4: "inet", 6: "inet6"}
NFT_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
NFT_PROTO = {4: "ip", 6: "ip6"}
_PORT = re.compile(r"^\d{1,5}(?::\d{1,5})?$")


class NetfilterError(ValueError):
    """Output that cannot be understood or input that cannot be expressed."""


def maxelem_for(count):
    """Next power of two >= twice the entry count, at least 65536."""
    want = max(2 * count, MIN_MAXELEM)
    size = 1
    while size < want:
        size <<= 1
    return size


def hashsize_for(count):
    size = 1024
    while size < count // 4 and size < 1 << 20:
        size <<= 1
    return size


def temp_name(name):
    return (name[: IPSET_NAME_MAX - 4] + "-new")[:IPSET_NAME_MAX]


def split_entries(entries):
    """Validate and collapse mixed IPv4/IPv6 CIDRs: ``({4: ranges, 6: ranges}, errors)``."""
    raw, errors = _cidr.bulk_ranges([e if isinstance(e, str) else str(e) for e in entries])
    for version in (4, 6):
        whole = (0, (1 << _cidr.BITS[version]) - 1)
        if whole in raw[version]:
            errors.append(
                "%s covers the whole address space; a set cannot hold a /0" % _cidr.format_cidr(version, 0, 0)
            )
            raw[version] = [r for r in raw[version] if r != whole]
    return {4: _cidr.merge_ranges(raw[4]), 6: _cidr.merge_ranges(raw[6])}, errors


def count_blocks(version, ranges):
    """How many CIDRs ``ranges_to_set_entries`` would make, without formatting them."""
    bits = _cidr.BITS[version]
    count = 0
    for start, end in ranges:
        size = end - start + 1
        if not size & (size - 1) and not start & (size - 1) and size < 1 << bits:
            count += 1  # already one aligned block (the usual case)
        else:
            count += len(_cidr.range_to_blocks(start, end, bits, 1))
    return count


def ranges_to_set_entries(version, ranges):
    """CIDR texts for a set (a /0 is never produced: hash:net cannot hold it)."""
    return _cidr.ranges_to_cidrs(version, ranges, 1)


# --- ipset -----------------------------------------------------------------------------------------


def parse_ipset_save(text):
    """Parse ``ipset save``/``ipset list -o save`` output: ``{name: {type, family, maxelem, options, entries}}``."""
    sets = {}
    current = None
    prefix = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if prefix is not None and line.startswith(prefix):
            entry = line[len(prefix) :]
            if " " not in entry:  # fast path: "add NAME 1.2.3.0/24"
                current.append(entry)
                continue
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if parts[0] == "create" and len(parts) >= 3:
            opts = parts[3:]
            info = {"type": parts[2], "family": "inet", "maxelem": MIN_MAXELEM, "options": opts, "entries": []}
            for i, word in enumerate(opts[:-1]):
                if word == "family":
                    info["family"] = opts[i + 1]
                elif word == "maxelem":
                    try:
                        info["maxelem"] = int(opts[i + 1])
                    except ValueError:
                        raise NetfilterError("line %d: bad maxelem in %r" % (lineno, line))
            sets[parts[1]] = info
            current = info["entries"]
            prefix = "add %s " % parts[1]
        elif parts[0] == "add" and len(parts) >= 3:
            if parts[1] not in sets:
                raise NetfilterError("line %d: add to unknown set %r" % (lineno, parts[1]))
            sets[parts[1]]["entries"].append(parts[2])
        else:
            raise NetfilterError("line %d: not ipset save output: %r" % (lineno, line))
    return sets


def set_ranges(entries):
    """Merged ranges of the entries read from a set (``1.2.3.4`` and ``1.2.3.0/24`` spellings)."""
    ranges, errors = split_entries(entries)
    if errors:
        raise NetfilterError("unreadable set entries: %s" % "; ".join(errors[:5]))
    return ranges


def ipset_create_line(name, version, count, maxelem=None):
    return "create %s %s family %s hashsize %d maxelem %d" % (
        name,
        SET_TYPE,
        FAMILY_INET[version],
        hashsize_for(count),
        maxelem or maxelem_for(count),
    )


def ipset_restore_script(name, version, cidrs, maxelem=None):
    """``ipset restore`` input that creates ``name`` and fills it."""
    lines = [ipset_create_line(name, version, len(cidrs), maxelem)]
    prefix = "add %s " % name
    lines.extend(prefix + c for c in cidrs)
    return "\n".join(lines) + "\n"


def update_ipset_file(text, blocks):
    """Replace (or add) the ``create``/``add`` lines of the sets in ``blocks`` ({name: script or None})."""
    names = set(blocks)
    kept = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("create", "add", "-N", "-A") and parts[1] in names:
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    out = "\n".join(kept) + ("\n" if kept else "")
    for name in sorted(blocks):
        if blocks[name]:
            out += blocks[name]
    return out


# --- iptables --------------------------------------------------------------------------------------


def check_ports(ports):
    bad = [p for p in ports if not _PORT.match(str(p))]
    if bad:
        raise NetfilterError("ports must be numbers or ranges like 8000:8080, got %s" % ", ".join(map(repr, bad)))
    return [str(p) for p in ports]


def rule_spec(set_name, target="DROP", ports=None, protocol="tcp"):
    """Rule arguments after the chain, in the order iptables-save prints them."""
    spec = []
    if ports:
        spec += ["-p", protocol]
    spec += ["-m", "set", "--match-set", set_name, "src"]
    if ports:
        spec += ["-m", "multiport", "--dports", ",".join(check_ports(ports))]
    spec += ["-j", target]
    return spec


def rule_line(chain, spec):
    return " ".join(["-A", chain] + spec)


def _refers_to(tokens, chain, set_name):
    if len(tokens) < 2 or tokens[0] != "-A" or tokens[1] != chain:
        return False
    return any(tokens[i] == "--match-set" and tokens[i + 1] == set_name for i in range(len(tokens) - 2))


def parse_rules(text, chain):
    """``iptables -S CHAIN`` output -> token lists of the ``-A CHAIN`` rules, in order."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-A "):
            try:
                tokens = shlex.split(line)
            except ValueError:
                tokens = line.split()
            if len(tokens) > 1 and tokens[1] == chain:
                out.append(tokens)
    return out


def _core(tokens):
    """A rule up to its target (``-j REJECT --reject-with ...`` options are added by iptables itself)."""
    if "-j" in tokens:
        i = tokens.index("-j")
        return tokens[: i + 2]
    return tokens


def rule_status(rules, chain, set_name, spec):
    """Where our rule stands: ``(present, first, stale)``.

    ``first``: it comes before every ACCEPT rule of the chain; ``stale``: other rules matching our set (an older
    ports/target) and duplicates, as token lists to delete.
    """
    want = ["-A", chain] + spec
    index = None
    first_accept = None
    stale = []
    for i, tokens in enumerate(rules):
        if _core(tokens) == want:
            if index is None:
                index = i
            else:
                stale.append(tokens)  # a duplicate
            continue
        if _refers_to(tokens, chain, set_name):
            stale.append(tokens)
            continue
        if first_accept is None and "-j" in tokens and tokens[tokens.index("-j") + 1 :][:1] == ["ACCEPT"]:
            first_accept = i
    present = index is not None
    first = present and (first_accept is None or index < first_accept)
    return present, first, stale


def update_rules_file(text, chain, set_name, line, table="filter"):
    """Put our rule line first in ``chain`` of ``*filter`` in an iptables-save file, keep everything else.

    ``line`` None removes our rule (state absent). Other rules that match our set are replaced.
    """
    lines = (text or "").splitlines()
    out = []
    in_table = False
    seen_table = False
    inserted = False
    chain_declared = False
    for raw in lines:
        stripped = raw.strip()
        if stripped.startswith("*"):
            in_table = stripped[1:] == table
            seen_table = seen_table or in_table
            out.append(raw)
            continue
        if in_table:
            if stripped.startswith(":%s " % chain):
                chain_declared = True
            tokens = stripped.split()
            if stripped.startswith("-A ") and _refers_to(tokens, chain, set_name):
                continue  # our old line: written again below
            if line and not inserted and (stripped == "COMMIT" or (len(tokens) > 1 and tokens[:2] == ["-A", chain])):
                if not chain_declared and stripped == "COMMIT":
                    out.append(":%s - [0:0]" % chain)
                out.append(line)
                inserted = True
            if stripped == "COMMIT":
                in_table = False
        out.append(raw)
    if line and not seen_table:
        out.extend(
            [
                "*%s" % table,
                ":INPUT ACCEPT [0:0]",
                ":FORWARD ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]",
            ]
            + ([":%s - [0:0]" % chain] if chain not in ("INPUT", "FORWARD", "OUTPUT") else [])
            + [line, "COMMIT"]
        )
    return "\n".join(out) + ("\n" if out else "")


# --- nftables --------------------------------------------------------------------------------------


def nft_signature(table, chain, hook, priority, *, sets, target, ports, protocol):
    """Tag put in each rule's comment: a rule with another tag is rewritten."""
    raw = json.dumps([table, chain, hook, priority, sorted(sets.items()), target, ports, protocol], sort_keys=True)
    return "webshield:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def nft_rules(sets, target, ports, protocol, comment):
    """Rule bodies (text after ``add rule T C``)."""
    out = []
    verdict = {"DROP": "drop", "REJECT": "reject"}.get(target.upper(), target.lower())
    port_match = ""
    if ports:
        port_match = " %s dport { %s }" % (protocol, ", ".join(p.replace(":", "-") for p in check_ports(ports)))
    for version in (4, 6):
        if version in sets:
            out.append(
                '%s saddr @%s%s %s comment "%s"' % (NFT_PROTO[version], sets[version], port_match, verdict, comment)
            )
    return out


def nft_elements(cidrs, per_line=2000):
    """Chunks of comma-separated elements (one ``add element`` per chunk keeps lines bounded)."""
    for i in range(0, len(cidrs), per_line):
        yield ", ".join(cidrs[i : i + per_line])


def nft_script(table, chain, hook, priority, *, sets, wanted, rules, recreate_chain=False, recreate_sets=()):
    """One ``nft -f`` transaction making ``table`` hold exactly ``wanted`` and ``rules``."""
    lines = ["add table inet %s" % table]
    chain_def = "{ type filter hook %s priority %d; policy accept; }" % (hook, priority)
    if recreate_chain:  # another hook or priority: a chain's hook cannot be changed in place
        lines.append("flush chain inet %s %s" % (table, chain))
        lines.append("delete chain inet %s %s" % (table, chain))
    lines.append("add chain inet %s %s %s" % (table, chain, chain_def))
    lines.append("flush chain inet %s %s" % (table, chain))
    for version in (4, 6):
        if version not in sets:
            continue
        name = sets[version]
        set_def = "{ type %s; flags interval; }" % NFT_TYPE[version]
        if version in recreate_sets:
            lines.append("delete set inet %s %s" % (table, name))
        lines.append("add set inet %s %s %s" % (table, name, set_def))
        lines.append("flush set inet %s %s" % (table, name))
        for chunk in nft_elements(wanted.get(version, [])):
            lines.append("add element inet %s %s { %s }" % (table, name, chunk))
    for rule in rules:
        lines.append("add rule inet %s %s %s" % (table, chain, rule))
    return "\n".join(lines) + "\n"


def nft_persist_file(table, chain, hook, priority, *, sets, wanted, rules):
    """Content of the included file: resets our table only, then defines it whole."""
    lines = [
        "# Managed by fleetguard.webshield.ipset_blocklist: do not edit.",
        "table inet %s" % table,
        "delete table inet %s" % table,
        "table inet %s {" % table,
    ]
    for version in (4, 6):
        if version not in sets:
            continue
        lines.append("\tset %s {" % sets[version])
        lines.append("\t\ttype %s" % NFT_TYPE[version])
        lines.append("\t\tflags interval")
        if wanted.get(version):
            lines.append("\t\telements = { %s }" % ",\n\t\t\t".join(nft_elements(wanted[version], 8)))
        lines.append("\t}")
    lines.append("\tchain %s {" % chain)
    lines.append("\t\ttype filter hook %s priority %d; policy accept;" % (hook, priority))
    for rule in rules:
        lines.append("\t\t%s" % rule)
    lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def nft_set_type_and_ranges(data, version):
    """From ``nft -j list set`` JSON text: ``(type, flags, merged ranges)``."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise NetfilterError("nft -j output is not JSON: %s" % exc)
    for item in doc.get("nftables", []):
        if "set" not in item:
            continue
        info = item["set"]
        raw = []
        for elem in info.get("elem", []) or []:
            raw.append(_nft_elem_range(elem, version))
        return info.get("type"), info.get("flags", []), _cidr.merge_ranges(raw)
    raise NetfilterError("nft -j output holds no set")


def _nft_elem_range(elem, version):
    if isinstance(elem, dict) and "elem" in elem:  # element with timeout/counter/comment
        elem = elem["elem"].get("val")
    if isinstance(elem, str):
        v, start, end = _cidr.parse_cidr(elem)
        return start, end
    if isinstance(elem, dict) and "prefix" in elem:
        p = elem["prefix"]
        v, start, end = _cidr.parse_cidr("%s/%s" % (p["addr"], p["len"]))
        return start, end
    if isinstance(elem, dict) and "range" in elem:
        lo, hi = elem["range"]
        return _cidr.parse_address(lo)[1], _cidr.parse_address(hi)[1]
    raise NetfilterError("unknown nft set element %r" % (elem,))


def nft_chain_state(data):
    """From ``nft -j list chain`` JSON text: ``(hook, prio, [rule comments])``."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise NetfilterError("nft -j output is not JSON: %s" % exc)
    hook = prio = None
    comments = []
    for item in doc.get("nftables", []):
        if "chain" in item:
            hook = item["chain"].get("hook")
            prio = item["chain"].get("prio")
        elif "rule" in item:
            comments.append(item["rule"].get("comment"))
    return hook, prio, comments


def ensure_include(text, path):
    """Add ``include "path"`` to an nftables main config (after any ``flush ruleset``), if it is not there."""
    line = 'include "%s"' % path
    lines = (text or "").splitlines()
    if any(item.strip() == line for item in lines):
        return text
    for i, item in enumerate(lines):
        if item.strip() == "flush ruleset":
            lines.insert(i + 1, line)
            break
    else:
        lines.append(line)
    return "\n".join(lines) + "\n"


def remove_include(text, path):
    line = 'include "%s"' % path
    lines = [item for item in (text or "").splitlines() if item.strip() != line]
    return "\n".join(lines) + ("\n" if lines else "")
