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
import socket
import struct

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


def hashsize_for(count, per_bucket=4):
    """Hash table size (a power of two, 1024 to 2**20) for about ``per_bucket`` entries per bucket.

    With 4, a few buckets of a 100k set outgrow the kernel's bucket size while it is filled, and the kernel
    then doubles the table (rehashing every entry); a set filled at once is made with 2.
    """
    size = 1024
    while size < count // per_bucket and size < 1 << 20:
        size <<= 1
    return size


def temp_name(name):
    return (name[: IPSET_NAME_MAX - 4] + "-new")[:IPSET_NAME_MAX]


def split_entries(entries):
    """Validate and collapse mixed IPv4/IPv6 CIDRs: ``({4: ranges, 6: ranges}, errors)``."""
    if not set(map(type, entries)) <= {str}:
        entries = [e if isinstance(e, str) else str(e) for e in entries]
    raw, errors = _cidr.bulk_ranges(entries)
    merged = {}
    for version in (4, 6):
        merged[version] = _cidr.merge_ranges(raw[version])
        whole = (0, (1 << _cidr.BITS[version]) - 1)
        if merged[version] == [whole] and whole in raw[version]:  # a /0 entry (not two /1 entries)
            errors.append(
                "%s covers the whole address space; a set cannot hold a /0" % _cidr.format_cidr(version, 0, 0)
            )
            merged[version] = _cidr.merge_ranges(r for r in raw[version] if r != whole)
    return merged, errors


def count_blocks(version, ranges):
    """How many CIDRs ``ranges_to_set_entries`` would make, without formatting them."""
    return len(set_keys(version, ranges))


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


def parse_ipset_list(text, name):
    """``ipset list NAME -o save`` output: the set's ``{type, family, maxelem, options, entries}``.

    The usual output (one ``create`` line, then ``add NAME CIDR`` lines) is split in one go; anything else (entry
    options such as timeouts or comments) goes through :func:`parse_ipset_save`.
    """
    head, _sep, body = text.partition("\n")
    prefix = "add %s " % name
    if head.startswith("create %s " % name) and (not body or (body.startswith(prefix) and body.endswith("\n"))):
        entries = body[len(prefix) : -1].split("\n" + prefix) if body else []
        # every line an "add NAME CIDR" line: one newline and two spaces per entry (set names hold no spaces)
        if body.count("\n") == len(entries) and body.count(" ") == 2 * len(entries):
            info = parse_ipset_save(head).get(name)
            if info is not None:
                info["entries"] = entries
                return info
    info = parse_ipset_save(text).get(name)
    if info is None:
        raise NetfilterError("the output does not hold the set %s" % name)
    return info


# A set entry (one CIDR) as one integer, ``start << 8 | prefix``: sets of them compare and subtract fast.


def set_keys(version, ranges):
    """Keys of the CIDRs :func:`ranges_to_set_entries` makes of the merged ``ranges`` (their minimal split)."""
    bits = _cidr.BITS[version]
    top = 1 << bits
    out = []
    append = out.append
    for start, end in ranges:
        size = end - start + 1
        if not size & (size - 1) and not start & (size - 1) and size < top:
            append(start << 8 | (bits + 1 - size.bit_length()))  # already one block (the usual case)
        else:
            for block, prefix in _cidr.range_to_blocks(start, end, bits, 1):
                append(block << 8 | prefix)
    return out


def text_keys(version, texts):
    """Keys of the entries read from a set as text (``1.2.3.4`` and ``1.2.3.0/24`` spellings).

    Raises NetfilterError for an entry that is not a CIDR of ``version``.
    """
    raw, errors = _cidr.bulk_ranges(list(texts))
    if errors or raw[10 - version]:
        raise NetfilterError(
            "unreadable set entries: %s" % "; ".join(errors[:5]) if errors else "the set holds the other family"
        )
    bits = _cidr.BITS[version]
    return [start << 8 | (bits + 1 - (end - start + 1).bit_length()) for start, end in raw[version]]


