"""Make the checkout importable as ansible_collections.fleetguard.webshield for pytest."""

import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "fleetguard", "webshield")


def _ensure_link():
    if os.path.islink(LINK) and os.path.realpath(LINK) == ROOT:
        return
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    if os.path.islink(LINK) or os.path.exists(LINK):
        os.unlink(LINK)
    os.symlink(ROOT, LINK)


_ensure_link()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

collect_ignore_glob = [".cache/*", ".venv*/*", "molecule/*", "lab/*"]
