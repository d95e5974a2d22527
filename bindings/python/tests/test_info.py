# SPDX-License-Identifier: LGPL-2.1-or-later
"""The 1.0 calls on one layer: layer_info, set_read_only, get_fd,
mount_idmapped (with attach_mount)."""

from __future__ import annotations

import datetime
import errno
import os
import stat
import subprocess

import pytest

import btrfslayer
from conftest import as_uid, need


def test_layer_info(handle, lib):
    need(lib, "layer_info")
    h = handle
    before = datetime.datetime.now(datetime.timezone.utc)
    h.create("base")
    h.create("child", "base", read_only=True)
    base, child = h.layer_info("base"), h.layer_info("child")
    assert isinstance(child, btrfslayer.LayerInfo)
    assert child.id == "child" and child.parent == "base" and base.parent is None
    assert child.read_only and not base.read_only
    assert not child.has_nested
    assert child.subvolume_id > base.subvolume_id > 0
    assert child.generation > 0
    assert child.created.tzinfo is not None and child.created.utcoffset().total_seconds() == 0
    # btrfs otime comes from the kernel clock; a minute of slack either way
    assert abs((child.created - before).total_seconds()) < 60
    assert child.created_ns // 10**9 == int(child.created.timestamp())
    with pytest.raises(FileNotFoundError):
        h.layer_info("missing")


def test_layer_info_parent_gone_and_nested(handle, lib, btrfs):
    need(lib, "layer_info")
    h = handle
    h.create("p")
    h.create("c", "p")
    h.remove("p")
    assert h.layer_info("c").parent is None
    btrfs.run("btrfs", "subvolume", "create", os.path.join(h.get("c"), "nested"))
    assert h.layer_info("c").has_nested


def test_layer_info_with_quotas_off(home, lib, btrfs):
    need(lib, "layer_info")
    btrfs.run("btrfs", "quota", "disable", btrfs.mnt)
    with btrfslayer.Handle(home, library=lib) as h:
        h.create("a")
        assert h.layer_info("a").subvolume_id > 0


def test_set_read_only_seals_nested_too(handle, lib, btrfs):
    need(lib, "set_read_only", "layer_info")
    h = handle
    h.create("img")
    root = h.get("img")
    btrfs.run("btrfs", "subvolume", "create", os.path.join(root, "nested"))
    h.set_read_only("img")
    assert h.layer_info("img").read_only
    for d in (root, os.path.join(root, "nested")):
        with pytest.raises(OSError) as e:
            open(os.path.join(d, "new"), "w")
        assert e.value.errno == errno.EROFS
    h.set_read_only("img")      # sealing a sealed layer is a no-op
    h.set_read_only("img", False)
    assert not h.layer_info("img").read_only
    open(os.path.join(root, "nested", "new"), "w").close()
    with pytest.raises(FileNotFoundError):
        h.set_read_only("missing")


def test_get_fd(handle, lib):
    need(lib, "get_fd")
    h = handle
    h.create("f")
    with open(os.path.join(h.get("f"), "x"), "w") as f:
        f.write("through a path")
    fd = h.get_fd("f")
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
        assert os.get_inheritable(fd) is False          # O_CLOEXEC
        assert "x" in os.listdir(fd)
        with open(os.open("x", os.O_RDONLY, dir_fd=fd)) as f:
            assert f.read() == "through a path"
    finally:
        os.close(fd)
    pfd = h.get_fd("f", path=True)
    try:
        with pytest.raises(OSError) as e:   # an O_PATH fd cannot be listed
            os.listdir(pfd)
        assert e.value.errno == errno.EBADF
        assert os.stat("x", dir_fd=pfd).st_size == len("through a path")
    finally:
        os.close(pfd)
    with pytest.raises(FileNotFoundError):
        h.get_fd("missing")


def test_mount_idmapped(handle, lib, btrfs):
    need(lib, "mount_idmapped")
    h = handle
    h.create("img")
    root = h.get("img")
    with open(os.path.join(root, "owned-by-root"), "w") as f:
        f.write("host root")
    target = os.path.join(btrfs.scratch, "idmapped")
    os.makedirs(target, exist_ok=True)
    fd = h.mount_idmapped("img", [btrfslayer.IDMap(0, 100000, 65536)])
    try:
        btrfslayer.attach_mount(fd, target)
    finally:
        os.close(fd)
    try:
        # a file owned by host root reads as the mapped root
        assert os.stat(os.path.join(target, "owned-by-root")).st_uid == 100000
        assert os.stat(target).st_uid == 100000
        # mapped root writes through the mount; the layer stores host root
        err = as_uid(100000, lambda: open(os.path.join(target, "by-mapped-root"), "w").close())
        assert err == ""
        st = os.stat(os.path.join(root, "by-mapped-root"))
        assert (st.st_uid, st.st_gid) == (0, 0)
    finally:
        subprocess.run(["umount", target], check=True)


def test_mount_idmapped_read_only(handle, lib, btrfs):
    need(lib, "mount_idmapped")
    h = handle
    h.create("ro")
    target = os.path.join(btrfs.scratch, "idmapped-ro")
    os.makedirs(target, exist_ok=True)
    fd = h.mount_idmapped("ro", [(0, 100000, 65536)], [(0, 100000, 65536)], read_only=True)
    try:
        btrfslayer.attach_mount(fd, target)
    finally:
        os.close(fd)
    try:
        with pytest.raises(OSError) as e:
            open(os.path.join(target, "x"), "w")
        assert e.value.errno == errno.EROFS
    finally:
        subprocess.run(["umount", target], check=True)


def test_mount_idmapped_errors(handle, lib, btrfs):
    need(lib, "mount_idmapped")
    with pytest.raises(FileNotFoundError):
        handle.mount_idmapped("missing", [(0, 100000, 65536)])
    handle.create("x")
    with pytest.raises(OSError) as e:      # a map without container root
        handle.mount_idmapped("x", [(1, 100000, 65536)])
    assert e.value.errno == errno.EINVAL


def test_attach_mount_error(btrfs):
    with pytest.raises(OSError) as e:
        btrfslayer.attach_mount(-1, btrfs.scratch)
    assert e.value.errno == errno.EBADF
    with pytest.raises(FileNotFoundError):
        btrfslayer.attach_mount(-1, os.path.join(btrfs.scratch, "nowhere"))
