# SPDX-License-Identifier: LGPL-2.1-or-later
"""open/close, create/remove/get/put/exists, layers and status."""

from __future__ import annotations

import errno
import gc
import os

import pytest

import btrfslayer


def test_context_manager_and_idempotent_close(home, lib):
    with btrfslayer.Handle(home, library=lib) as h:
        assert not h.closed and h.home == home
        h.create("a")
    assert h.closed
    h.close()   # a second close is a no-op
    h.close()
    with pytest.raises(ValueError, match="closed"):
        h.exists("a")
    # the store outlives the handle
    with btrfslayer.open(home, library=lib) as h2:
        assert h2.exists("a")


def test_create_get_exists_put_remove(handle):
    h = handle
    assert not h.exists("base") and "base" not in h
    h.create("base")
    assert h.exists("base") and "base" in h
    path = h.get("base")
    assert os.path.isabs(path) and os.path.basename(path) == "base"
    with open(os.path.join(path, "file"), "w") as f:
        f.write("data")
    h.put("base")
    h.create("snap", "base", read_only=True)
    snap = h.get("snap")
    with open(os.path.join(snap, "file")) as f:
        assert f.read() == "data"      # a snapshot shares the parent's data
    with pytest.raises(OSError) as e:  # sealed from birth
        open(os.path.join(snap, "new"), "w")
    assert e.value.errno == errno.EROFS
    h.remove("snap")
    h.remove("base")
    assert not h.exists("base") and not os.path.exists(path)


def test_layers_and_iteration_sorted(handle):
    for i in ("c", "a", "b"):
        handle.create(i)
    layers = handle.layers()
    assert list(layers) == ["a", "b", "c"]
    assert layers["a"] == handle.get("a")
    assert list(handle) == ["a", "b", "c"]


def test_status(handle):
    handle.create("x")
    st = handle.status()
    assert st["library_version"] == btrfslayer.version(handle.library)
    assert st["home"] == handle.home
    assert st["layers"] == "1"
    for key in ("filesystem_uuid", "quota_mode", "sweep_left"):
        assert key in st


def test_options_mapping_and_list(home, lib):
    # a mapping (bools as true/false) and a list of key=value say the same
    with btrfslayer.Handle(home, {"btrfs.mount_home": False}, library=lib) as h:
        h.create("a")
    with btrfslayer.Handle(home, ["btrfs.mount_home=false"], library=lib) as h:
        assert h.exists("a")
    with pytest.raises(TypeError):
        btrfslayer.Handle(home, "btrfs.mount_home=false", library=lib)


def test_id_maps_own_new_layers(home, lib):
    maps = [btrfslayer.IDMap(0, 100000, 65536)]
    with btrfslayer.Handle(home, uid_map=maps, gid_map=[(0, 200000, 65536)],
                           library=lib) as h:
        h.create("remapped")
        st = os.stat(h.get("remapped"))
        assert (st.st_uid, st.st_gid) == (100000, 200000)
    # the home now records its maps: other maps are refused
    with pytest.raises(OSError) as e:
        btrfslayer.Handle(home, uid_map=[(0, 300000, 65536)], library=lib)
    assert e.value.errno == errno.EBUSY


def test_bad_id_map_is_refused_before_c(home, lib):
    with pytest.raises(ValueError):
        btrfslayer.Handle(home, uid_map=[(0, -1, 1)], library=lib)
    with pytest.raises(TypeError):
        btrfslayer.Handle(home, uid_map=[(0, 1)], library=lib)
    assert not os.path.exists(home)


def test_storage_opts_size_makes_a_limit(quota_handle):
    quota_handle.create("sized", storage_opts={"size": "64M"})
    u = quota_handle.get_usage("sized")
    assert u.limit == u.recorded_limit == 64 << 20


def test_log_callback(home, lib):
    """The library logs through set_log_fn: the close of the last handle on
    a home whose bind mount is busy keeps the mount and says so (INFO)."""
    seen = []
    btrfslayer.set_log_fn(lambda level, msg: seen.append((level, msg)), lib)
    try:
        h = btrfslayer.Handle(home, library=lib)
        busy = os.open(home, os.O_RDONLY | os.O_DIRECTORY)   # an fd on the mount
        try:
            h.close()
        finally:
            os.close(busy)
    finally:
        btrfslayer.set_log_fn(None, lib)
    assert any(level == btrfslayer.LOG_INFO and home in msg for level, msg in seen), seen
    n = len(seen)
    with btrfslayer.Handle(home, library=lib):   # adopts the mount, takes it down
        pass
    assert len(seen) == n   # logging is off again


def test_log_to_logging(home, lib, caplog):
    btrfslayer.log_to_logging(library=lib)
    try:
        with caplog.at_level("INFO", logger="btrfslayer"):
            h = btrfslayer.Handle(home, library=lib)
            busy = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
            try:
                h.close()
            finally:
                os.close(busy)
    finally:
        btrfslayer.set_log_fn(None, lib)
    assert any(r.name == "btrfslayer" and home in r.getMessage() for r in caplog.records)
    with btrfslayer.Handle(home, library=lib):
        pass


def test_unclosed_handle_warns_and_closes(home, lib):
    h = btrfslayer.Handle(home, library=lib)
    assert _mounted(home)       # the library's bind mount of home
    with pytest.warns(ResourceWarning, match="unclosed"):
        del h
        gc.collect()
    assert not _mounted(home)   # closed: the last handle took it down


def _mounted(path):
    """Whether something is mounted at path (a bind mount of a directory of
    the same filesystem included, which os.path.ismount misses)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_read_only_handle(home, lib):
    """btrfs.read_only=true: reads work, every mutating call is EROFS."""
    with btrfslayer.Handle(home, library=lib) as h:
        h.create("a")
    with btrfslayer.Handle(home, {"btrfs.read_only": True}, library=lib) as ro:
        assert ro.exists("a") and list(ro.layers()) == ["a"]
        assert os.path.isdir(ro.get("a"))
        for call in (lambda: ro.create("b"), lambda: ro.remove("a")):
            with pytest.raises(OSError) as e:
                call()
            assert type(e.value) is OSError and e.value.errno == errno.EROFS
        assert not ro.exists("b")


def test_storage_opt_mode(handle):
    handle.create("m", storage_opts={"mode": "0555"})
    assert os.stat(handle.get("m")).st_mode & 0o7777 == 0o555
    handle.create("default")
    assert os.stat(handle.get("default")).st_mode & 0o7777 == 0o755
