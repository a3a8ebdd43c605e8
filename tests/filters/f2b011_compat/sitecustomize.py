# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lets fail2ban 0.11.2 (written for Python <= 3.9; EL 7 runs it on 3.6) run unchanged on Python 3.11.

Put this directory first on PYTHONPATH: Python imports sitecustomize at start-up, before fail2ban. No file
of fail2ban is edited; two things removed from Python after 3.9 are given back, with their old meaning:

1. `from collections import Mapping` / `MutableMapping` (fail2ban/server/actions.py, jails.py, action.py):
   the aliases of collections.abc, removed in Python 3.10.
2. Global inline regex flags that are not at the start of a pattern: 0.11.2's date templates build
   `^(?:\\W{0,2})?(?iu)...` and `(?=^|\\b|\\W)(?iu)...`. Up to Python 3.10 such flags applied to the whole
   pattern (with a DeprecationWarning); 3.11 raises re.error. A pattern that fails this way is compiled
   again with those flags moved to its start, which is exactly what older Pythons did. Patterns that
   compile as they are stay untouched.

asyncore, asynchat, imp and distutils.version, which 0.11.2 also uses, still exist in 3.11. This file
shadows the distribution's own sitecustomize (Debian: the apport hook), which the tests do not need.
"""

import collections
import collections.abc
import re

for _name in ("Mapping", "MutableMapping", "Sequence", "MutableSequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

_GLOBAL_FLAGS = "aiLmsux"


def hoist_global_flags(pattern):
    """pattern with every global flag group "(?iu)" removed and their union put in front."""
    out = []
    flags = ""
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out.append(char)
            index += 1
            if pattern[index : index + 1] == "^":
                out.append("^")
                index += 1
            if pattern[index : index + 1] == "]":  # a "]" right after "[" or "[^" is a literal
                out.append("]")
                index += 1
            continue
        elif pattern.startswith("(?", index):
            end = index + 2
            while end < len(pattern) and pattern[end] in _GLOBAL_FLAGS:
                end += 1
            if end > index + 2 and pattern[end : end + 1] == ")":
                flags += "".join(flag for flag in pattern[index + 2 : end] if flag not in flags)
                index = end + 1
                continue
        out.append(char)
        index += 1
    return ("(?%s)" % flags if flags else "") + "".join(out)


_original_compile = re._compile


def _compile(pattern, flags):
    try:
        return _original_compile(pattern, flags)
    except re.error as error:
        if isinstance(pattern, str) and "global flags not at the start" in str(error):
            return _original_compile(hoist_global_flags(pattern), flags)
        raise


re._compile = _compile
