# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every mapping of a library error to a Python exception, each carrying the
failing call's own message."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

import btrfslayer
from conftest import as_uid


def test_file_exists(handle):
    handle.create("a")
    with pytest.raises(FileExistsError) as e:
        handle.create("a")
    assert e.value.errno == errno.EEXIST and "a" in str(e.value)


def test_file_not_found(handle):
    with pytest.raises(FileNotFoundError) as e:
        handle.remove("missing")
    assert e.value.errno == errno.ENOENT and "missing" in e.value.strerror
    with pytest.raises(FileNotFoundError):
        handle.get("missing")
    with pytest.raises(FileNotFoundError):
        handle.create("child", "missing-parent")
    assert not handle.exists("child")


def test_permission_error(btrfs, lib):
    """An unprivileged process opening a home it cannot reach."""
    private = os.path.join(btrfs.mnt, "private")
    os.makedirs(private, mode=0o700, exist_ok=True)
    home = os.path.join(private, "home")
    out = as_uid(65534,
                 lambda: btrfslayer.Handle(home, {"btrfs.mount_home": False}, library=lib).close(),
                 lambda e: f"{type(e).__name__} {getattr(e, 'errno', '')} {e}") or "no error"
    assert out.startswith("PermissionError "), out
    assert home in out or private in out
    assert not os.path.exists(home)


def test_plain_oserror_with_errno(handle):
    with pytest.raises(OSError) as e:
        handle.create("../escape")
    assert type(e.value) is OSError and e.value.errno == errno.EINVAL
    assert "../escape" in str(e.value)
    with pytest.raises(OSError) as e:
        handle.create("b", storage_opts={"nosuchkey": "1"})
    assert type(e.value) is OSError and e.value.errno == errno.EINVAL
    assert "nosuchkey" in str(e.value).lower()
    assert not handle.exists("b")


def test_ebusy_on_a_layer_mounted_on_itself(handle, btrfs):
    handle.create("m")
    path = handle.get("m")
    btrfs.run("mount", "--bind", path, path)
    try:
        with pytest.raises(OSError) as e:
            handle.remove("m")
        assert type(e.value) is OSError and e.value.errno == errno.EBUSY
    finally:
        btrfs.run("umount", path)
    handle.remove("m")


def test_subclasses_from_errno(btrfs, lib):
    # ENOTDIR: home is a file -> NotADirectoryError, as OSError() picks it
    path = os.path.join(btrfs.mnt, "a-file")
    open(path, "w").close()
    with pytest.raises(NotADirectoryError) as e:
        btrfslayer.Handle(path, library=lib)
    assert e.value.errno == errno.ENOTDIR and path in str(e.value)


def test_not_btrfs(btrfs, lib):
    home = os.path.join(btrfs.tmpfs, "home")
    with pytest.raises(btrfslayer.NotBtrfsError) as e:
        btrfslayer.Handle(home, library=lib)
    assert isinstance(e.value, OSError)
    assert e.value.errno == btrfslayer.ENOTBTRFS and home in str(e.value)


def test_no_quota(home, lib, btrfs):
    subprocess.run(["btrfs", "quota", "disable", btrfs.mnt], check=True)
    with btrfslayer.Handle(home, library=lib) as h:
        h.create("q")
        with pytest.raises(btrfslayer.NoQuotaError) as e:
            h.get_usage("q")
        assert isinstance(e.value, OSError)
        assert e.value.errno == btrfslayer.ENOQUOTA and "q" in str(e.value)


def test_value_errors_before_c(handle):
    for call in (handle.create, handle.remove, handle.get, handle.exists):
        with pytest.raises(ValueError, match="null byte"):
            call("a\0b")
    assert handle.layers() == {}


def test_message_is_the_calls_own(handle):
    """Two failing calls in a row: each error says its own id."""
    errors = []
    for i in ("first", "second"):
        try:
            handle.remove(i)
        except FileNotFoundError as e:
            errors.append(str(e))
    assert "first" in errors[0] and "second" not in errors[0]
    assert "second" in errors[1] and "first" not in errors[1]
