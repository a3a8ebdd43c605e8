# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: blocklist_plan
short_description: Plan a fleet-wide network blocklist from every server's offender statistics
version_added: 0.1.0
author: Fleetguard contributors (@fleetguard)
description:
  - Runs on the controller (action plugin). Merges the M(fleetguard.webshield.offender_stats) results of all
    hosts in the play, promotes single addresses and networks to the blocklist when a level's thresholds pass
    over the whole fleet, removes every protected address (splitting a network around it, or dropping it), and
    returns a minimal CIDR list for M(fleetguard.webshield.ipset_blocklist) with the evidence for every entry.
  - Protected addresses are never planned; by default these are O(trusted_networks), the addresses of every
    host in the play (from their network facts and C(ansible_host)), the controller as the hosts see it
    (C(SSH_CLIENT) in their environment facts), and loopback, private, link-local, documentation, multicast
    and other special-purpose ranges. Countries can be protected with a MaxMind-format C(.mmdb) file.
  - A state file on the controller remembers when each entry was added, last confirmed, and when it expires.
    Entries stay until O(expire_after) has passed without new evidence. Manual bans and unbans
    (O(ban), O(unban)) are recorded there too.
  - The state file is written atomically (temporary file and rename); the previous version is kept as
    C(<state_file>.prev). It is not written in check mode.
