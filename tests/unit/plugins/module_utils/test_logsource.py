# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotated-file ordering, block reading and incremental state of offender_stats."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import json
import os

import pytest
from compressors import NAME
from compressors import write as _write_compressed

from ansible_collections.fleetguard.webshield.plugins.module_utils import _logsource as src


@pytest.mark.parametrize(
    "names, ordered",
    [
        (
            ["access.log", "access.log.1", "access.log.2.gz", "access.log.10.gz"],
            ["access.log.10.gz", "access.log.2.gz", "access.log.1", "access.log"],
        ),
        (
            ["access_log", "access_log-20250102", "access_log-20250101.gz"],
            ["access_log-20250101.gz", "access_log-20250102", "access_log"],
        ),
        (["error.log.1", "access.log", "error.log"], ["access.log", "error.log.1", "error.log"]),
        (
            ["access.log", "access.log.1", "access.log.2.xz", "access.log.3.bz2", "access.log.4.zst"],
            ["access.log.4.zst", "access.log.3.bz2", "access.log.2.xz", "access.log.1", "access.log"],
        ),
        (
            ["access_log-20250103.xz", "access_log", "access_log-20250102.bz2"],
            ["access_log-20250102.bz2", "access_log-20250103.xz", "access_log"],
        ),
    ],
)
def test_discover_orders_rotated_files_oldest_first(tmp_path, names, ordered):
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "subdir").mkdir()
    files, missing = src.discover([str(tmp_path / "*")])
    assert [os.path.basename(f) for f in files] == ordered
    assert missing == []


def test_discover_reports_patterns_without_files(tmp_path):
    (tmp_path / "a.log").write_bytes(b"")
    files, missing = src.discover([str(tmp_path / "a.log"), str(tmp_path / "none*"), str(tmp_path / "gone.log")])
    assert files == [str(tmp_path / "a.log")]
    assert missing == [str(tmp_path / "none*"), str(tmp_path / "gone.log")]


@pytest.mark.parametrize("ext", ["", ".gz", ".bz2", ".xz", ".zst"])
@pytest.mark.parametrize("start", [0, 4, 8])
def test_read_blocks_returns_complete_lines_and_offsets(tmp_path, ext, start):
    data = b"aaa\nbbb\nccc\npartial"
    path = tmp_path / ("x" + ext)
    if ext:
        _write_compressed(path, data)
    else:
        path.write_bytes(data)
    blocks = list(src.read_blocks(str(path), start, block=5))
    assert b"".join(b for b, _off in blocks) == data[start:12]
    assert blocks[-1][1] == 12


def test_read_blocks_end_offset(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"aaa\nbbb\nccc\n")
    assert [b for b, _off in src.read_blocks(str(path), 4, 8)] == [b"bbb\n"]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x1f\x8b\x08\x00garbage-not-gzip", "gzip"),
        (b"plain text, not gzip at all\n", "gzip"),
    ],
)
def test_corrupt_gzip_names_the_file(tmp_path, content, reason):
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(content)
    with pytest.raises(src.SourceError) as err:
        list(src.read_blocks(str(path)))
    assert err.value.path == str(path)
    assert reason in err.value.reason.lower() or "not a gzipped file" in err.value.reason.lower()


@pytest.mark.parametrize("ext", sorted(NAME))
def test_truncated_compressed_file_names_the_file(tmp_path, ext):
    path = tmp_path / ("access.log.2" + ext)
    _write_compressed(path, b"line %d\n" * 10000 % tuple(range(10000)))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(src.SourceError) as err:
        list(src.read_blocks(str(path)))
    assert err.value.path == str(path)
    assert "corrupt or truncated %s data" % NAME[ext] in err.value.reason


@pytest.mark.parametrize("ext", [".bz2", ".xz", ".zst"])
@pytest.mark.parametrize(
    "content", [b"plain text, not compressed\n", b"BZh91AY&SY\x00garbage" * 3, b"\x28\xb5\x2f\xfd" + b"\x00" * 20]
)
def test_corrupt_bzip2_and_xz_name_the_file(tmp_path, ext, content):
    path = tmp_path / ("access.log.2" + ext)
    path.write_bytes(content)
    with pytest.raises(src.SourceError) as err:
        src.plan([str(path)], {})  # the first line is read when planning
    assert err.value.path == str(path)
    assert "corrupt or truncated %s data" % NAME[ext] in err.value.reason


