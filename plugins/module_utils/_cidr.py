# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CIDR arithmetic on integer ranges: parse, merge, subtract, split into a minimal CIDR list.

Everything works on ``(start, end)`` integer pairs (inclusive) per IP version, which keeps a million
addresses fast in pure Python. Only the standard library is used (``socket`` for parsing, which is
much faster than :mod:`ipaddress`; :mod:`ipaddress` only as a fallback for odd spellings).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import operator
import socket
import struct

try:  # Python 3.3+: always there on supported targets
    import ipaddress
except ImportError:  # pragma: no cover
    ipaddress = None

BITS = {4: 32, 6: 128}
_PACK4 = struct.Struct("!I").pack
_FIRST = operator.itemgetter(0)
# IPv4 prefix length text -> (network mask, host mask)
_MASKS4 = {str(p): (0xFFFFFFFF ^ ((1 << (32 - p)) - 1), (1 << (32 - p)) - 1) for p in range(33)}

# Ranges that are never routed on the public internet (RFC 6890 and friends). Each has a short name so
# that a user may allow one category (for example ``documentation`` in a lab) without allowing the others.
SPECIAL_RANGES = {
    "this_network": ["0.0.0.0/8", "::/128"],
    "private": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
    "shared": ["100.64.0.0/10"],
    "loopback": ["127.0.0.0/8", "::1/128"],
    "link_local": ["169.254.0.0/16", "fe80::/10"],
    "ietf": ["192.0.0.0/24", "192.88.99.0/24", "100::/64", "2001::/23"],
    "documentation": ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"],
    "benchmarking": ["198.18.0.0/15"],
    "multicast": ["224.0.0.0/4", "ff00::/8"],
    "reserved": ["240.0.0.0/4", "255.255.255.255/32"],
    "mapped": ["::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48"],
}


class CidrError(ValueError):
    """An address or network that cannot be parsed."""


def parse_address(text, fold=True):
    """Return ``(version, integer)`` for an address; IPv4-mapped IPv6 is folded to IPv4 (unless ``fold`` is off)."""
    if not isinstance(text, str):
        raise CidrError("not an address: %r" % (text,))
    text = text.strip()
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        pass
    if "%" in text:  # zone index, e.g. fe80::1%eth0
        text = text.split("%", 1)[0]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        raise CidrError("not an IPv4 or IPv6 address: %r" % (text,))
    if fold and value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return 6, value


def parse_cidr(text, strict=False):
    """Return ``(version, start, end)`` for ``1.2.3.4``, ``1.2.3.0/24``, ``2001:db8::/32`` ...

    With ``strict`` a network with host bits set is refused; otherwise the host bits are cleared.
    """
    if not isinstance(text, str):
        raise CidrError("not a CIDR: %r" % (text,))
    text = text.strip()
    if "/" not in text:
        version, value = parse_address(text)
        return version, value, value
    addr, _sep, plen = text.partition("/")
    version, value = parse_address(addr, fold=False)
    try:
        prefix = int(plen)
    except ValueError:
        raise CidrError("bad prefix length in %r" % (text,))
    bits = BITS[version]
    if not 0 <= prefix <= bits:
        raise CidrError("prefix length out of range in %r (0..%d)" % (text, bits))
    size = 1 << (bits - prefix)
    start = value & ~(size - 1)
    if strict and start != value:
        raise CidrError("%r has host bits set (did you mean %s?)" % (text, format_cidr(version, start, prefix)))
    return version, start, start + size - 1


def format_address(version, value):
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def format_cidr(version, start, prefix):
    return "%s/%d" % (format_address(version, start), prefix)


def prefix_of(version, start, end):
    """Prefix length if ``start..end`` is exactly one CIDR block, else None."""
    size = end - start + 1
    if size & (size - 1) or start & (size - 1):
        return None
    return BITS[version] - (size.bit_length() - 1)


def normalize(text, strict=False):
    """Canonical spelling ``addr/prefix`` of one CIDR (raises CidrError if it is a range of several)."""
    version, start, end = parse_cidr(text, strict=strict)
    return format_cidr(version, start, prefix_of(version, start, end))


