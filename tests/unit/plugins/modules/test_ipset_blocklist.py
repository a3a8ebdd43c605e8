# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ipset_blocklist against a simulated ipset/iptables (the real kernel is in tests/integration/netns)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import struct

import pytest

from ansible_collections.fleetguard.webshield.plugins.modules import ipset_blocklist as mod


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, params, check_mode=False, diff=False):
        spec = mod.argument_spec()
        self.params = {k: v.get("default") for k, v in spec.items()}
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def fail_json(self, **kwargs):
        raise Failed(kwargs)

    def get_bin_path(self, name, opt_dirs=None):
        return "/usr/sbin/" + name

    def warn(self, msg):
        self.warnings.append(msg)


class FakeKernel:
    """Just enough of ipset and iptables: sets with type/family/maxelem/entries; rules per chain."""

    def __init__(self):
        self.sets = {}
        self.rules = {4: {"INPUT": []}, 6: {"INPUT": []}}
        self.log = []

    def __call__(self, args, data=None):
        tool = args[0].rsplit("/", 1)[1]
        self.log.append([tool] + [a for a in args[1:] if a != "-w"])
        if tool == "ipset":
            return self.ipset(args[1:], data)
        if tool.endswith("-restore"):
            return 0, "", ""
        return self.iptables(4 if tool == "iptables" else 6, [a for a in args[1:] if a != "-w"])

    def ipset(self, args, data):
        cmd = args[0]
        if cmd == "list":
            s = self.sets.get(args[1])
            if s is None:
                return 1, "", "ipset v7.17: The set with the given name does not exist"
            out = "create %s %s family %s hashsize 1024 maxelem %d\n" % (args[1], s["type"], s["family"], s["maxelem"])
            out += "".join("add %s %s\n" % (args[1], e) for e in s["entries"])
            return 0, out, ""
        if cmd == "restore":  # like ipset: line by line, stops at the first failing line
            for line in data.splitlines():
                parts = line.split()
                if parts[0] == "create":
                    opts = dict(zip(parts[3::2], parts[4::2]))
                    if parts[1] in self.sets:
                        return 1, "", "Set cannot be created: set with the same name already exists"
                    self.sets[parts[1]] = {
                        "type": parts[2],
                        "family": opts["family"],
                        "maxelem": int(opts["maxelem"]),
                        "entries": [],
                        "ref": 0,
                    }
                elif parts[0] == "add":
                    self.sets[parts[1]]["entries"].append(parts[2])
                else:  # swap, rename, destroy: logged as if run alone
                    self.log.append(["ipset"] + parts)
                    rc, out, err = self.ipset(parts, None)
                    if rc != 0:
                        return rc, out, err
            return 0, "", ""
        if cmd == "destroy":
            s = self.sets.get(args[1])
            if s is None:
                return 1, "", "does not exist"
            if self.refs(args[1]):
                return 1, "", "Set cannot be destroyed: it is in use by a kernel component"
            del self.sets[args[1]]
            return 0, "", ""
        if cmd == "swap":
            a, b = self.sets[args[1]], self.sets[args[2]]
            if a["type"] != b["type"] or a["family"] != b["family"]:
                return 1, "", "The sets cannot be swapped: their type does not match"
            self.sets[args[1]], self.sets[args[2]] = b, a
            return 0, "", ""
        if cmd == "rename":
            if self.refs(args[1]):
                return 1, "", "Set cannot be renamed: it is in use by another system"
            self.sets[args[2]] = self.sets.pop(args[1])
            return 0, "", ""
        raise AssertionError(args)

    def refs(self, name):
        return any(
            "--match-set %s src" % name in " ".join(rule)
            for fam in self.rules.values()
            for r in fam.values()
            for rule in r
        )

    def iptables(self, version, args):
        chains = self.rules[version]
        op, chain = args[0], args[1]
        if chain not in chains:
            return 1, "", "iptables: No chain/target/match by that name."
        if op == "-S":
            return 0, "-P %s ACCEPT\n" % chain + "".join("-A %s %s\n" % (chain, " ".join(r)) for r in chains[chain]), ""
        if op == "-I":
            chains[chain].insert(int(args[2]) - 1, args[3:])
            return 0, "", ""
        if op == "-A":
            chains[chain].append(args[2:])
            return 0, "", ""
        if op == "-D":
            if len(args) == 3 and args[2].isdigit():
                del chains[chain][int(args[2]) - 1]
                return 0, "", ""
            chains[chain].remove(args[2:])
            return 0, "", ""
        raise AssertionError(args)