def test_zstd_without_the_zstd_program_is_refused_with_the_reason(tmp_path, monkeypatch):
    path = tmp_path / "access.log.2.zst"
    _write_compressed(path, b"one\n")
    assert src.plan([str(path)], {})[0].path == str(path)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(src, "_ZSTD_DIRS", ())
    with pytest.raises(src.SourceError) as err:
        src.plan([str(path)], {})
    assert err.value.path == str(path)
    assert err.value.reason.startswith("zstd-compressed, and this host has no zstd program to read it")
    assert "install zstd" in err.value.reason


def test_zstd_program_is_found_outside_a_short_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    found = src.zstd_program()
    assert found is not None and os.path.basename(found) == "zstd"


def test_zstd_reader_closed_early_stops_the_program_and_a_missing_file_names_its_reason(tmp_path):
    path = tmp_path / "access.log.2.zst"
    _write_compressed(path, b"".join(b"line %d\n" % i for i in range(200000)))
    fobj = src.open_log(str(path))
    assert fobj.read(10) == b"line 0\nlin"
    fobj.close()
    assert fobj.proc.returncode is not None  # not left running
    assert src.head_hash(str(path)) == src.head_hash(str(path))
    with pytest.raises(src.SourceError) as err:
        src.open_log(str(tmp_path / "gone.zst"))
    assert err.value.reason == "No such file or directory"


def test_xz_without_lzma_is_refused_with_the_reason(tmp_path, monkeypatch):
    path = tmp_path / "access.log.2.xz"
    _write_compressed(path, b"one\n")
    monkeypatch.setattr(src, "lzma", None)
    with pytest.raises(src.SourceError) as err:
        src.plan([str(path)], {})
    assert "built without the lzma module" in err.value.reason


def test_unreadable_file_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "access.log"
    path.write_bytes(b"x\n")
    monkeypatch.setattr(src.os, "access", lambda p, mode: False)
    with pytest.raises(src.SourceError) as err:
        src.plan([str(path)], {})
    assert err.value.path == str(path)
    assert err.value.reason == "permission denied"


def _state_after(paths, state=None):
    planned = src.plan(paths, state or {})
    return planned, {
        "files": [
            dict(p.entry, offset=os.path.getsize(p.path) if not src.is_compressed(p.path) else p.start, complete=False)
            for p in planned
        ]
    }


def test_plan_follows_rename_rotation(tmp_path):
    live = tmp_path / "access.log"
    live.write_bytes(b"one\ntwo\n")
    _planned, state = _state_after([str(live)])
    os.rename(str(live), str(tmp_path / "access.log.1"))
    with open(str(tmp_path / "access.log.1"), "ab") as fobj:
        fobj.write(b"three\n")
    live.write_bytes(b"four\n")
    planned = src.plan([str(tmp_path / "access.log.1"), str(live)], state)
    assert [(os.path.basename(p.path), p.start) for p in planned] == [("access.log.1", 8), ("access.log", 0)]


def test_plan_follows_copytruncate(tmp_path):
    live = tmp_path / "access.log"
    live.write_bytes(b"one\ntwo\n")
    _planned, state = _state_after([str(live)])
    (tmp_path / "access.log.1").write_bytes(b"one\ntwo\nthree\n")
    live.write_bytes(b"four\n")
    planned = src.plan([str(tmp_path / "access.log.1"), str(live)], state)
    assert [(os.path.basename(p.path), p.start) for p in planned] == [("access.log.1", 8), ("access.log", 0)]


@pytest.mark.parametrize("ext", sorted(NAME))
def test_plan_follows_compression_after_rotation(tmp_path, ext):
    rotated = tmp_path / "access.log.1"
    rotated.write_bytes(b"one\ntwo\n")
    _planned, state = _state_after([str(rotated)])
    _write_compressed(tmp_path / ("access.log.2" + ext), b"one\ntwo\nthree\n")
    os.unlink(str(rotated))
    planned = src.plan([str(tmp_path / ("access.log.2" + ext))], state)
    assert planned[0].start == 8
    assert [b for b, _off in src.read_blocks(planned[0].path, planned[0].start)] == [b"three\n"]


