# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ipset_blocklist
short_description: Make a kernel set hold exactly a list of CIDRs and drop their traffic, atomically
version_added: 0.1.0
author: Fleetguard contributors (@fleetguard)
description:
  - Makes a named set hold exactly the given IPv4 and IPv6 networks and ensures one firewall rule that drops
    (or rejects) traffic from them, placed before the chain's accept rules.
  - With O(backend=ipset), the new content is loaded under a temporary set name and swapped in with
    C(ipset swap), so the running set is never half-filled. A set of another type or family is replaced without
    a window in which the rule is missing. The rule is added with C(iptables) and C(ip6tables)
    (C(-m set --match-set NAME src)).
  - The live sets are read, and the entries of a new set are sent, over netlink in the ipset protocol (the
    ipset tool creates, swaps, renames and destroys the sets). Where that cannot be done (no netlink socket, a
    set whose entries have options such as timeouts), C(ipset list) and C(ipset restore) do it.
  - With O(backend=nftables), the table C(inet <nft_table>) holds the sets (C(flags interval)) and a chain
    hooked at O(chain) with priority O(nft_priority), all written in one C(nft -f) transaction.
  - Nothing is loaded when the set already holds the same addresses (no change, no reload).
  - With O(persist=true), the sets and the rule are written where the OS family restores them at boot, keeping
    every other line of those files. Debian family uses C(netfilter-persistent) (C(/etc/iptables/ipsets),
    C(/etc/iptables/rules.v4), C(/etc/iptables/rules.v6)); Red Hat family uses C(ipset-service) and
    C(iptables-services) (C(/etc/sysconfig/ipset), C(/etc/sysconfig/iptables), C(/etc/sysconfig/ip6tables));
    nftables uses a file included from the main configuration.
options:
  name:
    description:
      - Name of the IPv4 set (and, with O(backend=nftables), the base name of the chain).
      - At most 27 characters, letters, digits, C(_), C(-) and C(.).
    type: str
    required: true
  name6:
    description:
      - Name of the IPv6 set. Defaults to O(name) followed by C(6).
    type: str
  entries:
    description:
      - The addresses and networks the set must hold, IPv4 and IPv6 mixed. Overlapping and adjacent entries
        are merged. Host bits are cleared (V(192.0.2.7/24) means V(192.0.2.0/24)).
    type: list
    elements: str
    default: []
  family:
    description:
      - Which address families are managed. V(both) keeps an IPv4 and an IPv6 set (an empty one matches nothing).
    type: str
    default: both
    choices: [ipv4, ipv6, both]
  backend:
    description:
      - V(ipset) uses ipset sets and iptables/ip6tables rules; V(nftables) uses an nftables table.
    type: str
    default: ipset
    choices: [ipset, nftables]
  chain:
    description:
      - The chain of the C(filter) table the rule goes into. With O(backend=nftables), V(INPUT) or V(FORWARD)
        (the hook of the chain made in the webshield table).
    type: str
    default: INPUT
  target:
    description:
      - What happens to matching packets (C(iptables -j)); V(DROP) or V(REJECT) with nftables.
    type: str
    default: DROP
  ports:
    description:
      - Only these destination ports (numbers or ranges like V(8000:8080)). All traffic when empty.
    type: list
    elements: str
    default: []
  protocol:
    description:
      - Protocol of O(ports).
    type: str
    default: tcp
    choices: [tcp, udp]
  maxelem:
    description:
      - Capacity of the ipset sets. Defaults to the next power of two of twice the entry count, at least 65536.
    type: int
  nft_table:
    description:
      - The nftables table (family C(inet)) holding the sets and the chain. A letter or C(_) first, then letters,
        digits, C(_), C(-) or C(.); with O(backend=nftables), O(name) and O(name6) start the same way.
    type: str
    default: webshield
  nft_priority:
    description:
      - Priority of the nftables chain; below 0 runs before the usual C(filter) chains.
    type: int
    default: -10
  persist:
    description:
      - Also write the sets and the rule to the files restored at boot.
    type: bool
    default: false
  persist_ipset_file:
    description:
      - The ipset file restored at boot. Defaults to C(/etc/iptables/ipsets) (Debian family) or
        C(/etc/sysconfig/ipset) (Red Hat family).
    type: path
  persist_rules_v4:
    description:
      - The iptables-save file restored at boot. Defaults to C(/etc/iptables/rules.v4) or C(/etc/sysconfig/iptables).
    type: path
  persist_rules_v6:
    description:
      - The ip6tables-save file restored at boot. Defaults to C(/etc/iptables/rules.v6) or
        C(/etc/sysconfig/ip6tables).
    type: path
  persist_nft_file:
    description:
      - The nftables file holding our table. Defaults to C(/etc/nftables.d/webshield.nft).
    type: path
  persist_nft_main:
    description:
      - The main nftables configuration that includes O(persist_nft_file). Defaults to C(/etc/nftables.conf)
        (Debian family) or C(/etc/sysconfig/nftables.conf) (Red Hat family).
    type: path
  state:
    description:
      - V(absent) removes the rule and the sets (and their lines from the persisted files with O(persist=true)).
    type: str
    default: present
    choices: [present, absent]
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: The set contents (CIDRs) before and after.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - ipset and iptables (O(backend=ipset)), or nft (O(backend=nftables))
seealso:
  - module: fleetguard.webshield.blocklist_plan