def nla(kind, payload):
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-(4 + len(payload)) % 4)


def attrs(data, offset=0):
    out = {}
    while offset < len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        out.setdefault(kind & 0x3FFF, []).append(data[offset + 4 : offset + length])
        offset += (length + 3) & ~3
    return out


class FakeNetlink:
    """The kernel side of the ipset netlink messages (list dumps, adds) on a FakeKernel's sets."""

    def __init__(self, kernel, broken=False):
        self.kernel = kernel
        self.broken = broken  # every add fails, as with a netlink the module does not understand
        self.closed = False

    def send(self, messages):
        for _seq, message in messages:
            top = attrs(message, 20)
            name = top[2][0].rstrip(b"\0").decode()
            cidrs = []
            for entry in attrs(top[8][0])[7]:
                inner = attrs(entry)
                addr = list(attrs(inner[1][0]).values())[0][0]
                cidrs.append("%s/%d" % (ipaddress.ip_address(addr), inner[3][0][0]))
            self.kernel.log.append(["netlink", "add", name, len(cidrs)])
            if self.broken:
                raise OSError(errno.EPROTO, "not understood")
            self.kernel.sets[name]["entries"].extend(cidrs)

    def dump(self, message):
        name = attrs(message, 20)[2][0].rstrip(b"\0").decode()
        self.kernel.log.append(["netlink", "list", name])
        s = self.kernel.sets.get(name)
        if s is None:
            raise mod.nf.NetlinkError(errno.ENOENT, 1)
        nfproto = 2 if s["family"] == "inet" else 10
        head = struct.pack("=BBH", nfproto, 0, 0) + nla(1, b"\x06") + nla(2, name.encode() + b"\0")
        header = nla(3, s["type"].encode() + b"\0") + nla(5, bytes([nfproto]))
        header += nla(7 | 0x8000, nla(19 | 0x4000, struct.pack(">I", s["maxelem"])))
        entries = b""
        for text in s["entries"]:
            net = ipaddress.ip_network(text)
            addr = nla((1 | 0x4000) if net.version == 4 else 2, net.network_address.packed)
            entries += nla(7 | 0x8000, nla(1 | 0x8000, addr) + nla(3, bytes([net.prefixlen])))
        return [head + header, head + nla(8 | 0x8000, entries)]

    def close(self):
        self.closed = True


def run(kernel, check_mode=False, diff=False, netlink=None, **params):
    params.setdefault("name", "bl")
    module = FakeModule(params, check_mode=check_mode, diff=diff)
    return mod.Blocklist(module, runner=kernel, netlink=netlink).apply()


def ours(kernel, version=4, name="bl"):
    return [" ".join(r) for r in kernel.rules[version]["INPUT"] if name in r]


def test_first_apply_creates_sets_by_rename_and_rules():
    k = FakeKernel()
    res = run(k, entries=["45.1.2.0/24", "45.1.3.0/24", "2a00::/64"])
    assert res["changed"] and res["reloaded"] == ["ipv4", "ipv6"] and res["rules_changed"] == ["ipv4", "ipv6"]
    assert (res["added_total"], res["removed_total"], res["entries"]) == (2, 0, {"ipv4": 1, "ipv6": 1})
    assert k.sets["bl"]["entries"] == ["45.1.2.0/23"] and k.sets["bl6"]["family"] == "inet6"
    assert "bl-new" not in k.sets
    assert ["ipset", "rename", "bl-new", "bl"] in k.log
    assert ours(k) == ["-m set --match-set bl src -j DROP"]


