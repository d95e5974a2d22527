# SPDX-License-Identifier: LGPL-2.1-or-later
"""changes, diff_size, export and apply."""

from __future__ import annotations

import errno
import gzip
import io
import os
import tarfile

import pytest

from btrfslayer import Change, ChangeKind
from conftest import need


def _write(root, rel, data=b"data"):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def pair(handle):
    """base: /keep, /gone, /dir/old; child (a snapshot of base): /gone
    deleted, /dir/new added (4096 bytes), /keep modified (5 bytes)."""
    h = handle
    h.create("base")
    base = h.get("base")
    _write(base, "keep", b"old")
    _write(base, "gone")
    _write(base, "dir/old")
    h.create("child", "base")
    child = h.get("child")
    os.unlink(os.path.join(child, "gone"))
    _write(child, "dir/new", b"n" * 4096)
    _write(child, "keep", b"newer")
    return h


def _names(tar_bytes):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        return {m.name.removeprefix("./").rstrip("/"): m for m in t.getmembers()}


@pytest.mark.parametrize("walk", [False, True])
def test_changes(pair, lib, walk):
    need(lib, "changes")
    changes = pair.changes("child", "base", walk=walk)
    assert changes == [Change(ChangeKind.MODIFIED, "/dir"),
                       Change(ChangeKind.ADDED, "/dir/new"),
                       Change(ChangeKind.DELETED, "/gone"),
                       Change(ChangeKind.MODIFIED, "/keep")]
    assert [str(c) for c in changes] == ["C /dir", "A /dir/new", "D /gone", "C /keep"]


def test_changes_without_parent_is_all_added(pair, lib):
    need(lib, "changes")
    changes = pair.changes("base")
    assert {c.kind for c in changes} == {ChangeKind.ADDED}
    assert [c.path for c in changes] == ["/dir", "/dir/old", "/gone", "/keep"]


def test_changes_errors(pair, lib):
    need(lib, "changes")
    with pytest.raises(FileNotFoundError):
        pair.changes("missing")
    with pytest.raises(FileNotFoundError):
        pair.changes("child", "missing")


def test_diff_size(pair, lib):
    need(lib, "diff_size")
    assert pair.diff_size("child", "base") == 4096 + len(b"newer")
    with pytest.raises(FileNotFoundError):
        pair.diff_size("missing")


def test_export_to_fd_file_and_writer(pair, lib, tmp_path):
    need(lib, "export")
    h = pair
    # an fd
    path = tmp_path / "layer.tar"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        h.export("child", fd, "base")
    finally:
        os.close(fd)
    by_fd = path.read_bytes()
    names = _names(by_fd)
    assert {"dir", "dir/new", ".wh.gone", "keep"} <= set(names)
    assert "dir/old" not in names
    # a buffered file object, with bytes of its own before and after
    with open(tmp_path / "framed", "wb") as f:
        f.write(b"HEAD")
        h.export("child", f, "base")
        f.write(b"TAIL")
    framed = (tmp_path / "framed").read_bytes()
    assert framed == b"HEAD" + by_fd + b"TAIL"
    # any writable object, through a pipe; deterministic bytes
    buf = io.BytesIO()
    h.export("child", buf, "base")
    assert buf.getvalue() == by_fd


def test_export_progress(handle, lib):
    need(lib, "export")
    handle.create("big")
    _write(handle.get("big"), "blob", os.urandom(4 << 20))
    seen = []
    buf = io.BytesIO()
    handle.export("big", buf, progress=lambda done, total: seen.append((done, total)))
    assert seen, "no progress reported for a 4 MiB layer"
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and dones[-1] <= len(buf.getvalue())


def test_exception_in_progress_is_raised_after_the_call(handle, lib):
    need(lib, "apply")
    handle.create("big")

    def boom(done, total):
        raise KeyError("from progress")
    with pytest.raises(KeyError, match="from progress") as raised:
        handle.apply("big", io.BytesIO(_tar([("blob", os.urandom(4 << 20))])), progress=boom)
    # the exception stopped the call: the library said ECANCELED, naming why
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.ECANCELED
    assert "stopped by the progress callback" in str(raised.value.__cause__)


def test_apply_progress(handle, lib):
    need(lib, "apply")
    handle.create("big")
    seen = []
    unpacked = handle.apply("big", io.BytesIO(_tar([("blob", os.urandom(4 << 20))])),
                            progress=lambda done, total: seen.append((done, total)))
    assert seen, "no progress reported for a 4 MiB tar"
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and unpacked == 4 << 20


def _tar(entries, compress=None):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                info.uid = 1234
                t.addfile(info, io.BytesIO(data))
    b = raw.getvalue()
    return gzip.compress(b) if compress == "gzip" else b


def test_apply_from_file_and_reader(handle, lib, tmp_path):
    need(lib, "apply")
    h = handle
    tar = _tar([("d", None), ("d/x", b"x" * 100), ("y", b"yy")])
    h.create("from-file")
    p = tmp_path / "in.tar"
    p.write_bytes(tar)
    with open(p, "rb") as f:
        unpacked = h.apply("from-file", f)
    assert unpacked >= 102
    root = h.get("from-file")
    with open(os.path.join(root, "d", "x"), "rb") as f:
        assert f.read() == b"x" * 100
    assert os.stat(os.path.join(root, "y")).st_uid == 1234      # ownership kept
    # gzip, from an object with read() only (fed through a pipe)
    h.create("from-reader")
    assert h.apply("from-reader", io.BytesIO(_tar([("z", b"zzz")], "gzip"))) >= 3
    with open(os.path.join(h.get("from-reader"), "z"), "rb") as f:
        assert f.read() == b"zzz"


def test_apply_whiteout_then_roundtrip(pair, lib):
    need(lib, "apply", "export")
    h = pair
    h.create("copy", "base")
    buf = io.BytesIO()
    h.export("child", buf, "base")
    buf.seek(0)
    h.apply("copy", buf)
    copy = h.get("copy")
    assert not os.path.exists(os.path.join(copy, "gone"))
    with open(os.path.join(copy, "keep"), "rb") as f:
        assert f.read() == b"newer"
    with open(os.path.join(copy, "dir", "new"), "rb") as f:
        assert f.read() == b"n" * 4096
    assert os.path.exists(os.path.join(copy, "dir", "old"))


def test_apply_refuses_escape(handle, lib, btrfs):
    need(lib, "apply")
    handle.create("victim")
    outside = os.path.join(btrfs.mnt, "escaped")
    with pytest.raises(OSError):
        handle.apply("victim", io.BytesIO(_tar([("../../../escaped", b"evil")])))
    assert not os.path.exists(outside)
    with pytest.raises(FileNotFoundError):
        handle.apply("missing", io.BytesIO(_tar([("a", b"a")])))
