# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one fail2ban filter over a sample log with fail2ban's own Python API; print JSON.

Runs under the interpreter that has fail2ban (Debian: /usr/bin/python3 with
/usr/lib/python3/dist-packages; PYTHONPATH picks another release, e.g. 0.11.2), never inside the test venv.
Usage:

    f2b_probe.py CONFDIR FILTER LOGFILE

CONFDIR holds filter.d/FILTER.conf. Comment lines (starting with "#") and empty lines are skipped, every
other line is fed in order to one filter object (so multi-line buffers behave as in the daemon). Output:
one JSON object {"version": fail2ban's version, "regexes": [...], "maxlines": N,
"lines": [{"lineno", "line", "matches": [...]}]}.
"""

import json
import sys
import time

from fail2ban.client.filterreader import FilterReader
from fail2ban.server.filter import Filter
from fail2ban.version import version


def load_filter(confdir, name):
    flt = Filter(None)
    flt.returnRawHost = True
    flt.checkAllRegex = True
    flt.checkFindTime = False
    flt.active = True
    reader = FilterReader(name, "probe", {}, basedir=confdir)
    if not reader.read():
        raise SystemExit("cannot read filter %s from %s" % (name, confdir))
    reader.getOptions({})
    regexes = []
    maxlines = 1
    for opt in reader.convert():
        values = opt[3] if opt[0] == "multi-set" else [opt[3]]
        for value in values:
            if opt[2] == "prefregex":
                flt.prefRegex = value
            elif opt[2] == "addfailregex":
                flt.addFailRegex(value)
                regexes.append(value)
            elif opt[2] == "addignoreregex":
                flt.addIgnoreRegex(value)
            elif opt[2] == "maxlines":
                flt.setMaxLines(value)
                maxlines = int(value)
            elif opt[2] == "datepattern":
                flt.setDatePattern(value)
    return flt, regexes, maxlines


def main(confdir, name, logfile):
    flt, regexes, maxlines = load_filter(confdir, name)
    out = []
    with open(logfile, encoding="utf-8", errors="surrogateescape") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.startswith("#") or not line.strip():
                continue
            matches = []
            for index, fid, date, _fail in flt.processLine(line.rstrip("\r\n")):
                stamp = None
                if date is not None:
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(date)))
                matches.append({"regex": index, "host": str(fid), "time": stamp})
            out.append({"lineno": lineno, "line": line.rstrip("\n"), "matches": matches})
    json.dump({"version": version, "regexes": regexes, "maxlines": maxlines, "lines": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