def keys_to_ranges(version, keys):
    """Merged ranges of set entry keys."""
    bits = _cidr.BITS[version]
    spans = [(1 << (bits - prefix)) - 1 for prefix in range(bits + 1)]
    # sorted keys are sorted starts: merging them is then linear
    return _cidr.merge_ranges([(k >> 8, (k >> 8) + spans[k & 255]) for k in sorted(keys)])


def set_difference(version, want, want_keys, live_keys):
    """What changes from a set holding the entries ``live_keys`` (a set) to the merged ranges ``want``.

    ``want_keys`` (a list) must be ``want``'s minimal split (:func:`set_keys`). Returns ``(added, removed,
    added_count, removed_count)``: merged ranges, and how many CIDRs each splits into (``count_blocks``) when
    that is known without counting, else None.

    Only entries not in both are looked at: an entry in both is the same block, inside ``want`` and in the set.
    So ``want`` minus the set is the blocks only wanted minus the entries only live, and the set minus ``want``
    is the entries only live minus ``want``.
    """
    wanted_only = [k for k in want_keys if k not in live_keys]
    if not wanted_only and len(live_keys) == len(want_keys):  # want_keys has no duplicates: the same entries
        return [], [], 0, 0
    live_only = live_keys.difference(want_keys)
    merged = keys_to_ranges(version, wanted_only)
    extra = keys_to_ranges(version, live_only)
    added = _cidr.subtract_ranges(merged, extra)
    removed = _cidr.subtract_ranges(extra, want)
    # blocks of a minimal split that no live entry cuts stay its minimal split: one CIDR each; live entries that
    # want does not cut and that were not merged with each other are one CIDR each too
    added_count = len(wanted_only) if added == merged else None
    removed_count = len(removed) if removed == extra and len(extra) == len(live_only) else None
    return added, removed, added_count, removed_count


def ipset_create_line(name, version, count, maxelem=None, hashsize=None):
    return "create %s %s family %s hashsize %d maxelem %d" % (
        name,
        SET_TYPE,
        FAMILY_INET[version],
        hashsize or hashsize_for(count),
        maxelem or maxelem_for(count),
    )


def ipset_restore_script(name, version, cidrs, maxelem=None):
    """``ipset restore`` input that creates ``name`` and fills it."""
    head = ipset_create_line(name, version, len(cidrs), maxelem) + "\n"
    if not cidrs:
        return head
    prefix = "add %s " % name
    return head + prefix + ("\n" + prefix).join(cidrs) + "\n"


# --- ipset over netlink ----------------------------------------------------------------------------
# Reading a set and filling a new one go to the kernel as ipset protocol messages, many entries per message:
# `ipset list` formats every entry as text (which is then parsed again here) and `ipset restore` parses every
# line (and has glibc look at /etc/resolv.conf for every address), which costs several times the CPU.
# Creating, swapping, renaming and destroying stay with the ipset tool, and so does anything this code does not
# recognise (the caller falls back to `ipset list` / `ipset restore`).

NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
NLMSG_DONE = 3
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port
_NLA = struct.Struct("=HH")  # length, type
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_DUMP = 0x300
_NLM_F_DUMP_INTR = 0x10
_NLA_F_NESTED = 0x8000
_NLA_F_NET_BYTEORDER = 0x4000
_NLA_TYPE_MASK = 0x3FFF
_IPSET_MSG = {"list": 6 << 8 | 7, "add": 6 << 8 | 9}  # NFNL_SUBSYS_IPSET << 8 | IPSET_CMD_*
_IPSET_PROTOCOL = 6  # every kernel with ipset takes 6 (newer ones 6 and 7)
# IPSET_ATTR_*: top level, then inside IPSET_ATTR_DATA
_ATTR = {"protocol": 1, "setname": 2, "typename": 3, "family": 5, "data": 7, "adt": 8, "lineno": 9}
_DATA = {"ip": 1, "cidr": 3, "maxelem": 19}
_ADDR = {4: 1, 6: 2}  # IPSET_ATTR_IPADDR_IPV4, IPSET_ATTR_IPADDR_IPV6
_NFPROTO = {2: "inet", 10: "inet6"}