options:
  stats:
    description:
      - The offender_stats results, as a mapping of server name to result.
      - When not given, each host in O(hosts) is asked for its registered variable O(stats_var).
    type: dict
  stats_var:
    description:
      - Name of the variable each host registered the offender_stats result under.
    type: str
    default: offender_stats
  hosts:
    description:
      - The fleet. Their statistics are merged and their own addresses protected.
      - Defaults to all hosts of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  levels:
    description:
      - Which levels are planned, each with its thresholds over the whole fleet. A level not listed is off.
      - Keys are V(address) (single IPv4 and IPv6 addresses), V(24), V(16), V(8) (IPv4 networks), V(64) and
        V(48) (IPv6 networks). Values are mappings with any of C(min_hits) (requests), C(min_offenses)
        (detector hits), C(min_hosts) (distinct offending addresses inside the network) and C(min_servers)
        (servers that saw it), or C(enabled=false).
      - "Thresholds not given take these defaults: address C(min_offenses=5); /24 C(min_hits=50, min_hosts=30)
        (the rule of the first field report); /16 C(min_hits=1000, min_hosts=300); /8 C(min_hits=20000,
        min_hosts=3000); /64 C(min_hits=50, min_hosts=5); /48 C(min_hits=500, min_hosts=30)."
      - "When not set: C({address: {min_offenses: 5}, '24': {min_hits: 50, min_hosts: 30}})."
    type: dict
  broadest_prefix:
    description:
      - The broadest IPv4 prefix the plan may contain. A level broader than this fails; merged entries are
        never broader. Set to V(8) to allow /8 networks.
    type: int
    default: 16
  broadest_prefix6:
    description:
      - The broadest IPv6 prefix the plan may contain.
    type: int
    default: 48
  max_entries:
    description:
      - The most entries per address family the set may hold. A bigger plan fails before anything is pushed.
    type: int
    default: 65536
  expire_after:
    description:
      - How long an entry stays without new evidence, in seconds or with a unit (V(90m), V(12h), V(30d), V(2w)).
        V(0) keeps entries forever. Also how long an unban keeps an address out of automatic planning.
    type: str
    default: 30d
  on_protected:
    description:
      - What to do with a candidate network that covers a protected address. V(split) plans the rest of the
        network (the smallest set of CIDRs around the protected addresses); V(drop) leaves the whole network out.
    type: str
    default: split
    choices: [split, drop]
  trusted_networks:
    description:
      - Addresses and networks that are never blocked.
      - Defaults to the variable C(webshield_trusted_networks), or V(127.0.0.0/8) and V(::1/128).
    type: list
    elements: str
  protected:
    description:
      - More protected addresses or networks, on top of O(trusted_networks).
    type: list
    elements: str
    default: []
  protect_fleet:
    description:
      - Protect every address of every host in O(hosts) (facts C(all_ipv4_addresses), C(all_ipv6_addresses),
        C(default_ipv4), C(default_ipv6), and C(ansible_host)).
    type: bool
    default: true
  protect_controller:
    description:
      - Protect the controller as the hosts see it (C(SSH_CLIENT) or C(SSH_CONNECTION) in their environment facts)
        and the addresses in O(controller_addresses).
    type: bool
    default: true
  controller_addresses:
    description:
      - Addresses of the controller or of the operators' workstations, protected with O(protect_controller).
    type: list
    elements: str
    default: []
  protect_special:
    description:
      - Protect the special-purpose ranges (this network, private, shared, loopback, link-local, IETF,
        documentation, benchmarking, multicast, reserved, IPv4-mapped/translated).
    type: bool
    default: true
  allow_special:
    description:
      - Categories (V(this_network), V(private), V(shared), V(loopback), V(link_local), V(ietf),
        V(documentation), V(benchmarking), V(multicast), V(reserved), V(mapped)) or CIDRs taken out of the
        special-purpose ranges, for labs and tests.
    type: list
    elements: str
    default: []
  geoip_db:
    description:
      - A MaxMind-format country or city database (C(.mmdb)) used to protect O(protected_countries).
    type: path
  protected_countries:
    description:
      - ISO country codes whose networks are never blocked (needs O(geoip_db)).
    type: list
    elements: str
  state_file:
    description:
      - JSON state file on the controller. Without it every run starts fresh and nothing expires.
    type: path
  ban:
    description:
      - Addresses or networks to block now on the whole fleet, recorded as manual entries.
      - Refused with an error when one is or covers a protected address.
    type: list
    elements: str
    default: []
  unban:
    description:
      - Addresses or networks to remove from the blocklist now. Entries inside are removed, wider entries are
        split around them, and automatic planning leaves them out for O(expire_after).
    type: list
    elements: str
    default: []
  ban_expire_after:
    description:
      - How long a manual ban lasts, like O(expire_after). V(0) keeps it until it is unbanned.
    type: str
    default: "0"
  who:
    description:
      - Recorded with manual bans and unbans. Defaults to the remote user.
    type: str
  comment:
    description:
      - Recorded with manual bans and unbans.
    type: str
  now:
    description:
      - The planning time (ISO 8601 or epoch seconds), for replays and tests. Defaults to the current time.
    type: str
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Computes the plan; the state file is not written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: The blocklist of the last plan against this one.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
    details: Runs on the controller only.
seealso:
  - module: fleetguard.webshield.offender_stats
  - module: fleetguard.webshield.ipset_blocklist
notes:
  - Distinct offending hosts per network are counted from the merged client lists; when a server's list was
    capped by offender_stats C(top), its own per-network count is used as a lower bound and a warning says so.
"""

EXAMPLES = r"""
- name: Collect offender statistics on every web server
  fleetguard.webshield.offender_stats:
    access_logs: [/var/log/apache2/access.log*]
  register: offender_stats

- name: Plan the fleet blocklist once
  fleetguard.webshield.blocklist_plan:
    stats_var: offender_stats
    levels:
      address:
        min_offenses: 10
      "24":
        min_hits: 50
        min_hosts: 30
    state_file: "{{ playbook_dir }}/../state/blocklist.json"
  run_once: true
  delegate_to: localhost
  register: blocklist

- name: Ban one flooding address on the whole fleet now
  fleetguard.webshield.blocklist_plan:
    ban: [198.51.100.23]
    comment: flooding cocoon-service-worker.js
    allow_special: [documentation]
    state_file: /var/lib/webshield/blocklist.json
  run_once: true
