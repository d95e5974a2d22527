# SPDX-License-Identifier: LGPL-2.1-or-later
"""set_quota, clear_quota, get_usage."""

from __future__ import annotations

import errno
import os

import pytest

import btrfslayer
from conftest import unavailable


def test_set_and_clear_quota(quota_handle):
    h = quota_handle
    h.create("l")
    h.set_quota("l", 32 << 20)
    u = h.get_usage("l")
    assert isinstance(u, btrfslayer.Usage)
    assert u.limit == u.recorded_limit == 32 << 20
    assert u.quota_mode == btrfslayer.QuotaMode.QGROUP and u.subvolume_id > 0
    h.set_quota("l", "64M")        # Docker's syntax too
    assert h.get_usage("l").limit == 64 << 20
    h.clear_quota("l")
    u = h.get_usage("l")
    assert u.limit == 0 and u.recorded_limit == 0


def test_usage_counts_what_is_written(quota_handle):
    h = quota_handle
    h.create("w")
    with open(os.path.join(h.get("w"), "blob"), "wb") as f:
        f.write(os.urandom(1 << 20))
    u = h.get_usage("w", sync=True)
    assert u.referenced >= 1 << 20 and u.exclusive >= 1 << 20
    assert u.consistent is True
    assert u.walk_bytes is None and u.walk_inodes is None


@pytest.mark.parametrize("size,code", [(0, errno.EINVAL), (-1, errno.EINVAL),
                                       (2**64 - 1, errno.ERANGE), (2**64, errno.ERANGE)])
def test_set_quota_bad_sizes(quota_handle, size, code):
    quota_handle.create("b")
    with pytest.raises(OSError) as e:
        quota_handle.set_quota("b", size)
    assert e.value.errno == code
    assert quota_handle.get_usage("b").limit == 0


def test_limit_enforced(quota_handle):
    h = quota_handle
    h.create("full", storage_opts={"size": "16M"})
    with pytest.raises(OSError) as e:
        with open(os.path.join(h.get("full"), "big"), "wb") as f:
            for _ in range(64):
                f.write(b"\1" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
    assert e.value.errno in (errno.EDQUOT, errno.ENOSPC)


@pytest.fixture(scope="module")
def walk_works(btrfs, lib):
    """Whether the loaded library implements BTRFSLAYER_USAGE_WALK: a walk
    counts the layer's root at least (a library before it refuses the flag
    or ignores it)."""
    with btrfslayer.Handle(os.path.join(btrfs.mnt, "walk-probe"),
                           {"btrfs.quota_mode": "qgroup"}, library=lib) as h:
        h.create("probe")
        try:
            n = h.get_usage("probe", walk=True).walk_inodes
        except OSError as e:
            unavailable(f"the loaded library refuses BTRFSLAYER_USAGE_WALK: {e}")
        if n == 0:
            unavailable("the loaded library accepts BTRFSLAYER_USAGE_WALK but does not walk")


def _fill(root):
    os.mkdir(os.path.join(root, "d"))
    with open(os.path.join(root, "d", "f"), "wb") as f:
        f.write(b"x" * 8192)
    os.link(os.path.join(root, "d", "f"), os.path.join(root, "hardlink"))


def test_usage_walk(walk_works, quota_handle):
    h = quota_handle
    h.create("walked")
    _fill(h.get("walked"))
    u = h.get_usage("walked", walk=True)
    assert u.walk_inodes == 3          # root, d, f (the hard link counted once)
    assert u.walk_bytes >= 8192
    assert u.quota_mode == btrfslayer.QuotaMode.QGROUP


def test_usage_walk_with_quotas_off(walk_works, home, lib, btrfs):
    btrfs.run("btrfs", "quota", "disable", btrfs.mnt)
    with btrfslayer.Handle(home, library=lib) as h:
        h.create("walked")
        _fill(h.get("walked"))
        u = h.get_usage("walked", walk=True)
        assert u.quota_mode == btrfslayer.QuotaMode.NONE
        assert (u.referenced, u.limit) == (0, 0)
        assert u.walk_inodes == 3 and u.walk_bytes >= 8192