notes:
  - The rule is checked on every run; if an accept rule was put before it, it is moved back to the top.
"""

EXAMPLES = r"""
- name: Apply the fleet plan
  fleetguard.webshield.ipset_blocklist:
    name: webshield
    entries: "{{ blocklist.blocklist.ipv4 + blocklist.blocklist.ipv6 }}"
    persist: true

- name: Only web ports, nftables
  fleetguard.webshield.ipset_blocklist:
    name: webshield
    backend: nftables
    entries: [198.51.100.0/24, 2001:db8:1::/48]
    ports: ["80", "443"]

- name: Remove the sets and the rule
  fleetguard.webshield.ipset_blocklist:
    name: webshield
    state: absent
    persist: true
"""

RETURN = r"""
added:
  description:
    - CIDRs that the sets hold now and did not before (or would, in check mode).
    - At most 1000 are listed; RV(added_total) gives the count and the diff (C(--diff)) lists them all.
  returned: always
  type: list
  elements: str
  sample: [198.51.100.0/24]
added_total:
  description: How many CIDRs were added.
  returned: always
  type: int
  sample: 1
removed:
  description:
    - CIDRs that the sets held before and no longer hold.
    - At most 1000 are listed; RV(removed_total) gives the count.
  returned: always
  type: list
  elements: str
  sample: [203.0.113.7/32]
removed_total:
  description: How many CIDRs were removed.
  returned: always
  type: int
  sample: 1
entries:
  description: Entry counts per family after the merge.
  returned: always
  type: dict
  sample: {"ipv4": 1200, "ipv6": 3}
sets:
  description: The set names per family.
  returned: always
  type: dict
  sample: {"ipv4": "webshield", "ipv6": "webshield6"}
reloaded:
  description: Families whose set was reloaded (new content swapped in).
  returned: always
  type: list
  elements: str
  sample: [ipv4]
rules_changed:
  description: Families whose firewall rule was added, moved or removed.
  returned: always
  type: list
  elements: str
  sample: [ipv4, ipv6]
persisted:
  description: Files written (or that would be written in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/iptables/ipsets, /etc/iptables/rules.v4]
maxelem:
  description: Capacity of the ipset sets when they are created.
  returned: when O(backend=ipset)
  type: int
  sample: 65536
"""

import errno
import functools
import gc
import os
import re
import socket
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr
from ansible_collections.fleetguard.webshield.plugins.module_utils import _netfilter as nf

FAMILIES = {"ipv4": (4,), "ipv6": (6,), "both": (4, 6)}
FAMILY_NAME = {4: "ipv4", 6: "ipv6"}
MAX_LISTED = 1000  # added/removed lists are cut here (the totals and the diff stay complete)
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,27}$")
# nftables names (table, sets, chains) are identifiers there: they start with a letter or "_" (a text such as
# "x { } ; flush ruleset" would be nft syntax of its own in the script the module loads)
NFT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
PATHS = {
    "Debian": {
        "ipset": "/etc/iptables/ipsets",
        "v4": "/etc/iptables/rules.v4",
        "v6": "/etc/iptables/rules.v6",
        "nft": "/etc/nftables.d/webshield.nft",
        "nft_main": "/etc/nftables.conf",
    },
    "RedHat": {
        "ipset": "/etc/sysconfig/ipset",
        "v4": "/etc/sysconfig/iptables",
        "v6": "/etc/sysconfig/ip6tables",
        "nft": "/etc/nftables.d/webshield.nft",
        "nft_main": "/etc/sysconfig/nftables.conf",
    },
}


def os_family():
    if os.path.exists("/etc/debian_version"):
        return "Debian"
    if os.path.exists("/etc/redhat-release") or os.path.exists("/etc/system-release"):
        return "RedHat"
    return "Debian"


class Netlink:
    """The kernel's netfilter netlink socket, for the ipset messages made by ``nf.ipset_*_message(s)``."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nf.NETLINK_NETFILTER)
        self.sock.bind((0, 0))

    def send(self, messages):
        """Send ``(sequence, bytes)`` messages, each acknowledged in turn; NetlinkError for an error reply."""
        for seq, message in messages:
            self.sock.send(message)
            error = nf.netlink_ack(self.sock.recv(65536), seq)
            if error:
                raise nf.NetlinkError(error, seq)

    def dump(self, message):
        """The payloads of the messages answering a dump request; NetlinkError for an error reply."""
        self.sock.send(message)
        payloads = []
        while True:
            data, _ancillary, flags, _address = self.sock.recvmsg(65536)
            if flags & socket.MSG_TRUNC:
                raise nf.NetfilterError("a netlink message did not fit in the buffer")
            for kind, seq, error, payload in nf.netlink_messages(data):
                if kind == nf.NLMSG_DONE:
                    return payloads
                if kind == nf.NLMSG_ERROR:
                    raise nf.NetlinkError(error, seq)
                payloads.append(payload)

    def close(self):
        self.sock.close()


