# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures: the library, a loopback btrfs made for the session, a home per
test and a handle on it.

A test that cannot run (not root, a tool or the library missing, a call the
loaded library does not have) skips saying why, except with CI=true, where it
fails: CI must never pass on tests that did not run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator, NoReturn

import pytest

import btrfslayer

IN_CI = os.environ.get("CI") == "true"
IMAGE_SIZE = 1 << 30    # sparse; room for the thread test's layers


def unavailable(why: str) -> NoReturn:
    """Skip (outside CI) or fail (CI=true) a test that cannot run."""
    if IN_CI:
        pytest.fail(f"cannot run: {why} (CI=true: no skipping)", pytrace=False)
    pytest.skip(f"cannot run: {why}")


def need(lib: btrfslayer.Library, *calls: str) -> None:
    """The loaded library must export these calls (names without the
    btrfslayer_ prefix)."""
    for call in calls:
        if not lib.has(call):
            unavailable(f"btrfslayer_{call} is not in the loaded library {lib.path}"
                        f" (version {lib.version()})")


def as_uid(uid: int, fn: Callable[[], object],
           describe: Callable[[BaseException], str] = repr) -> str:
    """fn() in a forked child running as uid and gid `uid`, without
    supplementary groups: describe(its exception), or "" on success."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            try:
                fn()
                out = ""
            except BaseException as e:
                out = describe(e)
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


@pytest.fixture(scope="session")
def lib() -> btrfslayer.Library:
    """The library under test: $BTRFSLAYER_LIBRARY (scripts/py-test.sh sets
    it to the in-tree build), else the installed one."""
    try:
        return btrfslayer.load()
    except OSError as e:
        unavailable(f"cannot load libbtrfslayer ({btrfslayer.find_library_path()}): {e}")


@dataclass
class Filesystem:
    mnt: str        # the loopback btrfs
    tmpfs: str      # a tmpfs beside it, for NotBtrfsError
    scratch: str    # a directory on neither, for mount targets

    def run(self, *argv: str) -> str:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True)


@pytest.fixture(scope="session")
def btrfs(lib: btrfslayer.Library) -> Iterator[Filesystem]:
    """A fresh btrfs on a loop device for the session, torn down even when
    tests fail (a busy mount is detached lazily)."""
    if os.geteuid() != 0:
        unavailable("needs root (mount, loop devices)")
    for tool in ("mkfs.btrfs", "btrfs", "mount", "umount", "losetup"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is missing (install btrfs-progs and mount)")
    top = tempfile.mkdtemp(prefix="btrfslayer-pytest.", dir="/var/tmp")
    image = os.path.join(top, "fs.img")
    fs = Filesystem(os.path.join(top, "btrfs"), os.path.join(top, "tmpfs"),
                    os.path.join(top, "scratch"))
    mounted = []
    try:
        # mkdtemp makes it 0700: tests run parts as other users (through
        # an idmapped mount under scratch/)
        os.chmod(top, 0o755)
        for d in (fs.mnt, fs.tmpfs, fs.scratch):
            os.mkdir(d)
        with open(image, "wb") as f:
            f.truncate(IMAGE_SIZE)
        r = _run("mkfs.btrfs", "-q", "-f", image)
        if r.returncode != 0:
            unavailable(f"mkfs.btrfs failed: {r.stderr.strip()}")
        r = _run("mount", "-t", "btrfs", "-o", "loop", image, fs.mnt)
        if r.returncode != 0:
            unavailable(f"cannot mount a loopback btrfs: {r.stderr.strip()}")
        mounted.append(fs.mnt)
        r = _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", fs.tmpfs)
        if r.returncode != 0:
            unavailable(f"cannot mount a tmpfs: {r.stderr.strip()}")
        mounted.append(fs.tmpfs)
        yield fs
    finally:
        for m in reversed(mounted):
            if _run("umount", m).returncode != 0:
                _run("umount", "-l", m)
        # mount -o loop sets autoclear; detach explicitly in case it did not
        out = _run("losetup", "-j", image, "-O", "NAME", "-n").stdout
        for dev in out.split():
            _run("losetup", "-d", dev)
        shutil.rmtree(top, ignore_errors=True)


_homes = itertools.count(1)


@pytest.fixture
def home(btrfs: Filesystem) -> str:
    """A path on the loopback btrfs where no home is yet."""
    return os.path.join(btrfs.mnt, f"home{next(_homes)}")


@pytest.fixture
def handle(home: str, lib: btrfslayer.Library) -> Iterator[btrfslayer.Handle]:
    """A handle on a fresh home, closed after the test."""
    with btrfslayer.Handle(home, library=lib) as h:
        yield h


@pytest.fixture
def quota_handle(btrfs: Filesystem, home: str,
                 lib: btrfslayer.Library) -> Iterator[btrfslayer.Handle]:
    """A handle on a fresh home with quotas on in full qgroup mode, whatever
    an earlier test left (quotas off, or simple quotas), and the numbers
    rescanned: an open with btrfs.quota_mode alone need not turn them on."""
    if "qgroup" not in _quota_mode(btrfs):
        btrfs.run("btrfs", "quota", "disable", btrfs.mnt)
        btrfs.run("btrfs", "quota", "enable", btrfs.mnt)
        btrfs.run("btrfs", "quota", "rescan", "-w", btrfs.mnt)
    with btrfslayer.Handle(home, {"btrfs.quota_mode": "qgroup"}, library=lib) as h:
        yield h


def _quota_mode(btrfs: Filesystem) -> str:
    """'qgroup', 'squota' (simple) or '' (off), from sysfs."""
    # "Label: none  uuid: <uuid>" on its first line
    uuid = btrfs.run("btrfs", "filesystem", "show", btrfs.mnt).split("uuid:")[1].split()[0]
    try:
        with open(f"/sys/fs/btrfs/{uuid}/qgroups/mode") as f:
            return f.read().strip()
    except OSError:
        return ""