def test_second_apply_runs_no_restore():
    k = FakeKernel()
    run(k, entries=["45.1.2.0/24"])
    k.log = []
    res = run(k, entries=["45.1.2.0/24"])
    assert res["changed"] is False
    assert [c for c in k.log if c[1] not in ("list", "-S")] == []


def test_mixed_families_no_change_then_one_family_emptied():
    k = FakeKernel()
    entries = ["45.1.2.0/24", "45.1.4.0/24", "2a00::/64", "::ffff:45.1.6.7"]  # the last one is IPv4
    run(k, entries=entries)
    assert sorted(k.sets["bl"]["entries"]) == ["45.1.2.0/24", "45.1.4.0/24", "45.1.6.7/32"]
    k.log = []
    res = run(k, entries=entries)
    assert res["changed"] is False and res["entries"] == {"ipv4": 3, "ipv6": 1}
    assert [c for c in k.log if c[1] not in ("list", "-S")] == []
    # one family fewer: the IPv6 set is emptied
    res = run(k, entries=entries[:2])
    assert res["reloaded"] == ["ipv4", "ipv6"] and res["removed"] == ["45.1.6.7/32", "2a00::/64"]
    assert k.sets["bl6"]["entries"] == []


def test_netlink_reads_and_fills_the_sets():
    k = FakeKernel()
    netlink = FakeNetlink(k)
    res = run(k, netlink=netlink, entries=["45.1.2.0/24", "45.1.3.0/24", "45.9.9.9", "2a00::/64"])
    assert res["added"] == ["45.1.2.0/23", "45.9.9.9/32", "2a00::/64"] and netlink.closed
    assert k.sets["bl"]["entries"] == ["45.1.2.0/23", "45.9.9.9/32"] and k.sets["bl6"]["entries"] == ["2a00::/64"]
    assert ["netlink", "add", "bl-new", 2] in k.log and ["netlink", "add", "bl6-new", 1] in k.log
    assert not [c for c in k.log if c[:2] == ["ipset", "list"]]  # read over netlink
    # the restore input only created the temporary set: the entries went over netlink
    k.log = []
    res = run(k, netlink=netlink, entries=["45.1.2.0/24", "45.1.3.0/24", "45.9.9.9", "2a00::/64"])
    assert res["changed"] is False and [c for c in k.log if c[1] != "-S"] == [
        ["netlink", "list", "bl"],
        ["netlink", "list", "bl6"],
    ]
    res = run(k, netlink=netlink, entries=["45.1.2.0/24", "45.7.0.0/16"], family="ipv4")
    assert res["added"] == ["45.7.0.0/16"] and res["removed"] == ["45.1.3.0/24", "45.9.9.9/32"]
    assert (res["added_total"], res["removed_total"]) == (1, 2)
    assert k.sets["bl"]["entries"] == ["45.1.2.0/24", "45.7.0.0/16"] and "bl-new" not in k.sets


def test_netlink_load_that_fails_is_done_by_ipset_restore():
    k = FakeKernel()
    k.sets["bl-new"] = {"type": "hash:net", "family": "inet", "maxelem": 65536, "entries": ["1.1.1.1"]}  # a leftover
    res = run(k, netlink=FakeNetlink(k, broken=True), entries=["45.1.2.0/24"], family="ipv4")
    assert res["reloaded"] == ["ipv4"] and k.sets["bl"]["entries"] == ["45.1.2.0/24"] and "bl-new" not in k.sets
    assert ["netlink", "add", "bl-new", 1] in k.log