def merge_ranges(ranges):
    """Sort and merge overlapping or adjacent ``(start, end)`` pairs (tuples that need no change are reused)."""
    out = []
    ranges = list(ranges)
    # by start only (merging needs no more; much faster than comparing tuples); timsort: linear on the already
    # sorted lists a plan produces
    ranges.sort(key=_FIRST)
    last = -2
    for pair in ranges:
        start, end = pair
        if start <= last + 1:
            if end > last:
                out[-1] = (out[-1][0], end)
                last = end
        else:
            out.append(pair if pair.__class__ is tuple else (start, end))
            last = end
    return out


def subtract_ranges(ranges, holes):
    """``ranges`` minus ``holes``; both are merged, sorted lists; the result is too."""
    out = []
    j = 0
    nholes = len(holes)
    for pair in ranges:
        start, end = pair
        while j < nholes and holes[j][1] < start:
            j += 1
        if j == nholes or holes[j][0] > end:  # no hole inside: the pair as it is
            out.append(pair if pair.__class__ is tuple else (start, end))
            continue
        k = j
        cur = start
        while k < nholes and holes[k][0] <= end:
            hs, he = holes[k]
            if hs > cur:
                out.append((cur, hs - 1))
            cur = max(cur, he + 1)
            if cur > end:
                break
            k += 1
        if cur <= end:
            out.append((cur, end))
    return out


def intersect_ranges(ranges, others):
    """Overlap of two merged, sorted range lists."""
    out = []
    i = j = 0
    while i < len(ranges) and j < len(others):
        start = max(ranges[i][0], others[j][0])
        end = min(ranges[i][1], others[j][1])
        if start <= end:
            out.append((start, end))
        if ranges[i][1] < others[j][1]:
            i += 1
        else:
            j += 1
    return out


def range_to_blocks(start, end, bits, min_prefix=0):
    """Split ``start..end`` into the fewest aligned blocks, none broader than ``/min_prefix``.

    Returns ``(start, prefix)`` pairs.
    """
    out = []
    cap = 1 << (bits - min_prefix)
    while start <= end:
        size = start & -start if start else 1 << bits
        size = min(size, cap)
        remaining = end - start + 1
        while size > remaining:
            size >>= 1
        out.append((start, bits - (size.bit_length() - 1)))
        start += size
    return out


def ranges_to_cidrs(version, ranges, min_prefix=0):
    bits = BITS[version]
    cap = 1 << (bits - min_prefix)
    out = []
    append = out.append
    if version == 4:
        ntoa = socket.inet_ntoa
        pack = _PACK4
    for start, end in ranges:
        size = end - start + 1
        if not size & (size - 1) and not start & (size - 1) and size <= cap:
            # already one aligned block (the usual case)
            if version == 4:
                append("%s/%d" % (ntoa(pack(start)), 33 - size.bit_length()))
            else:
                append(format_cidr(version, start, bits + 1 - size.bit_length()))
            continue
        for block, prefix in range_to_blocks(start, end, bits, min_prefix):
            append(format_cidr(version, block, prefix))
    return out


def bulk_ranges(texts):
    """Parse many CIDR texts fast: ``({4: [(start, end)...], 6: [...]}, errors)``, unsorted, unmerged.

    ``a.b.c.d`` and ``a.b.c.d/nn`` take a fast path; everything else goes through :func:`parse_cidr`.
    """
    raw = {4: [], 6: []}
    raw4 = raw[4]
    errors = []
    pton = socket.inet_pton
    af4 = socket.AF_INET
    from_bytes = int.from_bytes
    masks = _MASKS4
    for text in texts:
        try:
            addr, sep, plen = text.partition("/")
            value = from_bytes(pton(af4, addr), "big")
            if sep:
                mask = masks.get(plen)
                if mask is None:  # a spelling like "024": the long way
                    prefix = int(plen)
                    if not 0 <= prefix <= 32 or not plen.isdigit():
                        raise ValueError(plen)
                    mask = _MASKS4[str(prefix)]
                value &= mask[0]
                pair = (value, value | mask[1])
            else:
                pair = (value, value)
            raw4.append(pair)
            continue
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        try:
            version, start, end = parse_cidr(text)
        except CidrError as exc:
            errors.append(str(exc))
            continue
        raw[version].append((start, end))
    return raw, errors


