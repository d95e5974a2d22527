# SPDX-License-Identifier: LGPL-2.1-or-later
"""Loading the library and the calls that need no filesystem."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import btrfslayer
from btrfslayer import _ffi


def test_version_is_the_loaded_librarys(lib):
    v = btrfslayer.version(lib)
    assert v == lib.version()
    assert [int(x) for x in v.split(".")][0] >= 0 and v.count(".") == 2


def test_load_explicit_path_and_env(lib):
    # an explicit path loads that file; the same path gives the same object
    assert btrfslayer.load(lib.path) is btrfslayer.load(lib.path)
    env = dict(os.environ, BTRFSLAYER_LIBRARY=lib.path)
    out = subprocess.run(
        [sys.executable, "-c",
         "import btrfslayer; print(btrfslayer.find_library_path()); print(btrfslayer.version())"],
        env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [lib.path, lib.version()]


def test_load_missing_library_is_oserror():
    with pytest.raises(OSError):
        btrfslayer.load("/nonexistent/libbtrfslayer.so.1")


def test_missing_call_is_notimplementederror(lib):
    with pytest.raises(NotImplementedError, match="btrfslayer_no_such_call"):
        lib.fn("btrfslayer_no_such_call")
    assert not lib.has("no_such_call")
    assert lib.has("open") and lib.has("btrfslayer_close")


def test_parse_size(lib):
    assert btrfslayer.parse_size("4096", lib) == 4096
    assert btrfslayer.parse_size("10G", lib) == 10 << 30
    assert btrfslayer.parse_size("1.5GiB", lib) == 3 << 29
    assert btrfslayer.parse_size(b"512m", lib) == 512 << 20


@pytest.mark.parametrize("bad,code", [("x", errno.EINVAL), ("", errno.EINVAL),
                                      ("99999999999999999999", errno.ERANGE)])
def test_parse_size_errors(lib, bad, code):
    with pytest.raises(OSError) as e:
        btrfslayer.parse_size(bad, lib)
    assert e.value.errno == code and type(e.value) is OSError


def test_parse_size_refuses_nul(lib):
    with pytest.raises(ValueError, match="null byte"):
        btrfslayer.parse_size("1G\0junk", lib)


def test_strerror(lib):
    assert "btrfs" in btrfslayer.strerror(-btrfslayer.ENOTBTRFS, lib)
    assert btrfslayer.strerror(-errno.ENOENT, lib) == os.strerror(errno.ENOENT)


def test_struct_sizes_match_the_header():
    # the header's size macros; a layout change would break the ABI
    assert _ffi.USAGE_SIZE_V3 == 72 and _ffi.INFO_SIZE_V1 == 288


def test_every_declared_call_has_a_prototype():
    """Each BTRFSLAYER_API function of include/btrfslayer.h is declared in
    _ffi.PROTOTYPES (the header is read when the tests run in-tree)."""
    header = os.path.join(os.path.dirname(__file__), "..", "..", "..", "include",
                          "btrfslayer.h")
    if not os.path.exists(header):
        pytest.skip("not in the source tree")   # an installed package's tests
    import re
    text = open(header).read()
    declared = set(re.findall(r"BTRFSLAYER_API [^;(]*?\b(btrfslayer_\w+)\(", text))
    assert declared and declared == set(_ffi.PROTOTYPES)
