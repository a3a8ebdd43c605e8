# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writers of the compressions logrotate may leave (compresscmd gzip, bzip2, xz, zstd), for the tests.

``OPEN[ext](path, mode)`` opens a file for writing (``"wb"`` or ``"wt"``) as a context manager; ``NAME[ext]`` is
the compression's name in offender_stats' messages. zstd is written by the zstd program (the test setup
installs it), as logrotate's ``compresscmd zstd`` does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import gzip
import io
import lzma
import subprocess


class ZstdWriter(io.BytesIO):
    """Collects what is written; on close, ``zstd`` compresses it into the file."""

    def __init__(self, path, mode="wb"):
        io.BytesIO.__init__(self)
        self.path, self.text = path, "t" in mode

    def write(self, data):
        return io.BytesIO.write(self, data.encode("utf-8") if self.text else data)

    def close(self):
        if not self.closed:
            with open(self.path, "wb") as fobj:
                subprocess.run(["zstd", "-q", "-c"], input=self.getvalue(), stdout=fobj, check=True)
        io.BytesIO.close(self)


OPEN = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": ZstdWriter}
NAME = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd"}


def write(path, data):
    """Write ``data`` (bytes) to ``path``, compressed as its name ends."""
    path = str(path)
    with OPEN["." + path.rpartition(".")[2]](path, "wb") as fobj:
        fobj.write(data)