"""

RETURN = r"""
blocklist:
  description: The minimal CIDR lists to push, per address family.
  returned: success
  type: dict
  sample: {"ipv4": ["45.1.2.0/24", "45.9.9.9/32"], "ipv6": ["2a00:1:2:3::/64"]}
entries:
  description: Every planned entry with its evidence.
  returned: success
  type: list
  elements: dict
  sample:
    - cidr: 45.1.2.0/24
      reason: network/24
      hits: 120
      offenses: 60
      hosts: 40
      servers: [web1, web2, web3]
      first_seen: "2026-01-01T00:00:00Z"
      last_seen: "2026-01-02T10:00:00Z"
      added: "2026-01-02T11:00:00Z"
      confirmed: "2026-01-02T11:00:00Z"
      expires: "2026-02-01T11:00:00Z"
      pushed: [45.1.2.0/24]
  contains:
    cidr:
      description: The entry as planned, before protection.
      type: str
      returned: always
      sample: 45.1.2.0/24
    reason:
      description: V(address), V(network/24) (or another level) or V(manual).
      type: str
      returned: always
      sample: network/24
    hits:
      description: Requests from the entry over the fleet.
      type: int
      returned: always
      sample: 120
    offenses:
      description: Detector hits from the entry over the fleet.
      type: int
      returned: always
      sample: 60
    hosts:
      description: Distinct offending addresses inside the entry.
      type: int
      returned: always
      sample: 40
    servers:
      description: The servers that saw it.
      type: list
      elements: str
      returned: always
      sample: [web1, web2]
    first_seen:
      description: First offending request seen in the logs.
      type: str
      returned: always
      sample: "2026-01-01T00:00:00Z"
    last_seen:
      description: Last offending request seen in the logs.
      type: str
      returned: always
      sample: "2026-01-02T10:00:00Z"
    added:
      description: When the entry entered the plan.
      type: str
      returned: always
      sample: "2026-01-02T11:00:00Z"
    confirmed:
      description: The last plan whose evidence still passed the thresholds.
      type: str
      returned: always
      sample: "2026-01-02T11:00:00Z"
    expires:
      description: When the entry leaves the plan unless confirmed again (null for never).
      type: str
      returned: always
      sample: "2026-02-01T11:00:00Z"
    pushed:
      description: The CIDRs of this entry that are pushed, after protected addresses are cut out.
      type: list
      elements: str
      returned: always
      sample: [45.1.2.0/24]
    protected:
      description: Why parts of the entry were cut out (V(trusted), V(fleet host), V(controller), V(special),
        V(country XX), V(unbanned)).
      type: list
      elements: str
      returned: when something was cut out
      sample: [trusted]
    manual:
      description: Who banned it, when, and the comment.
      type: dict
      returned: for manual entries
      sample: {"by": "alice", "at": "2026-01-02T11:00:00Z", "comment": "flooding"}
added:
  description: CIDRs in this plan that were not in the last one.
  returned: success
  type: list
  elements: str
  sample: [45.1.2.0/24]
removed:
  description: CIDRs of the last plan that are no longer planned.
  returned: success
  type: list
  elements: str
  sample: [45.7.0.0/24]
expired:
  description: State entries that expired in this run.
  returned: success
  type: list
  elements: str
  sample: [45.7.0.0/24]
excluded:
  description: Entries that covered protected addresses, with the reason and the protected parts.
  returned: success
  type: list
  elements: dict
  sample: [{"cidr": "45.1.2.0/24", "why": ["trusted"], "protected": ["45.1.2.77/32"]}]
summary:
  description: The figures of the plan (the first field report's figures, over the fleet).
  returned: success
  type: dict
  sample:
    servers: 3
    offending_hosts: 20226
    hosts_covered: 3001
    drop_rate: 0.1484
    networks: 55
    hosts_in_networks: 14080
    addresses: 12
    manual: 1
    entries_ipv4: 60
    entries_ipv6: 0
    excluded: 2
    expired: 0
    clients_capped: false
"""