class NetlinkError(NetfilterError):
    """The kernel answered a netlink message with an error number."""

    def __init__(self, errno, seq):
        NetfilterError.__init__(self, "netlink message %d: error %d" % (seq, errno))
        self.errno = errno


def _nla(kind, payload):
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _ipset_head(name, version):
    """nfgenmsg and the attributes every ipset message of the set ``name`` starts with."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    return (
        struct.pack("=BBH", family, 0, 0)
        + _nla(_ATTR["protocol"], struct.pack("=B", _IPSET_PROTOCOL))
        + _nla(_ATTR["setname"], name.encode("ascii") + b"\0")
    )


def _entry_layout(version):
    """One entry as the kernel lists it and takes it: ``(size, head, address offset, cidr offset)``.

    IPSET_ATTR_DATA { IPSET_ATTR_IP { IPSET_ATTR_IPADDR_IPV4|6 }, IPSET_ATTR_CIDR }.
    """
    nbytes = _cidr.BITS[version] // 8
    size = 3 * _NLA.size + nbytes + 8
    head = (
        _NLA.pack(size, _ATTR["data"] | _NLA_F_NESTED)
        + _NLA.pack(2 * _NLA.size + nbytes, _DATA["ip"] | _NLA_F_NESTED)
        + _NLA.pack(_NLA.size + nbytes, _ADDR[version] | _NLA_F_NET_BYTEORDER)
    )
    return size, head, len(head), len(head) + nbytes + _NLA.size


def ipset_add_messages(name, version, keys, per_message=1500):
    """Netlink messages ``(sequence, bytes)`` adding the entries ``keys`` to the set ``name``.

    Each is one IPSET_CMD_ADD (acknowledged) with ``per_message`` entries in its IPSET_ATTR_ADT; sequence
    numbers 1, 2, ... An attribute length is 16-bit: at most 1820 IPv6 entries fit in one message.
    """
    nbytes = _cidr.BITS[version] // 8
    _size, head, _addr, _cidr_at = _entry_layout(version)
    tails = [_nla(_DATA["cidr"], struct.pack("=B", prefix)) for prefix in range(_cidr.BITS[version] + 1)]
    # IPSET_ATTR_LINENO is required with IPSET_ATTR_ADT
    common = _ipset_head(name, version) + _nla(_ATTR["lineno"], struct.pack("=I", 0))
    for seq, first in enumerate(range(0, len(keys), per_message), 1):
        chunk = []
        for key in keys[first : first + per_message]:
            chunk.append(head)
            chunk.append((key >> 8).to_bytes(nbytes, "big"))
            chunk.append(tails[key & 255])
        body = b"".join(chunk)
        payload = common + _NLA.pack(_NLA.size + len(body), _ATTR["adt"] | _NLA_F_NESTED) + body
        flags = _NLM_F_REQUEST | _NLM_F_ACK
        yield seq, _NLMSG.pack(_NLMSG.size + len(payload), _IPSET_MSG["add"], flags, seq, 0) + payload


def ipset_list_message(name, version):
    """The dump request listing the set ``name`` (sequence number 1)."""
    payload = _ipset_head(name, version)
    flags = _NLM_F_REQUEST | _NLM_F_DUMP
    return _NLMSG.pack(_NLMSG.size + len(payload), _IPSET_MSG["list"], flags, 1, 0) + payload


def netlink_messages(data):
    """The messages of a datagram from the kernel: ``(type, sequence, errno or None, payload)`` each.

    ``errno`` is the error an NLMSG_ERROR carries (0 for an acknowledgement). Raises NetfilterError for a
    message cut short or one of an interrupted dump.
    """
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind, flags, seq, _port = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size or offset + length > len(data):
            raise NetfilterError("a netlink message is cut short")
        if flags & _NLM_F_DUMP_INTR:
            raise NetfilterError("the set changed while it was listed")
        payload = data[offset + _NLMSG.size : offset + length]
        errno = -struct.unpack_from("=i", payload)[0] if kind == NLMSG_ERROR else None
        yield kind, seq, errno, payload
        offset += (length + 3) & ~3


def netlink_ack(data, seq):
    """The error number the kernel's reply ``data`` gives for message ``seq`` (0: done).

    Raises NetfilterError when ``data`` holds no acknowledgement of ``seq``.
    """
    for kind, got, errno, _payload in netlink_messages(data):
        if kind == NLMSG_ERROR and got == seq:
            return errno
    raise NetfilterError("no acknowledgement of netlink message %d" % seq)


def _attrs(data, offset=0):
    """``(type without flags, value)`` of the netlink attributes in ``data`` from ``offset``."""
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size or offset + length > len(data):
            raise NetfilterError("a netlink attribute is cut short")
        yield kind & _NLA_TYPE_MASK, data[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3


def _dump_keys(adt, version):
    """Keys of the entries in an IPSET_ATTR_ADT of a list dump; NetfilterError unless every entry is a plain
    CIDR (no timeout, counters, comment or nomatch flag)."""
    size, head, addr_at, cidr_at = _entry_layout(version)
    count, rest = divmod(len(adt), size)
    template = head + b"\0" * (_cidr.BITS[version] // 8) + _nla(_DATA["cidr"], b"\0")
    # every byte but the address, the prefix and the flags byte of the address attribute (IPv6 has none)
    flags_at = addr_at - 2 + struct.pack("=H", _NLA_F_NET_BYTEORDER).index(b"\x40")
    fixed = [i for i in range(size) if not addr_at <= i < cidr_at - _NLA.size and i not in (flags_at, cidr_at)]
    if rest or any(adt[i::size] != template[i : i + 1] * count for i in fixed):
        raise NetfilterError("the set's entries are not plain CIDRs")
    prefixes = adt[cidr_at::size]
    if version == 4:
        starts = struct.unpack(">" + ("%dxI%dx" % (addr_at, size - addr_at - 4)) * count, adt)
    else:
        halves = struct.unpack(">" + ("%dxQQ%dx" % (addr_at, size - addr_at - 16)) * count, adt)
        starts = [high << 64 | low for high, low in zip(halves[::2], halves[1::2])]
    if count and max(prefixes) > _cidr.BITS[version]:
        raise NetfilterError("a prefix length is out of range")
    return [start << 8 | prefix for start, prefix in zip(starts, prefixes)]


def parse_ipset_dump(payloads):
    """The set listed by the messages (payloads after the netlink header) of an IPSET_CMD_LIST dump:
    ``{type, family, maxelem, version, keys}``.

    Raises NetfilterError for anything but a hash:net set of plain CIDRs (the caller reads it with ipset list).
    """
    info = {"type": None, "family": None, "maxelem": MIN_MAXELEM, "keys": []}
    for payload in payloads:
        for kind, value in _attrs(payload, 4):  # after nfgenmsg
            if kind == _ATTR["typename"]:
                info["type"] = value.split(b"\0", 1)[0].decode("ascii", "replace")
            elif kind == _ATTR["family"] and value:
                info["family"] = _NFPROTO.get(value[0])
            elif kind == _ATTR["data"]:
                for inner, data in _attrs(value):
                    if inner == _DATA["maxelem"] and len(data) == 4:
                        info["maxelem"] = struct.unpack(">I", data)[0]
            elif kind == _ATTR["adt"]:
                if info["type"] != SET_TYPE or info["family"] is None:
                    raise NetfilterError("not a %s set" % SET_TYPE)
                info["keys"].extend(_dump_keys(value, 6 if info["family"] == "inet6" else 4))
    if info["type"] != SET_TYPE or info["family"] is None:
        raise NetfilterError("not a %s set" % SET_TYPE)
    info["version"] = 6 if info["family"] == "inet6" else 4
    return info


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
