# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small reader for MaxMind DB (``.mmdb``) files, standard library only.

Implements the published format (binary search tree + data section + metadata, format version 2):
lookups of one address, and the list of networks (with their records) inside a given network, which is
what the blocklist planner needs to split a candidate network around a protected country.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
DATA_SEPARATOR = 16


class MmdbError(ValueError):
    """The file is not a MaxMind DB this reader understands."""


class _Decoder:
    def __init__(self, buf, base):
        self.buf = buf
        self.base = base  # offset of the section pointers are relative to

    def decode(self, offset):
        """Decode the value at absolute ``offset``; return ``(value, next_offset)``."""
        buf = self.buf
        try:
            ctrl = buf[offset]
        except IndexError:
            raise MmdbError("data offset %d beyond the end of the file" % offset)
        offset += 1
        kind = ctrl >> 5
        if kind == 1:  # pointer
            ss = (ctrl >> 3) & 0x3
            vvv = ctrl & 0x7
            if ss == 0:
                ptr = (vvv << 8) | buf[offset]
                offset += 1
            elif ss == 1:
                ptr = ((vvv << 16) | int.from_bytes(buf[offset : offset + 2], "big")) + 2048
                offset += 2
            elif ss == 2:
                ptr = ((vvv << 24) | int.from_bytes(buf[offset : offset + 3], "big")) + 526336
                offset += 3
            else:
                ptr = int.from_bytes(buf[offset : offset + 4], "big")
                offset += 4
            value, _next = self.decode(self.base + ptr)
            return value, offset
        if kind == 0:  # extended type
            kind = 7 + buf[offset]
            offset += 1
        size = ctrl & 0x1F
        if size >= 29:
            extra = size - 28
            raw = int.from_bytes(buf[offset : offset + extra], "big")
            offset += extra
            size = (29, 285, 65821)[extra - 1] + raw
        if kind == 2:  # utf8 string
            return buf[offset : offset + size].decode("utf-8", "replace"), offset + size
        if kind == 7:  # map
            out = {}
            for _i in range(size):
                key, offset = self.decode(offset)
                value, offset = self.decode(offset)
                out[key] = value
            return out, offset
        if kind in (5, 6, 9, 10):  # unsigned integers
            return int.from_bytes(buf[offset : offset + size], "big"), offset + size
        if kind == 11:  # array
            out = []
            for _i in range(size):
                value, offset = self.decode(offset)
                out.append(value)
            return out, offset
        if kind == 3:  # double
            return struct.unpack(">d", buf[offset : offset + 8])[0], offset + 8
        if kind == 15:  # float
            return struct.unpack(">f", buf[offset : offset + 4])[0], offset + 4
        if kind == 4:  # bytes
            return bytes(buf[offset : offset + size]), offset + size
        if kind == 8:  # int32
            return int.from_bytes(buf[offset : offset + size], "big", signed=size == 4), offset + size
        if kind == 14:  # boolean, value in the size field
            return bool(size), offset
        if kind in (12, 13):  # data cache container, end marker
            return None, offset
        raise MmdbError("unknown data type %d at offset %d" % (kind, offset - 1))


