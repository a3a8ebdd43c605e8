# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal MaxMind DB writer for tests (format version 2), written from the published specification."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import struct

MARKER = b"\xab\xcd\xefMaxMind.com"


def _ctrl(kind, size):
    if kind >= 8:
        head, ext = 0, bytes([kind - 7])
    else:
        head, ext = kind << 5, b""
    if size < 29:
        return bytes([head | size]) + ext
    if size < 285:
        return bytes([head | 29]) + ext + bytes([size - 29])
    if size < 65821:
        return bytes([head | 30]) + ext + (size - 285).to_bytes(2, "big")
    return bytes([head | 31]) + ext + (size - 65821).to_bytes(3, "big")


def encode(value):
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, bytes):
        return _ctrl(4, len(value)) + value
    if isinstance(value, float):
        return _ctrl(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if value < 0:
            return _ctrl(8, 4) + value.to_bytes(4, "big", signed=True)
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        kind = 6 if len(raw) <= 4 else 9 if len(raw) <= 8 else 10
        return _ctrl(kind, len(raw)) + raw
    if isinstance(value, dict):
        out = _ctrl(7, len(value))
        for key, val in value.items():
            out += encode(key) + encode(val)
        return out
    if isinstance(value, (list, tuple)):
        out = _ctrl(11, len(value))
        for val in value:
            out += encode(val)
        return out
    raise TypeError(value)


def pointer(offset):
    """A pointer record into the data section (used to test pointer decoding)."""
    if offset < 2048:
        return bytes([0x20 | (offset >> 8), offset & 0xFF])
    if offset < 526336:
        value = offset - 2048
        return bytes([0x28 | (value >> 16)]) + (value & 0xFFFF).to_bytes(2, "big")
    value = offset - 526336
    return bytes([0x30 | (value >> 24)]) + (value & 0xFFFFFF).to_bytes(3, "big")


def build(networks, ip_version=6, record_size=28, extra_data=None):
    """``networks``: list of (cidr, record). IPv4 networks go under ::/96 in an IPv6 tree."""
    bits = 128 if ip_version == 6 else 32
    root = [None, None]  # a node is [left, right]; a leaf is ("data", index)
    records = []
    for cidr, record in networks:
        net = ipaddress.ip_network(cidr)
        value = int(net.network_address)
        plen = net.prefixlen
        if net.version == 4 and ip_version == 6:
            plen += 96
        elif net.version == 6 and ip_version == 4:
            raise ValueError("IPv6 network in an IPv4 tree")
        records.append(record)
        leaf = ("data", len(records) - 1)
        node = root
        for depth in range(plen - 1):
            bit = (value >> (bits - 1 - depth)) & 1
            child = node[bit]
            if child is None or isinstance(child, tuple):
                new = [child, child]
                node[bit] = new
                child = new
            node = child
        last = (value >> (bits - 1 - (plen - 1))) & 1
        node[last] = leaf
    # number nodes breadth first
    order = [root]
    index = {id(root): 0}
    i = 0
    while i < len(order):
        for child in order[i]:
            if isinstance(child, list):
                index[id(child)] = len(order)
                order.append(child)
        i += 1
    node_count = len(order)
    data = extra_data or b""
    offsets = []
    for record in records:
        offsets.append(len(data))
        data += encode(record)

    def rec_value(child):
        if child is None:
            return node_count
        if isinstance(child, tuple):
            return node_count + 16 + offsets[child[1]]
        return index[id(child)]

    tree = b""
    for node in order:
        left, right = rec_value(node[0]), rec_value(node[1])
        if record_size == 24:
            tree += left.to_bytes(3, "big") + right.to_bytes(3, "big")
        elif record_size == 28:
            mid = ((left >> 24) << 4) | (right >> 24)
            tree += (left & 0xFFFFFF).to_bytes(3, "big") + bytes([mid]) + (right & 0xFFFFFF).to_bytes(3, "big")
        else:
            tree += left.to_bytes(4, "big") + right.to_bytes(4, "big")
    metadata = {
        "node_count": node_count,
        "record_size": record_size,
        "ip_version": ip_version,
        "database_type": "Webshield-Test-Country",
        "languages": ["en"],
        "binary_format_major_version": 2,
        "binary_format_minor_version": 0,
        "build_epoch": 1700000000,
        "description": {"en": "test database"},
    }
    return tree + b"\x00" * 16 + data + MARKER + encode(metadata)


def country(code):
    return {"country": {"iso_code": code, "names": {"en": "Country " + code}}, "continent": {"code": "XX"}}