def test_sets_netlink_cannot_read_are_read_with_ipset_list():
    k = FakeKernel()
    k.sets["bl"] = {"type": "hash:ip", "family": "inet", "maxelem": 65536, "entries": ["45.9.9.9"]}
    res = run(k, netlink=FakeNetlink(k), entries=["45.9.9.9"], family="ipv4")
    assert ["netlink", "list", "bl"] in k.log and ["ipset", "list", "bl", "-o", "save"] in k.log
    assert res["reloaded"] == ["ipv4"] and res["added"] == [] and k.sets["bl"]["type"] == "hash:net"


def test_many_entries_half_changed_are_counted_and_listed_in_order():
    k = FakeKernel()
    nets = ["46.%d.%d.0/24" % (i // 128, 2 * (i % 128)) for i in range(3000)]
    run(k, netlink=FakeNetlink(k), entries=nets[:2000], family="ipv4")
    res = run(k, netlink=FakeNetlink(k), entries=nets[1000:], family="ipv4")
    assert (res["added_total"], res["removed_total"]) == (1000, 1000)
    assert res["added"] == sorted(nets[2000:], key=ipaddress.ip_network)
    assert res["removed"] == sorted(nets[:1000], key=ipaddress.ip_network)
    assert sorted(k.sets["bl"]["entries"], key=ipaddress.ip_network) == sorted(nets[1000:], key=ipaddress.ip_network)


def test_live_set_with_other_spellings_is_parsed():
    k = FakeKernel()
    run(k, entries=["45.1.2.0/24"], family="ipv4")
    k.sets["bl"]["entries"] = ["45.1.2.0/25", "45.1.2.128/25"]  # another writer: same addresses
    k.log = []
    res = run(k, entries=["45.1.2.0/24"], family="ipv4")
    assert res["changed"] is False and res["reloaded"] == []
    k.sets["bl"]["entries"] = ["45.1.2.0/25"]  # a subset of the wanted texts' addresses, not of the texts
    res = run(k, entries=["45.1.2.0/24", "45.1.2.0/25"], family="ipv4")
    assert res["reloaded"] == ["ipv4"] and res["added"] == ["45.1.2.128/25"]


def test_change_uses_swap():
    k = FakeKernel()
    run(k, entries=["45.1.2.0/24"], family="ipv4")
    res = run(k, entries=["45.1.2.0/24", "45.9.9.9"], family="ipv4")
    assert res["added"] == ["45.9.9.9/32"] and res["removed"] == []
    assert ["ipset", "swap", "bl-new", "bl"] in k.log and ["ipset", "destroy", "bl-new"] in k.log
    assert sorted(k.sets["bl"]["entries"]) == ["45.1.2.0/24", "45.9.9.9/32"]


def test_type_mismatch_bridges_with_a_temporary_rule():
    k = FakeKernel()
    k.sets["bl"] = {"type": "hash:ip", "family": "inet", "maxelem": 65536, "entries": ["45.9.9.9"]}
    k.rules[4]["INPUT"].append(["-m", "set", "--match-set", "bl", "src", "-j", "DROP"])
    res = run(k, entries=["45.1.2.0/24"], family="ipv4")
    assert res["reloaded"] == ["ipv4"]
    assert k.sets["bl"]["type"] == "hash:net" and "bl-new" not in k.sets
    assert ours(k) == ["-m set --match-set bl src -j DROP"]
    # the bridging rule went in before the old rule was removed: some rule matched at every step
    inserted = k.log.index(["iptables", "-I", "INPUT", "1", "-m", "set", "--match-set", "bl-new", "src", "-j", "DROP"])
    destroyed = k.log.index(["ipset", "destroy", "bl"])
    assert inserted < destroyed


def test_check_mode_runs_only_reads():
    k = FakeKernel()
    res = run(k, check_mode=True, diff=True, entries=["45.1.2.0/24"])
    assert res["changed"] and res["added"] == ["45.1.2.0/24"] and res["diff"]["after"] == "45.1.2.0/24\n"
    assert k.sets == {} and k.rules[4]["INPUT"] == []
    assert all(c[1] in ("list", "-S") for c in k.log)


def test_rule_moved_above_accept():
    k = FakeKernel()
    run(k, entries=["45.1.2.0/24"], family="ipv4")
    k.rules[4]["INPUT"].insert(0, ["-j", "ACCEPT"])
    res = run(k, entries=["45.1.2.0/24"], family="ipv4")
    assert res["rules_changed"] == ["ipv4"]
    assert k.rules[4]["INPUT"] == [["-m", "set", "--match-set", "bl", "src", "-j", "DROP"], ["-j", "ACCEPT"]]


def test_rule_with_another_target_is_replaced():
    k = FakeKernel()
    run(k, entries=["45.1.2.0/24"], family="ipv4", target="REJECT")
    k.rules[4]["INPUT"].append(["-j", "ACCEPT"])
    res = run(k, entries=["45.1.2.0/24"], family="ipv4")
    assert res["rules_changed"] == ["ipv4"] and res["reloaded"] == []
    assert k.rules[4]["INPUT"] == [["-m", "set", "--match-set", "bl", "src", "-j", "DROP"], ["-j", "ACCEPT"]]


def test_absent():
    k = FakeKernel()
    run(k, entries=["45.1.2.0/24", "2a00::/64"])
    res = run(k, state="absent")
    assert res["changed"] and res["removed"] == ["45.1.2.0/24", "2a00::/64"]
    assert k.sets == {} and ours(k) == [] and ours(k, 6, "bl6") == []
    assert run(k, state="absent")["changed"] is False


@pytest.mark.parametrize(
    "params, message",
    [
        ({"entries": ["nope"]}, "not addresses or networks"),
        ({"entries": ["2a00::/64"], "family": "ipv4"}, "family is ipv4"),
        ({"entries": [], "name": "bad name"}, "not valid"),
        ({"entries": [], "chain": "MISSING"}, "-S MISSING failed"),
        ({"entries": ["1.1.1.1", "1.1.1.3"], "maxelem": 1}, "do not fit in maxelem 1"),
        ({"entries": [], "backend": "nftables", "chain": "OUTPUT"}, "cannot be used with backend=nftables"),
        (
            {"entries": [], "backend": "nftables", "nft_table": "x { } ; flush ruleset ; table inet y"},
            "nft_table 'x { } ; flush ruleset ; table inet y' is not a valid nftables name",
        ),
        ({"entries": [], "backend": "nftables", "name": "1block"}, "set name '1block' is not a valid nftables name"),
    ],
)
def test_failures(params, message):
    k = FakeKernel()
    with pytest.raises(Failed) as info:
        run(k, **params)
    assert message in info.value.args[0]["msg"]
    assert k.sets == {}


def test_persist_files(tmp_path, monkeypatch):
    k = FakeKernel()
    files = {
        "persist_ipset_file": str(tmp_path / "ipsets"),
        "persist_rules_v4": str(tmp_path / "v4"),
        "persist_rules_v6": str(tmp_path / "v6"),
    }
    monkeypatch.setattr(
        FakeModule, "atomic_move", lambda self, src, dst: __import__("os").replace(src, dst), raising=False
    )
    res = run(k, entries=["45.1.2.0/24"], persist=True, **files)
    assert sorted(res["persisted"]) == sorted(files.values())
    assert "add bl 45.1.2.0/24" in (tmp_path / "ipsets").read_text()
    assert "-A INPUT -m set --match-set bl src -j DROP" in (tmp_path / "v4").read_text()
    validations = [c for c in k.log if c[0] in ("iptables-restore", "ip6tables-restore")]
    assert validations == [["iptables-restore", "--test"], ["ip6tables-restore", "--test"]]
    res = run(k, entries=["45.1.2.0/24"], persist=True, **files)
    assert res["persisted"] == [] and res["changed"] is False