def test_plan_restarts_a_truncated_file(tmp_path):
    live = tmp_path / "access.log"
    live.write_bytes(b"one\ntwo\nthree\n")
    _planned, state = _state_after([str(live)])
    live.write_bytes(b"x\n")
    assert src.plan([str(live)], state)[0].start == 0


def test_plan_skips_unchanged_complete_files_without_reading(tmp_path, monkeypatch):
    live = tmp_path / "access.log.1.gz"
    with gzip.open(str(live), "wb") as fobj:
        fobj.write(b"one\n")
    planned = src.plan([str(live)], {})
    state = {"files": [dict(planned[0].entry, offset=4, complete=True)]}
    monkeypatch.setattr(src, "head_hash", lambda path: pytest.fail("read " + path))
    again = src.plan([str(live)], state)
    assert again[0].skip and again[0].start == 4


def test_state_roundtrip_and_errors(tmp_path):
    path = tmp_path / "state.json"
    assert src.load_state(str(path)) == {}
    src.save_state(str(path), {"version": 1, "files": []})
    assert json.loads(path.read_text()) == {"version": 1, "files": []}
    assert oct(os.stat(str(path)).st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    path.write_text("{not json")
    with pytest.raises(src.SourceError, match="not a valid state file"):
        src.load_state(str(path))
    path.write_text('{"version": 99}')
    with pytest.raises(src.SourceError, match="version"):
        src.load_state(str(path))
    for files in (
        '"x"',
        "null",
        '["x"]',
        "[null]",
        '{"a": 1}',
        '[{"path": 1}]',
        '[{"offset": -5}]',
        '[{"mtime": "x"}]',
    ):
        # edited by hand: an error, not a traceback
        path.write_text('{"version": %d, "files": %s}' % (src.STATE_VERSION, files))
        with pytest.raises(src.SourceError, match="not a valid state file"):
            src.load_state(str(path))


@pytest.mark.parametrize("offset, expected", [(0, 0), (1, 4), (3, 4), (4, 4), (5, 8), (8, 8), (11, 12), (12, 12)])
def test_line_start(tmp_path, offset, expected):
    path = tmp_path / "x"
    path.write_bytes(b"aaa\nbbb\nccc\n")
    assert src.line_start(str(path), offset) == expected


def test_read_blocks_skips_a_huge_line(tmp_path, monkeypatch):
    monkeypatch.setattr(src, "MAX_LINE", 10)
    path = tmp_path / "x"
    path.write_bytes(b"ok\n" + b"y" * 100 + b"\nafter\n")
    data = b"".join(b for b, _off in src.read_blocks(str(path), block=8))
    assert data == b"ok\n\0\nafter\n"


def test_read_work_counts_the_log_bytes_of_a_gzip_file_from_its_trailer(tmp_path):
    data = b"".join(b"192.0.2.%d - - [03/Feb/2021:10:11:12 +0000] \"GET /%d HTTP/1.1\" 200 5\n" % (i % 256, i)
                    for i in range(20000))  # fmt: skip
    path = tmp_path / "access.log.2.gz"
    _write_compressed(path, data)
    size = os.path.getsize(str(path))
    assert size * 5 < len(data)  # much smaller on disk than the log it holds
    cost = src._WORK[".gz"][1]
    assert src.read_work(str(path), size, 0) == int(len(data) * cost)
    assert src.read_work(str(path), size, 1000) == int((len(data) - 1000) * cost)
    assert src.read_work(str(path), size, len(data) + 5) == 0
    # plain files: the bytes left; the other compressions: estimated from their size
    assert src.read_work("access.log", 1000, 400) == 600
    ratio, cost = src._WORK[".xz"]
    assert src.read_work("access.log.2.xz", 1000, 0) == int(1000 * ratio * cost)


def test_read_work_of_a_damaged_gzip_trailer_falls_back_to_an_estimate(tmp_path):
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 30)  # its "length" is 0: less than the file, not believed
    ratio, cost = src._WORK[".gz"]
    assert src.read_work(str(path), 32, 0) == int(32 * ratio * cost)
