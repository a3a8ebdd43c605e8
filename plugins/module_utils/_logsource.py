# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log files for offender_stats: discovery in time order, block reading, incremental state.

Rotated files are ordered oldest first: ``access.log.3.gz``, ``access.log.2``, ``access.log.1``,
``access.log``; ``access_log-20250101``, ``access_log-20250102``, ``access_log``. Compressed rotations
(``.gz``, ``.bz2``, ``.xz``, ``.zst``: what logrotate's ``compresscmd`` may write) are read decompressed;
their offsets count uncompressed bytes. Python's standard library has no zstd reader before 3.14, so
``.zst`` files are decompressed by the host's ``zstd`` program; without one they are refused with the
reason.

The state file remembers, per file, its identity (device, inode, SHA-1 of the first line) and the
offset after the last complete line read. On the next run a file is matched to a remembered entry
first by (device, inode, first line), then by first line alone, which follows:

* rename rotation (``access.log`` -> ``access.log.1``: same inode, read on from the offset);
* copytruncate (the copy has a new inode but the old first line: read on from the offset; the
  truncated original has a new first line: read from 0);
* compression after rotation (``access.log.1`` -> ``access.log.2.gz``: first line of the decompressed
  stream matches: the offset counts uncompressed bytes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

try:
    import lzma
except ImportError:  # a Python built without liblzma
    lzma = None

BLOCK = 4 << 20
MAX_LINE = 1 << 20  # a longer "line" is not a log line: it is skipped and counted as one malformed line
HEAD_MAX = 4096
STATE_VERSION = 1

_NUMBERED = re.compile(r"^(?P<base>.*?)\.(?P<n>[0-9]{1,6})$")
_DATED = re.compile(r"^(?P<base>.*?)[-_.](?P<date>[0-9]{8})(?P<rest>[0-9]{0,6})$")


class SourceError(Exception):
    """A log file that cannot be read: ``path`` and ``reason``."""

    def __init__(self, path, reason):
        Exception.__init__(self, "%s: %s" % (path, reason))
        self.path = path
        self.reason = reason


# File name ending of a compressed rotation -> the compression's name in messages.
_COMPRESSED = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd"}
_READ_ERRORS = (OSError, IOError, EOFError, zlib.error) + ((lzma.LZMAError,) if lzma is not None else ())


def compression(path):
    """The file name ending of a compressed log (``.gz``, ``.bz2``, ``.xz``, ``.zst``), or None."""
    dot = path.rfind(".")
    ext = path[dot:] if dot >= 0 else ""
    return ext if ext in _COMPRESSED else None


def is_compressed(path):
    """A compressed log: read as a stream from its start, offsets count uncompressed bytes."""
    return compression(path) is not None


# The work of reading a compressed log, against a plain one's bytes: (log bytes per byte of the file, the
# cost of a log byte read from it against one read from a plain file: decompressing comes on top of reading).
# The benchmark's 1M-line access log compresses 9.8x with gzip -6, 18.6x with bzip2 -9, 14.8x with xz -6 (real
# logs, with more varied user agents, a little less); read by offender_stats as blocklist_push asks, one
# process: 6.5 s CPU plain, about as much from .gz and .xz, 11.0 s from .bz2 (decompressing alone: 0.5 s,
# 4.7 s, 1.1 s). A gzip file's own trailer gives its log bytes (see read_work).
# zstd -3 (its default) compresses that log 9.7x; the zstd program decompresses it in 0.25 s, beside the reader
# (logrotate pipes the log through it, so the frame does not record the log's length).
_WORK = {".gz": (10.0, 1.05), ".bz2": (16.0, 1.6), ".xz": (15.0, 1.1), ".zst": (10.0, 1.05)}


def read_work(path, size, start):
    """The work of reading ``path`` (``size`` bytes on disk) from ``start`` (an offset in its log bytes), in the
    bytes of a plain file that take as long: to share the files among processes."""
    ext = compression(path)
    if ext is None:
        return max(size - start, 0)
    ratio, cost = _WORK[ext]
    logged = size * ratio
    if ext == ".gz" and size >= 18:
        # gzip ends with the length of its data modulo 2**32 (of the last member: logrotate writes one)
        try:
            with open(path, "rb") as fobj:
                fobj.seek(-4, 2)
                isize = struct.unpack("<I", fobj.read(4))[0]
            if isize >= size:
                logged = isize
        except (OSError, IOError, struct.error):
            pass
    return int(max(logged - start, 0) * cost)


def order_key(path):
    """Sort key that puts rotated files of one log oldest first and the live file last."""
    ext = compression(path)
    plain = path[: -len(ext)] if ext else path
    m = _NUMBERED.match(plain)
    if m:
        return (m.group("base"), 0, -int(m.group("n")))
    m = _DATED.match(plain)
    if m:
        return (m.group("base"), 1, int(m.group("date") + m.group("rest").ljust(6, "0")))
    return (plain, 2, 0)


def log_name(path):
    """The name a log and its rotated files share (``access.log.2.gz`` -> ``access.log``)."""
    return order_key(path)[0]


def discover(patterns):
    """Expand paths/globs. Returns (files in time order, patterns that matched no file)."""
    files, missing, seen = [], [], set()
    for pattern in patterns:
        matches = glob.glob(pattern) if glob.has_magic(pattern) else ([pattern] if os.path.lexists(pattern) else [])
        regular = [p for p in matches if not os.path.isdir(p)]
        if not regular:
            missing.append(pattern)
        for p in regular:
            if p not in seen:
                seen.add(p)
                files.append(p)
    files.sort(key=order_key)
    return files, missing


# Where the zstd program is looked for besides PATH (a module's PATH may be short).
_ZSTD_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")


def zstd_program():
    """The path of the host's zstd program, or None."""
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d] + list(_ZSTD_DIRS)
    return shutil.which("zstd", path=os.pathsep.join(dirs))


class _ZstdReader:
    """A ``.zst`` log decompressed by the zstd program, read like a file (``read``, ``close``).

    The program's failure (corrupt or truncated data) is raised as an OSError without errno when the
    stream ends, with the program's message. Closing before the end stops the program."""

    def __init__(self, program, path):
        self.proc = subprocess.Popen(
            [program, "-d", "-c", "-q", "--", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.ended = False

    def read(self, size=-1):
        data = self.proc.stdout.read(size)
        if not data and size != 0 and not self.ended:
            self.ended = True
            message = self.proc.stderr.read().decode("utf-8", "replace").strip()
            if self.proc.wait() != 0:
                message = message.splitlines()[-1] if message else "zstd exited with %d" % self.proc.returncode
                raise OSError(message)
        return data

    def close(self):
        proc = self.proc
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()


def open_log(path):
    """Open a log for binary reading (``.gz``, ``.bz2``, ``.xz`` and ``.zst`` decompressed). Raises
    SourceError."""
    ext = compression(path)
    if ext == ".xz" and lzma is None:
        raise SourceError(
            path,
            "xz-compressed, which this Python cannot read (built without the lzma module); have logrotate "
            "compress with gzip, or leave the file out of the paths",
        )
    program = zstd_program() if ext == ".zst" else None
    if ext == ".zst" and program is None:
        raise SourceError(
            path,
            "zstd-compressed, and this host has no zstd program to read it (Python's standard library has no "
            "zstd reader before 3.14); install zstd (the zstd package), have logrotate compress with gzip, or "
            "leave the file out of the paths",
        )
    try:
        if ext == ".zst":
            open(path, "rb").close()  # a missing or unreadable file fails with its reason, as the others do
            return _ZstdReader(program, path)
        if ext == ".gz":
            return gzip.open(path, "rb")
        if ext == ".bz2":
            return bz2.BZ2File(path, "rb")
        if ext == ".xz":
            return lzma.LZMAFile(path, "rb")
        return open(path, "rb")
    except (OSError, IOError) as exc:
        raise SourceError(path, exc.strerror or str(exc))


def _read_error(path, exc):
    ext = compression(path)
    if not isinstance(exc, (OSError, IOError)) or (ext and not getattr(exc, "errno", None)):
        what = "%s data" % _COMPRESSED[ext] if ext else "data"
        return SourceError(path, "corrupt or truncated %s (%s)" % (what, exc or type(exc).__name__))
    return SourceError(path, getattr(exc, "strerror", None) or str(exc))


def head_hash(path):
    """SHA-1 (hex) of the first line (at most 4096 bytes); '' when the file has no complete line yet."""
    fobj = open_log(path)
    try:
        data = fobj.read(HEAD_MAX)
    except _READ_ERRORS as exc:
        raise _read_error(path, exc)
    finally:
        fobj.close()
    nl = data.find(b"\n")
    if nl < 0 and len(data) < HEAD_MAX:
        return ""
    return hashlib.sha1(data[: nl + 1] if nl >= 0 else data).hexdigest()


def read_blocks(path, start=0, end=None, block=BLOCK):
    """Yield blocks of complete lines from ``start`` (uncompressed offset) to ``end`` (or EOF).

    The generator's return value (``StopIteration.value``) is not used; instead every yielded item is
    ``(data, offset_after)``. A final line without newline is left for the next run. Raises SourceError.
    """
    fobj = open_log(path)
    try:
        pos = 0
        if start:
            if is_compressed(path):
                while pos < start:
                    chunk = fobj.read(min(block, start - pos))
                    if not chunk:
                        break
                    pos += len(chunk)
            else:
                fobj.seek(start)
                pos = start
        rest = b""
        skipping = False  # inside a line longer than MAX_LINE: dropped, reported as one NUL line
        while end is None or pos < end:
            want = block if end is None else min(block, end - pos)
            chunk = fobj.read(want)
            if not chunk:
                break
            pos += len(chunk)
            data = rest + chunk if rest else chunk
            if skipping:
                first = data.find(b"\n")
                if first < 0:
                    rest = b""
                    continue
                skipping = False
                data = b"\0" + data[first:]
            nl = data.rfind(b"\n")
            if nl < 0:
                rest = data
                if len(rest) > MAX_LINE:
                    skipping, rest = True, b""
                continue
            rest = data[nl + 1 :]
            if len(rest) > MAX_LINE:
                skipping, rest = True, b""
            yield data[: nl + 1], pos - len(rest)
    except _READ_ERRORS as exc:
        raise _read_error(path, exc)
    finally:
        fobj.close()


def line_start(path, offset):
    """The first offset at or after ``offset`` where a line starts (plain files)."""
    if offset <= 0:
        return 0
    with open(path, "rb") as fobj:
        fobj.seek(offset - 1)
        fobj.readline()
        return fobj.tell()


class Planned:
    """One file to read: where to start, its identity for the new state."""

    __slots__ = ("path", "start", "entry", "skip")

    def __init__(self, path, start, entry, skip):
        self.path = path
        self.start = start
        self.entry = entry
        self.skip = skip


def stat_entry(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SourceError(path, exc.strerror or str(exc))
    if not os.access(path, os.R_OK):
        raise SourceError(path, "permission denied")
    return {"path": path, "dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime": st.st_mtime}


def plan(files, state):
    """Decide where to start each file from the previous ``state`` (a dict, maybe empty)."""
    old = list((state or {}).get("files", []))
    used = set()
    out = []
    entries = [stat_entry(p) for p in files]
    # Unchanged files that were read to the end: skip without opening (fast reruns, compressed ones too).
    for e in entries:
        for k, o in enumerate(old):
            if (
                k not in used
                and o.get("path") == e["path"]
                and (o.get("dev"), o.get("ino"), o.get("size"), o.get("mtime"))
                == (e["dev"], e["ino"], e["size"], e["mtime"])
                and o.get("complete")
            ):
                used.add(k)
                e.update(head=o.get("head", ""), offset=o.get("offset", 0), complete=True)
                break
    for e in entries:
        if "head" not in e:
            e["head"] = head_hash(e["path"])
    # 1: same device, inode and first line (rename rotation, growing file).
    for e in entries:
        if "offset" in e:
            continue
        for k, o in enumerate(old):
            if k in used or not e["head"]:
                continue
            same = (o.get("dev"), o.get("ino"), o.get("head")) == (e["dev"], e["ino"], e["head"])
            packed = is_compressed(e["path"])
            if same and packed == is_compressed(o.get("path", "")) and (packed or o.get("offset", 0) <= e["size"]):
                used.add(k)
                e["offset"] = o.get("offset", 0)
                break
    # 2: same first line only (copytruncate copy, compression after rotation).
    for e in entries:
        if "offset" in e:
            continue
        for k, o in enumerate(old):
            if k not in used and e["head"] and o.get("head") == e["head"]:
                used.add(k)
                e["offset"] = o.get("offset", 0)
                break
    for e in entries:
        start = e.get("offset", 0)
        if not is_compressed(e["path"]) and start > e["size"]:
            start = 0
        skip = bool(e.get("complete")) or (not is_compressed(e["path"]) and start == e["size"])
        e["offset"] = start
        out.append(Planned(e["path"], start, e, skip))
    return out


# What each field of a state file's file entry must be (as the module writes them; a field may be missing)
_STATE_FIELDS = {
    "path": str,
    "kind": str,
    "head": str,
    "dev": int,
    "ino": int,
    "size": int,
    "offset": int,
    "mtime": (int, float),
    "complete": bool,
}


def load_state(path):
    """Read the state file; a missing file is an empty state. Raises SourceError when unreadable."""
    try:
        with open(path, "r") as fobj:
            data = json.load(fobj)
    except (OSError, IOError) as exc:
        if getattr(exc, "errno", None) == 2:
            return {}
        raise SourceError(path, exc.strerror or str(exc))
    except ValueError as exc:
        raise SourceError(path, "not a valid state file (%s); remove it to start over" % exc)
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise SourceError(path, "unknown state file version; remove it to start over")
    files = data.get("files", [])
    if not isinstance(files, list) or not all(isinstance(entry, dict) for entry in files):
        raise SourceError(path, 'not a valid state file ("files" is not a list of objects); remove it to start over')
    for number, entry in enumerate(files, 1):
        for key, kinds in _STATE_FIELDS.items():
            value = entry.get(key)
            if key in entry and (not isinstance(value, kinds) or (kinds is int and value < 0)):
                raise SourceError(
                    path,
                    "not a valid state file (file entry %d: %s is %s); remove it to start over"
                    % (number, key, json.dumps(value)),
                )
    return data


def save_state(path, state):
    """Write the state file atomically (temporary file in the same directory, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".offender_stats.", dir=directory)
    try:
        with os.fdopen(fd, "w") as fobj:
            json.dump(state, fobj, sort_keys=True, indent=1)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