def to_ranges(cidrs, strict=False):
    """Parse CIDR strings into ``{4: [...], 6: [...]}`` merged range lists."""
    raw = {4: [], 6: []}
    for text in cidrs:
        version, start, end = parse_cidr(text, strict=strict)
        raw[version].append((start, end))
    return {4: merge_ranges(raw[4]), 6: merge_ranges(raw[6])}


def collapse(cidrs, min_prefix4=0, min_prefix6=0):
    """Minimal CIDR list (covered and adjacent entries merged): ``{'ipv4': [...], 'ipv6': [...]}``."""
    ranges = to_ranges(cidrs)
    return {
        "ipv4": ranges_to_cidrs(4, ranges[4], min_prefix4),
        "ipv6": ranges_to_cidrs(6, ranges[6], min_prefix6),
    }


def count_addresses(ranges):
    return sum(end - start + 1 for start, end in ranges)


class RangeSet:
    """Merged ranges per IP version with fast membership and overlap queries (bisect)."""

    def __init__(self, cidrs=(), ranges=None):
        self.ranges = ranges if ranges is not None else to_ranges(cidrs)
        self._starts = {v: [r[0] for r in self.ranges[v]] for v in (4, 6)}

    @classmethod
    def from_ranges(cls, ranges):
        return cls(ranges={4: merge_ranges(ranges.get(4, ())), 6: merge_ranges(ranges.get(6, ()))})

    def __bool__(self):
        return bool(self.ranges[4] or self.ranges[6])

    __nonzero__ = __bool__

    def contains(self, version, value):
        starts = self._starts[version]
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and self.ranges[version][i][1] >= value

    def contains_text(self, text):
        version, start, end = parse_cidr(text)
        starts = self._starts[version]
        i = bisect.bisect_right(starts, start) - 1
        return i >= 0 and self.ranges[version][i][1] >= end

    def overlapping(self, version, start, end):
        """The parts of this set that fall inside ``start..end``."""
        ranges = self.ranges[version]
        i = max(bisect.bisect_right(self._starts[version], start) - 1, 0)
        out = []
        while i < len(ranges) and ranges[i][0] <= end:
            s, e = ranges[i]
            if e >= start:
                out.append((max(s, start), min(e, end)))
            i += 1
        return out

    def to_cidrs(self):
        return {"ipv4": ranges_to_cidrs(4, self.ranges[4]), "ipv6": ranges_to_cidrs(6, self.ranges[6])}


def special_cidrs(allow=()):
    """The special-purpose ranges, minus the categories or CIDRs named in ``allow``."""
    allow = list(allow or ())
    names = [a for a in allow if a in SPECIAL_RANGES]
    cidrs = [a for a in allow if a not in SPECIAL_RANGES]
    ranges = to_ranges([c for name, lst in SPECIAL_RANGES.items() if name not in names for c in lst])
    holes = to_ranges(cidrs)
    return {4: subtract_ranges(ranges[4], holes[4]), 6: subtract_ranges(ranges[6], holes[6])}


def is_valid(text):
    try:
        parse_cidr(text)
    except CidrError:
        return False
    return True


def address_exclude_text(network, protected):
    """Readable helper: ``network`` minus the ``protected`` CIDRs as a CIDR list (like ipaddress.address_exclude)."""
    version, start, end = parse_cidr(network)
    holes = to_ranges(protected)[version]
    return ranges_to_cidrs(version, subtract_ranges([(start, end)], holes))


def ip_network(text):
    """:mod:`ipaddress` object for a CIDR (for callers that want one); None without ipaddress."""
    if ipaddress is None:  # pragma: no cover
        return None
    return ipaddress.ip_network(normalize(text))