class Reader:
    """Open a ``.mmdb`` file (read whole into memory) and look addresses up."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as handle:
                self.buf = handle.read()
        except (IOError, OSError) as exc:
            raise MmdbError("cannot read %s: %s" % (path, exc))
        pos = self.buf.rfind(METADATA_MARKER)
        if pos < 0:
            raise MmdbError("%s is not a MaxMind DB file (no metadata marker)" % path)
        meta_start = pos + len(METADATA_MARKER)
        metadata, _end = _Decoder(self.buf, meta_start).decode(meta_start)
        if not isinstance(metadata, dict):
            raise MmdbError("%s: metadata is not a map" % path)
        self.metadata = metadata
        try:
            self.node_count = int(metadata["node_count"])
            self.record_size = int(metadata["record_size"])
            self.ip_version = int(metadata["ip_version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MmdbError("%s: metadata lacks %s" % (path, exc))
        if self.record_size not in (24, 28, 32):
            raise MmdbError("%s: unsupported record size %d" % (path, self.record_size))
        if metadata.get("binary_format_major_version", 2) != 2:
            raise MmdbError("%s: unsupported format version %s" % (path, metadata.get("binary_format_major_version")))
        self.node_bytes = self.record_size * 2 // 8
        self.tree_size = self.node_count * self.node_bytes
        self.data_start = self.tree_size + DATA_SEPARATOR
        if self.data_start > pos:
            raise MmdbError("%s: search tree larger than the file (truncated?)" % path)
        self._decoder = _Decoder(self.buf, self.data_start)
        self._ipv4_start = None
        self._cache = {}

    # --- search tree -------------------------------------------------------------------------------
    def _record(self, node, bit):
        base = node * self.node_bytes
        buf = self.buf
        if self.record_size == 24:
            off = base + 3 * bit
            return (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2]
        if self.record_size == 28:
            if bit == 0:
                return ((buf[base + 3] & 0xF0) << 20) | (buf[base] << 16) | (buf[base + 1] << 8) | buf[base + 2]
            return ((buf[base + 3] & 0x0F) << 24) | (buf[base + 4] << 16) | (buf[base + 5] << 8) | buf[base + 6]
        off = base + 4 * bit
        return int.from_bytes(buf[off : off + 4], "big")

    def _start(self, version):
        """Node where an address of ``version`` starts, and the bit count of the tree for it."""
        if self.ip_version == 4:
            if version == 6:
                raise MmdbError("%s is an IPv4-only database; cannot look up IPv6" % self.path)
            return 0, 32
        if version == 6:
            return 0, 128
        if self._ipv4_start is None:
            node = 0
            for _i in range(96):
                if node >= self.node_count:
                    break
                node = self._record(node, 0)
            self._ipv4_start = node
        return self._ipv4_start, 32

    def _resolve(self, pointer):
        if pointer in self._cache:
            return self._cache[pointer]
        offset = pointer - self.node_count - DATA_SEPARATOR
        if offset < 0:
            raise MmdbError("%s: invalid data pointer %d" % (self.path, pointer))
        value, _next = self._decoder.decode(self.data_start + offset)
        self._cache[pointer] = value
        return value

    def lookup_int(self, version, value):
        """Return ``(record or None, prefix length)`` for an integer address."""
        node, bits = self._start(version)
        depth = 0
        while node < self.node_count and depth < bits:
            node = self._record(node, (value >> (bits - 1 - depth)) & 1)
            depth += 1
        if node == self.node_count or node < self.node_count:
            return None, depth
        return self._resolve(node), depth

    def lookup(self, address):
        """Record for an address text (``None`` when the database has none), and its prefix length."""
        version, value = _cidr.parse_address(address)
        return self.lookup_int(version, value)

    def networks_within(self, version, start, prefix):
        """Yield ``(start, prefix, record)`` for each network with a record inside ``start/prefix``."""
        node, bits = self._start(version)
        depth = 0
        while depth < prefix:
            if node >= self.node_count:
                break
            node = self._record(node, (start >> (bits - 1 - depth)) & 1)
            depth += 1
        if node > self.node_count:
            yield start, prefix, self._resolve(node)
            return
        if node == self.node_count:
            return
        stack = [(node, start, prefix)]
        while stack:
            node, net, plen = stack.pop()
            for bit in (1, 0):
                child = self._record(node, bit)
                child_net = net | (bit << (bits - 1 - plen))
                if child < self.node_count:
                    if plen + 1 < bits:
                        stack.append((child, child_net, plen + 1))
                elif child > self.node_count:
                    yield child_net, plen + 1, self._resolve(child)


def country_of(record):
    """ISO country code of a GeoIP2/GeoLite2 country or city record (country, else registered country)."""
    if not isinstance(record, dict):
        return None
    for key in ("country", "registered_country"):
        sub = record.get(key)
        if isinstance(sub, dict) and sub.get("iso_code"):
            return str(sub["iso_code"]).upper()
    return None
