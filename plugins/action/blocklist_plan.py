# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for fleetguard.webshield.blocklist_plan: runs on the controller only."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.fleetguard.webshield.plugins.module_utils import _cidr, _mmdb, _plan

DEFAULT_TRUSTED = ["127.0.0.0/8", "::1/128"]

ARGUMENT_SPEC = {
    "stats": {"type": "dict"},
    "stats_var": {"type": "str", "default": "offender_stats"},
    "hosts": {"type": "list", "elements": "str"},
    "levels": {"type": "dict"},
    "broadest_prefix": {"type": "int", "default": 16},
    "broadest_prefix6": {"type": "int", "default": 48},
    "max_entries": {"type": "int", "default": 65536},
    "expire_after": {"type": "str", "default": "30d"},
    "on_protected": {"type": "str", "default": "split", "choices": ["split", "drop"]},
    "trusted_networks": {"type": "list", "elements": "str"},
    "protected": {"type": "list", "elements": "str", "default": []},
    "protect_fleet": {"type": "bool", "default": True},
    "protect_controller": {"type": "bool", "default": True},
    "controller_addresses": {"type": "list", "elements": "str", "default": []},
    "protect_special": {"type": "bool", "default": True},
    "allow_special": {"type": "list", "elements": "str", "default": []},
    "geoip_db": {"type": "path"},
    "protected_countries": {"type": "list", "elements": "str"},
    "state_file": {"type": "path"},
    "ban": {"type": "list", "elements": "str", "default": []},
    "unban": {"type": "list", "elements": "str", "default": []},
    "ban_expire_after": {"type": "str", "default": "0"},
    "who": {"type": "str"},
    "comment": {"type": "str"},
    "now": {"type": "str"},
}
REQUIRED_BY = {"protected_countries": ["geoip_db"]}


def _get(mapping, key, default=None):
    try:
        value = mapping[key]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


def _is_ip(text):
    try:
        _cidr.parse_address(to_text(text))
    except _cidr.CidrError:
        return False
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, required_by=REQUIRED_BY)
        hostvars = task_vars.get("hostvars", {})
        hosts = args["hosts"]
        if hosts is None:
            hosts = task_vars.get("ansible_play_hosts_all") or task_vars.get("ansible_play_hosts") or []
        warnings = []

        # inputs: given directly, or each host's registered offender_stats result
        if args["stats"] is not None:
            stats = args["stats"]
        else:
            stats = {}
            missing = []
            for host in hosts:
                value = _get(_get(hostvars, host, {}), args["stats_var"])
                if value is None:
                    missing.append(host)
                else:
                    stats[host] = value
            if missing and not (args["ban"] or args["unban"]):
                warnings.append(
                    "no '%s' registered on %s: those servers are left out of the plan (register the offender_stats "
                    "result under that name, or set stats_var)" % (args["stats_var"], ", ".join(sorted(missing)))
                )

        # protected addresses
        trusted = args["trusted_networks"]
        if trusted is None:
            trusted = task_vars.get("webshield_trusted_networks", DEFAULT_TRUSTED)
        sources = [("trusted", [to_text(t) for t in trusted]), ("protected", args["protected"])]
        if args["protect_fleet"]:
            own = []
            no_facts = []
            for host in hosts:
                hv = _get(hostvars, host, {})
                facts = _get(hv, "ansible_facts", {})
                found = list(_get(facts, "all_ipv4_addresses", [])) + list(_get(facts, "all_ipv6_addresses", []))
                for key in ("default_ipv4", "default_ipv6"):
                    addr = _get(_get(facts, key, {}), "address")
                    if addr:
                        found.append(addr)
                ansible_host = _get(hv, "ansible_host")
                if ansible_host and _is_ip(ansible_host):
                    found.append(ansible_host)
                elif _is_ip(host):
                    found.append(host)
                if not _get(facts, "all_ipv4_addresses") and not _get(facts, "all_ipv6_addresses"):
                    no_facts.append(host)
                own.extend(to_text(a).split("%")[0] for a in found)
            if no_facts:
                warnings.append(
                    "no network facts for %s: their own addresses are protected only through ansible_host; gather "
                    "facts (gather_subset: network) first" % ", ".join(sorted(no_facts))
                )
            sources.append(("fleet host", own))
        if args["protect_controller"]:
            ctrl = list(args["controller_addresses"])
            for host in hosts:
                hv = _get(hostvars, host, {})
                env = _get(_get(hv, "ansible_facts", {}), "env", {}) or _get(hv, "ansible_env", {})
                for key in ("SSH_CLIENT", "SSH_CONNECTION"):
                    value = _get(env, key)
                    if value:
                        first = to_text(value).split()[0]
                        if _is_ip(first):
                            ctrl.append(first)
            sources.append(("controller", ctrl))
        if args["protect_special"]:
            try:
                special = _cidr.RangeSet(ranges=_cidr.special_cidrs(args["allow_special"])).to_cidrs()
            except _cidr.CidrError as exc:
                raise AnsibleActionFail(
                    "allow_special: %s (use category names %s or CIDRs)"
                    % (exc, ", ".join(sorted(_cidr.SPECIAL_RANGES)))
                )
            sources.append(("special", special["ipv4"] + special["ipv6"]))
        geo = None
        if args["geoip_db"]:
            try:
                geo = _mmdb.Reader(args["geoip_db"])
            except _mmdb.MmdbError as exc:
                raise AnsibleActionFail("geoip_db: %s" % exc)

        try:
            protection = _plan.Protection(sources, geo=geo, countries=args["protected_countries"] or [])
            state = _plan.load_state(args["state_file"])
            now = _plan.parse_time(args["now"]) if args["now"] else None
            options = {
                key: args[key]
                for key in (
                    "levels",
                    "broadest_prefix",
                    "broadest_prefix6",
                    "max_entries",
                    "expire_after",
                    "on_protected",
                    "ban",
                    "unban",
                    "ban_expire_after",
                    "who",
                    "comment",
                )
            }
            if not options["who"]:
                options["who"] = to_text(task_vars.get("ansible_user_id") or task_vars.get("ansible_user") or "ansible")
            plan, new_state = _plan.build_plan(stats, protection, options, state=state, now=now)
        except (_plan.PlanError, _mmdb.MmdbError, _cidr.CidrError) as exc:
            raise AnsibleActionFail(to_text(exc))

        check_mode = bool(self._task.check_mode)
        if args["state_file"] and not check_mode:
            try:
                _plan.save_state(args["state_file"], new_state)
            except (IOError, OSError) as exc:
                raise AnsibleActionFail(
                    "cannot write the state file %s: %s (check the directory exists and is writable)"
                    % (args["state_file"], exc)
                )
        for warning in warnings + plan.pop("warnings"):
            self._display.warning(warning)
        result.update(plan)
        result["changed"] = plan["changed"]
        if self._task.diff:
            before = sorted(set(_plan._flat(state.get("blocklist") or {})), key=_plan._sort_key)
            after = _plan._flat(plan["blocklist"])
            result["diff"] = {
                "before": "\n".join(before) + ("\n" if before else ""),
                "after": "\n".join(after) + ("\n" if after else ""),
                "before_header": "blocklist (last plan)",
                "after_header": "blocklist (this plan)",
            }
        return result