class Blocklist:
    """Reads the current sets and rules, computes what must change, and changes it (outside check mode)."""

    def __init__(self, module, runner=None, netlink=None):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.runner = runner
        # Sets are read and filled over netlink (a Netlink, made when first needed), else with the ipset tool
        # alone; with a runner (a simulated kernel) only when a netlink stand-in is given too.
        self._netlink = netlink
        self.use_netlink = netlink is not None or runner is None
        self.versions = FAMILIES[self.p["family"]]
        self.names = {4: self.p["name"], 6: self.p["name6"] or self.p["name"] + "6"}
        self.result = {
            "changed": False,
            "added": [],
            "removed": [],
            "added_total": 0,
            "removed_total": 0,
            "reloaded": [],
            "rules_changed": [],
            "persisted": [],
            "sets": {FAMILY_NAME[v]: self.names[v] for v in self.versions},
        }
        self.before = []
        self.after = []
        self.bins = {}
        self._cidrs = None

    # --- helpers -----------------------------------------------------------------------------------
    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def bin(self, name):
        if name not in self.bins:
            path = self.module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])
            if not path:
                self.fail(
                    "%s is not installed (needed by backend=%s); install the package that provides it"
                    % (name, self.p["backend"])
                )
            self.bins[name] = path
        return self.bins[name]

    def run(self, args, data=None, check_rc=True, what=None):
        if self.runner is not None:
            rc, out, err = self.runner(args, data)
        else:
            rc, out, err = self.module.run_command(
                args, data=data, binary_data=True, environ_update={"LC_ALL": "C"}, check_rc=False
            )
        if check_rc and rc != 0:
            self.fail(
                "%s failed (rc=%d): %s" % (what or " ".join(args[:4]), rc, (err or out).strip()[:2000]),
                cmd=" ".join(args),
                rc=rc,
            )
        return rc, out, err

    def ipt(self, version):
        return self.bin("iptables" if version == 4 else "ip6tables")

    # --- wanted state --------------------------------------------------------------------------------
    def wanted(self):
        for version in (4, 6):
            name = self.names[version]
            if not NAME_RE.match(name):
                self.fail(
                    "set name %r is not valid: use at most 27 letters, digits, '_', '-' or '.'" % name,
                    hint="ipset names are limited to 31 characters and a temporary '-new' suffix is added",
                )
        if self.p["backend"] == "nftables":
            for what, name in [("nft_table", self.p["nft_table"])] + [("set name", self.names[v]) for v in (4, 6)]:
                if not NFT_NAME_RE.match(name):
                    self.fail(
                        "%s %r is not a valid nftables name: start with a letter or '_', then letters, digits, "
                        "'_', '-' or '.'" % (what, name)
                    )
        ranges, errors = nf.split_entries(self.p["entries"])
        if errors:
            self.fail(
                "%d of the entries are not addresses or networks: %s" % (len(errors), "; ".join(errors[:10])),
                invalid=errors[:50],
                hint="give CIDRs like 198.51.100.0/24, 2001:db8::/48 or single addresses",
            )
        for version in (4, 6):
            if ranges[version] and version not in self.versions:
                self.fail(
                    "entries hold %s networks but family is %s (first: %s)"
                    % (
                        FAMILY_NAME[version],
                        self.p["family"],
                        nf.ranges_to_set_entries(version, ranges[version][:1])[0],
                    ),
                    hint="set family: both, or leave these entries out",
                )
        try:
            nf.check_ports(self.p["ports"])
        except nf.NetfilterError as exc:
            self.fail(str(exc))
        self.ranges = ranges
        self._cidrs = None
        # the set entries, one integer each (start << 8 | prefix): what is loaded, and compared with a live set
        self.keys = {v: nf.set_keys(v, ranges[v]) for v in self.versions}
        self.result["entries"] = {FAMILY_NAME[v]: len(self.keys[v]) for v in self.versions}

    @property
    def cidrs(self):
        """The wanted CIDR texts per version, sorted (made only when something is written as text)."""
        if self._cidrs is None:
            self._cidrs = {v: nf.ranges_to_set_entries(v, self.ranges[v]) for v in (4, 6)}
        return self._cidrs

    def note_diff(self, version, current, changes=None):
        """Count and list what is added and removed; ``changes`` is what ``nf.set_difference`` worked out already
        (``current`` may then be a function giving the live ranges, called in diff mode only)."""
        want = self.ranges[version] if self.p["state"] == "present" else []
        if changes is None:
            if want == current and not self.module._diff:
                return
            changes = (_cidr.subtract_ranges(want, current), _cidr.subtract_ranges(current, want), None, None)
        for key, ranges, count in (("added", changes[0], changes[2]), ("removed", changes[1], changes[3])):
            room = MAX_LISTED - len(self.result[key])
            if room > 0:
                self.result[key].extend(_cidr.ranges_to_cidrs(version, ranges[:room])[:room])
            self.result[key + "_total"] += count if count is not None else nf.count_blocks(version, ranges)
        if self.module._diff:
            self.before.extend(_cidr.ranges_to_cidrs(version, current() if callable(current) else current))
            self.after.extend(_cidr.ranges_to_cidrs(version, want))

    # --- ipset backend -------------------------------------------------------------------------------
    def netlink(self):
        """The netlink socket, None when there is none to use (then the ipset tool does everything)."""
        if self._netlink is None and self.use_netlink:
            try:
                self._netlink = Netlink()
            except (OSError, AttributeError) as exc:  # AttributeError: no AF_NETLINK (not Linux)
                self.debug("no netlink socket: %s" % exc)
                self.use_netlink = False
        return self._netlink if self.use_netlink else None

    def debug(self, msg):
        getattr(self.module, "debug", lambda _msg: None)(msg)

    def read_ipset(self, name, version):
        """The live set ``name`` (None if there is none): ``type``, ``family``, ``maxelem``, ``version`` and
        ``keys`` (a set, None when some entry cannot be understood)."""
        netlink = self.netlink()
        if netlink is not None:
            try:
                info = nf.parse_ipset_dump(netlink.dump(nf.ipset_list_message(name, version)))
                info["keys"] = set(info["keys"])
                return info
            except (OSError, nf.NetfilterError) as exc:  # another type, entries with options: the ipset tool
                if isinstance(exc, nf.NetlinkError) and exc.errno == errno.ENOENT:
                    return None  # no such set
                self.debug("netlink list of %s: %s; reading it with ipset" % (name, exc))
        rc, out, err = self.run([self.bin("ipset"), "list", name, "-o", "save"], check_rc=False)
        if rc != 0:
            if "does not exist" in (err + out):
                return None
            self.fail("ipset list %s failed (rc=%d): %s" % (name, rc, err.strip()))
        try:
            info = nf.parse_ipset_list(out, name)
        except nf.NetfilterError as exc:
            self.fail("cannot read ipset list %s output: %s" % (name, exc))
        info["version"] = 6 if info["family"] == "inet6" else 4
        try:
            info["keys"] = set(nf.text_keys(info["version"], info["entries"]))
        except nf.NetfilterError as exc:
            self.module.warn("set %s holds entries this module does not understand (%s); it is reloaded" % (name, exc))
            info["keys"] = None
        return info

    def ipset_present(self):
        maxelem = {}
        # a missing chain or binary fails before any set is touched; what is read serves ensure_rule too
        rules = {version: self.chain_rules(version) for version in self.versions}
        for version in self.versions:
            name = self.names[version]
            cur = self.read_ipset(name, version)
            count = self.result["entries"][FAMILY_NAME[version]]
            want_max = self.p["maxelem"] or nf.maxelem_for(count)
            if count > want_max:
                self.fail(
                    "%d %s entries do not fit in maxelem %d" % (count, FAMILY_NAME[version], want_max),
                    hint="raise maxelem or leave it unset",
                )
            maxelem[FAMILY_NAME[version]] = want_max
            want = self.ranges[version]
            compatible = cur is not None and cur["type"] == nf.SET_TYPE and cur["family"] == nf.FAMILY_INET[version]
            if cur is None or cur["keys"] is None:  # all of it is added: the count is known
                current = []
                changes = (want, [], count, 0)
            elif compatible:
                changes = nf.set_difference(version, want, self.keys[version], cur["keys"])
                current = functools.partial(nf.keys_to_ranges, version, cur["keys"])  # diff mode only
            else:
                current = nf.keys_to_ranges(cur["version"], cur["keys"]) if cur["version"] == version else []
                changes = None
            self.note_diff(version, current, changes)
            reload = (
                not compatible  # changes is None only here
                or cur["keys"] is None  # entries not understood
                or changes[0]
                or changes[1]
                or cur["maxelem"] < count  # resize
                or self.p["maxelem"] not in (None, 0, cur["maxelem"])
            )
            if reload:
                self.result["reloaded"].append(FAMILY_NAME[version])
                if not self.check:
                    self.load_set(version, name, cur, compatible, want_max)
                    if not compatible:
                        rules[version] = None  # the rules were changed: read them again
            self.ensure_rule(version, name, rules[version])
        self.result["maxelem"] = max(maxelem.values()) if maxelem else nf.MIN_MAXELEM

    def fill_set(self, setname, version, maxelem):
        """Create ``setname`` (absent so far, or a leftover of an interrupted run) holding the wanted entries.

        The entries go over netlink when possible; anything that goes wrong there (the set is then destroyed)
        leaves it to ``ipset restore``, whose error is the one reported. Returns ``(rc, out, err)``.
        """
        ipset = self.bin("ipset")
        netlink = self.netlink()
        if netlink is not None:
            count = len(self.keys[version])
            create = nf.ipset_create_line(setname, version, count, maxelem, nf.hashsize_for(count, 2)) + "\n"
            rc, out, err = self.restore_new(setname, create)
            if rc == 0:
                try:
                    netlink.send(nf.ipset_add_messages(setname, version, self.keys[version]))
                    return rc, out, err
                except (OSError, nf.NetfilterError) as exc:
                    self.debug("netlink load of %s: %s; loading it with ipset restore" % (setname, exc))
            self.run([ipset, "destroy", setname], check_rc=False)
        return self.restore_new(setname, nf.ipset_restore_script(setname, version, self.cidrs[version], maxelem))

    def restore_new(self, setname, script):
        """``ipset restore`` of ``script``, which creates ``setname``; a leftover of an interrupted run under that
        name is destroyed first when the create reports it exists. Returns ``(rc, out, err)``."""
        ipset = self.bin("ipset")
        rc, out, err = self.run([ipset, "restore"], data=script, check_rc=False)
        if rc != 0 and "already exists" in err:
            self.run([ipset, "destroy", setname], check_rc=False)
            rc, out, err = self.run([ipset, "restore"], data=script, check_rc=False)
        return rc, out, err

    def load_set(self, version, name, cur, compatible, maxelem):
        """Load the wanted entries into the temporary set, then put it in place of the live one."""
        ipset = self.bin("ipset")
        tmp = nf.temp_name(name)
        rc, out, err = self.fill_set(tmp, version, maxelem)
        if rc != 0:
            self.run([ipset, "destroy", tmp], check_rc=False)
            self.fail(
                "ipset restore of the new %s set failed, the running set %s is unchanged: %s"
                % (FAMILY_NAME[version], name, (err or out).strip()[:2000]),
                rc=rc,
            )
        if cur is None:
            self.run([ipset, "rename", tmp, name], what="ipset rename %s %s" % (tmp, name))
            return
        if compatible:
            # one ipset process: swap, then the old content (now under the temporary name) out
            self.run([ipset, "restore"], data="swap %s %s\ndestroy %s\n" % (tmp, name, tmp), what="ipset swap")
            return
        # Another type or family: swap is impossible. Keep dropping through the new set while the old one is
        # replaced: rule for tmp first, old rules and set out, new set in under the real name, tmp out.
        ipt = self.ipt(version)
        chain = self.p["chain"]
        tmp_spec = nf.rule_spec(tmp, self.p["target"], self.p["ports"], self.p["protocol"])
        self.run([ipt, "-w", "-I", chain, "1"] + tmp_spec, what="inserting the bridging rule for %s" % tmp)
        self.delete_rules(version, name, keep=None)
        rc, out, err = self.run([ipset, "destroy", name], check_rc=False)
        if rc != 0:
            self.fail(
                "cannot replace set %s (type %s, family %s) with a %s set: %s"
                % (name, cur["type"], cur["family"], nf.SET_TYPE, err.strip()),
                hint="another rule still uses the set; remove it, or choose another name. The new entries are "
                "active under the set %s meanwhile" % tmp,
            )
        rc, out, err = self.fill_set(name, version, maxelem)
        if rc != 0:
            self.fail("ipset restore of %s failed (rc=%d): %s" % (name, rc, (err or out).strip()[:2000]), rc=rc)
        spec = nf.rule_spec(name, self.p["target"], self.p["ports"], self.p["protocol"])
        self.run([ipt, "-w", "-I", chain, "1"] + spec, what="inserting the rule for %s" % name)
        self.run([ipt, "-w", "-D", chain] + tmp_spec, what="removing the bridging rule")
        self.run([ipset, "destroy", tmp], what="ipset destroy %s" % tmp)
        self.result["rules_changed"].append(FAMILY_NAME[version])

    def chain_rules(self, version):
        chain = self.p["chain"]
        rc, out, err = self.run([self.ipt(version), "-w", "-S", chain], check_rc=False)
        if rc != 0:
            self.fail(
                "%s -S %s failed (rc=%d): %s" % (os.path.basename(self.ipt(version)), chain, rc, err.strip()),
                hint="the chain must exist in the filter table",
            )
        return nf.parse_rules(out, chain)

    def delete_rules(self, version, name, keep):
        for tokens in self.chain_rules(version):
            if tokens == keep:
                continue
            if nf._refers_to(tokens, self.p["chain"], name):
                self.run([self.ipt(version), "-w", "-D"] + tokens[1:], what="removing rule %s" % " ".join(tokens))

    def ensure_rule(self, version, name, rules=None):
        chain = self.p["chain"]
        spec = nf.rule_spec(name, self.p["target"], self.p["ports"], self.p["protocol"])
        if rules is None:
            rules = self.chain_rules(version)
        present, first, stale = nf.rule_status(rules, chain, name, spec)
        if present and first and not stale:
            return
        self.result["rules_changed"].append(FAMILY_NAME[version])
        if self.check:
            return
        ipt = self.ipt(version)
        if not (present and first):
            self.run([ipt, "-w", "-I", chain, "1"] + spec, what="inserting the %s rule" % FAMILY_NAME[version])
        if not present and not stale:
            return  # no other rule uses the set: nothing to remove
        # then the old or misplaced copies (after: the set never goes unmatched), by position, last first
        rules = self.chain_rules(version)
        doomed = []
        kept = False
        for number, tokens in enumerate(rules, 1):
            if not nf._refers_to(tokens, chain, name):
                continue
            if nf._core(tokens) == ["-A", chain] + spec and not kept:
                kept = True
                continue
            doomed.append(number)
        for number in reversed(doomed):
            self.run([ipt, "-w", "-D", chain, str(number)], what="removing rule %d of %s" % (number, chain))

    def ipset_absent(self):
        ipset = self.bin("ipset")
        for version in self.versions:
            name = self.names[version]
            cur = self.read_ipset(name, version)
            live = cur is not None and cur["keys"] is not None and cur["version"] == version
            self.note_diff(version, nf.keys_to_ranges(version, cur["keys"]) if live else [])
            rules = [t for t in self.chain_rules(version) if nf._refers_to(t, self.p["chain"], name)]
            if rules:
                self.result["rules_changed"].append(FAMILY_NAME[version])
            if cur is not None:
                self.result["reloaded"].append(FAMILY_NAME[version])
            if self.check:
                continue
            for tokens in rules:
                self.run([self.ipt(version), "-w", "-D"] + tokens[1:], what="removing rule %s" % " ".join(tokens))
            if cur is not None:
                rc, out, err = self.run([ipset, "destroy", name], check_rc=False)
                if rc != 0:
                    self.fail(
                        "cannot destroy set %s: %s" % (name, err.strip()),
                        hint="a rule in another chain still uses it; remove that rule first",
                    )
            self.run([ipset, "destroy", nf.temp_name(name)], check_rc=False)

    def ipset_persist(self):
        paths = PATHS[os_family()]
        present = self.p["state"] == "present"
        blocks = {}
        for version in self.versions:
            name = self.names[version]
            blocks[name] = (
                nf.ipset_restore_script(name, version, self.cidrs[version], self.result.get("maxelem"))
                if present
                else None
            )
        ipset_file = self.p["persist_ipset_file"] or paths["ipset"]
        self.write_file(ipset_file, lambda old: nf.update_ipset_file(old, blocks), mode=0o600)
        for version in self.versions:
            key = "persist_rules_v4" if version == 4 else "persist_rules_v6"
            path = self.p[key] or paths["v4" if version == 4 else "v6"]
            name = self.names[version]
            spec = nf.rule_spec(name, self.p["target"], self.p["ports"], self.p["protocol"])
            line = nf.rule_line(self.p["chain"], spec) if present else None
            restore = "iptables-restore" if version == 4 else "ip6tables-restore"
            self.write_file(
                path,
                lambda old, name=name, line=line: nf.update_rules_file(old, self.p["chain"], name, line),
                validate=[self.bin(restore), "--test"] if present else None,
                mode=0o600,
            )

    # --- nftables backend ----------------------------------------------------------------------------
    def nft_names(self):
        chain = self.p["chain"].upper()
        if chain not in ("INPUT", "FORWARD"):
            self.fail(
                "chain %s cannot be used with backend=nftables" % self.p["chain"],
                hint="use INPUT or FORWARD (the hook of the chain made in table inet %s)" % self.p["nft_table"],
            )
        if self.p["target"].upper() not in ("DROP", "REJECT"):
            self.fail("target %s cannot be used with backend=nftables; use DROP or REJECT" % self.p["target"])
        hook = chain.lower()
        sets = {v: self.names[v] for v in self.versions}
        chain_name = "%s_%s" % (self.p["name"], hook)
        sig = nf.nft_signature(
            self.p["nft_table"],
            chain_name,
            hook,
            self.p["nft_priority"],
            sets=sets,
            target=self.p["target"].upper(),
            ports=self.p["ports"],
            protocol=self.p["protocol"],
        )
        rules = nf.nft_rules(sets, self.p["target"], self.p["ports"], self.p["protocol"], sig)
        return hook, sets, chain_name, sig, rules

    def nft_present(self):
        nft = self.bin("nft")
        table = self.p["nft_table"]
        hook, sets, chain_name, sig, rules = self.nft_names()
        need = False
        recreate_sets = []
        for version, name in sets.items():
            rc, out, err = self.run([nft, "-j", "list", "set", "inet", table, name], check_rc=False)
            current = []
            if rc == 0:
                try:
                    typ, flags, current = nf.nft_set_type_and_ranges(out, version)
                except (nf.NetfilterError, _cidr.CidrError) as exc:
                    self.fail("cannot read nft set %s: %s" % (name, exc))
                if typ != nf.NFT_TYPE[version] or "interval" not in flags:
                    recreate_sets.append(version)
                    need = True
                    current = []
            else:
                need = True
            self.note_diff(version, current)
            if current != self.ranges[version]:
                need = True
                self.result["reloaded"].append(FAMILY_NAME[version])
        rc, out, err = self.run([nft, "-j", "list", "chain", "inet", table, chain_name], check_rc=False)
        recreate_chain = False
        if rc == 0:
            chook, cprio, comments = nf.nft_chain_state(out)
            if chook != hook or cprio != self.p["nft_priority"]:
                recreate_chain = True
            if recreate_chain or comments != [sig] * len(rules):
                need = True
                self.result["rules_changed"].extend(FAMILY_NAME[v] for v in sets)
        else:
            need = True
            self.result["rules_changed"].extend(FAMILY_NAME[v] for v in sets)
        if need and not self.check:
            script = nf.nft_script(
                table,
                chain_name,
                hook,
                self.p["nft_priority"],
                sets=sets,
                wanted=self.cidrs,
                rules=rules,
                recreate_chain=recreate_chain,
                recreate_sets=recreate_sets,
            )
            rc, out, err = self.run([nft, "-f", "-"], data=script, check_rc=False)
            if rc != 0:
                self.fail(
                    "nft transaction failed; nothing was changed (nft applies all or nothing): %s"
                    % (err or out).strip()[:2000],
                    rc=rc,
                )
        if need:
            self.result["changed"] = True

    def nft_absent(self):
        nft = self.bin("nft")
        table = self.p["nft_table"]
        hook, sets, chain_name, sig, rules = self.nft_names()
        script = []
        rc, out, err = self.run([nft, "-j", "list", "chain", "inet", table, chain_name], check_rc=False)
        if rc == 0:
            script.append("delete chain inet %s %s" % (table, chain_name))
            self.result["rules_changed"].extend(FAMILY_NAME[v] for v in sets)
        for version, name in sets.items():
            rc, out, err = self.run([nft, "-j", "list", "set", "inet", table, name], check_rc=False)
            current = []
            if rc == 0:
                try:
                    current = nf.nft_set_type_and_ranges(out, version)[2]
                except (nf.NetfilterError, _cidr.CidrError):
                    current = []
                script.append("delete set inet %s %s" % (table, name))
                self.result["reloaded"].append(FAMILY_NAME[version])
            self.note_diff(version, current)
        if script and not self.check:
            if rc == 0 and script[0].startswith("delete chain"):
                script.insert(0, "flush chain inet %s %s" % (table, chain_name))
            self.run([nft, "-f", "-"], data="\n".join(script) + "\n", what="nft delete")
            rc, out, err = self.run([nft, "-j", "list", "table", "inet", table], check_rc=False)
            if rc == 0 and '"chain"' not in out and '"set"' not in out:
                self.run([nft, "delete", "table", "inet", table], check_rc=False)

    def nft_persist(self):
        paths = PATHS[os_family()]
        present = self.p["state"] == "present"
        nft_file = self.p["persist_nft_file"] or paths["nft"]
        main = self.p["persist_nft_main"] or paths["nft_main"]
        if present:
            hook, sets, chain_name, sig, rules = self.nft_names()
            content = nf.nft_persist_file(
                self.p["nft_table"], chain_name, hook, self.p["nft_priority"], sets=sets, wanted=self.cidrs, rules=rules
            )
            self.write_file(
                nft_file, lambda old: content, validate=[self.bin("nft"), "-c", "-f"], validate_path=True, mode=0o600
            )
            self.write_file(main, lambda old: nf.ensure_include(old, nft_file), mode=0o755)
        else:
            if os.path.exists(nft_file):
                self.result["persisted"].append(nft_file)
                if not self.check:
                    os.unlink(nft_file)
            if os.path.exists(main):
                self.write_file(main, lambda old: nf.remove_include(old, nft_file))

    # --- files ---------------------------------------------------------------------------------------
    def write_file(self, path, update, validate=None, validate_path=False, mode=0o640):
        old = None
        if os.path.exists(path):
            try:
                with open(path) as handle:
                    old = handle.read()
            except (IOError, OSError) as exc:
                self.fail("cannot read %s: %s" % (path, to_native(exc)))
        new = update(old)
        if new == old or (old is None and new is None):
            return
        if old is None and self.p["state"] != "present":
            return
        self.result["persisted"].append(path)
        if self.check:
            return
        directory = os.path.dirname(path)
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            fd, tmp = tempfile.mkstemp(prefix=".webshield-", dir=directory)
            with os.fdopen(fd, "w") as handle:
                handle.write(new)
        except (IOError, OSError) as exc:
            self.fail("cannot write %s: %s" % (path, to_native(exc)))
        if validate:
            if validate_path:
                rc, out, err = self.run(validate + [tmp], check_rc=False)
            else:
                rc, out, err = self.run(validate, data=new, check_rc=False)
            if rc != 0:
                os.unlink(tmp)
                self.fail(
                    "the new %s does not validate (%s): %s; the file was left as it was"
                    % (path, " ".join(validate), (err or out).strip()[:2000])
                )
        if old is not None:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, mode)
        self.module.atomic_move(tmp, path)

    # --- entry point ---------------------------------------------------------------------------------
    def apply(self):
        self.wanted()
        present = self.p["state"] == "present"
        if self.p["backend"] == "ipset":
            try:
                if present:
                    self.ipset_present()
                else:
                    self.ipset_absent()
            finally:
                if self._netlink is not None:
                    self._netlink.close()
        elif present:
            self.nft_present()
        else:
            self.nft_absent()
        if self.p["persist"]:
            if self.p["backend"] == "ipset":
                self.ipset_persist()
            else:
                self.nft_persist()
        res = self.result
        res["changed"] = bool(
            res["changed"]
            or res["added"]
            or res["removed"]
            or res["reloaded"]
            or res["rules_changed"]
            or res["persisted"]
        )
        if self.module._diff:
            res["diff"] = {
                "before": "\n".join(self.before) + ("\n" if self.before else ""),
                "after": "\n".join(self.after) + ("\n" if self.after else ""),
                "before_header": "sets %s" % ", ".join(self.names[v] for v in self.versions),
                "after_header": "sets %s" % ", ".join(self.names[v] for v in self.versions),
            }
        return res


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        name6=dict(type="str"),
        entries=dict(type="list", elements="str", default=[]),
        family=dict(type="str", default="both", choices=["ipv4", "ipv6", "both"]),
        backend=dict(type="str", default="ipset", choices=["ipset", "nftables"]),
        chain=dict(type="str", default="INPUT"),
        target=dict(type="str", default="DROP"),
        ports=dict(type="list", elements="str", default=[]),
        protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
        maxelem=dict(type="int"),
        nft_table=dict(type="str", default="webshield"),
        nft_priority=dict(type="int", default=-10),
        persist=dict(type="bool", default=False),
        persist_ipset_file=dict(type="path"),
        persist_rules_v4=dict(type="path"),
        persist_rules_v6=dict(type="path"),
        persist_nft_file=dict(type="path"),
        persist_nft_main=dict(type="path"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )


def main():
    # many small acyclic objects (100k entries): the cyclic collector would only walk them again and again
    gc.disable()
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    result = Blocklist(module).apply()
    # the echoed arguments would repeat every entry (and cost seconds at 100k): show the count instead
    args = dict(module.params)
    args["entries"] = "(%d entries)" % len(module.params["entries"])
    result["invocation"] = {"module_args": args}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
