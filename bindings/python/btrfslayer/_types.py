# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python values of the bindings: exceptions and dataclasses."""

from __future__ import annotations

import ctypes
import datetime
import enum
import os
from dataclasses import dataclass
from typing import Optional

from . import _ffi


# ---- errors ------------------------------------------------------------------

class NotBtrfsError(OSError):
    """Home is not on btrfs (BTRFSLAYER_ENOTBTRFS): "prerequisites not met",
    so a runtime falls through to its next storage driver.  errno is 4096."""


class NoQuotaError(OSError):
    """Quotas are off on the filesystem, so there is no usage to report
    (BTRFSLAYER_ENOQUOTA).  errno is 4097."""


def error_from(lib: _ffi.Library, code: int, err: ctypes.c_void_p, call: str) -> OSError:
    """The exception for a failed call: its negative `code` and the error
    object `err` it set (freed here).

    OSError(errno, message) picks the subclass itself: FileExistsError for
    EEXIST, FileNotFoundError for ENOENT, PermissionError for EPERM and
    EACCES, NotADirectoryError, BlockingIOError (EAGAIN) and so on; the
    library's two codes of its own get NotBtrfsError and NoQuotaError.  The
    message is the call's own ("<step>: <path>: <reason>"), which travels
    with the call, so another thread's failure never shows up here.
    """
    message = None
    if err.value:
        try:
            text = lib.fn("btrfslayer_error_message")(err)
            if text:
                message = ctypes.string_at(text).decode("utf-8", "backslashreplace")
        finally:
            lib.fn("btrfslayer_error_free")(err)
            err.value = None
    n = -code
    if not message:
        message = f"{call}: {strerror(code, lib)}"
    if n == _ffi.ENOTBTRFS:
        return NotBtrfsError(n, message)
    if n == _ffi.ENOQUOTA:
        return NoQuotaError(n, message)
    return OSError(n, message)


def strerror(code: int, lib: Optional[_ffi.Library] = None) -> str:
    """btrfslayer_strerror(): the description of an errno or of the
    library's own codes (negative or positive)."""
    lib = lib or _ffi.load()
    s: Optional[bytes] = lib.fn("btrfslayer_strerror")(code)
    return s.decode("utf-8", "backslashreplace") if s else str(code)


# ---- values ------------------------------------------------------------------

@dataclass(frozen=True)
class IDMap:
    """One line of a user-namespace map, as in /proc/PID/uid_map: container
    ids [container_id, container_id + size) are host ids [host_id,
    host_id + size).  A plain (container_id, host_id, size) tuple is accepted
    wherever an IDMap is."""

    container_id: int
    host_id: int
    size: int


class QuotaMode(enum.IntEnum):
    """How the filesystem counts a layer's bytes (BTRFSLAYER_QUOTA_*)."""

    NONE = 0    #: quotas off (only with Handle.get_usage(walk=True))
    QGROUP = 1  #: full qgroups: every byte the layer references
    SIMPLE = 2  #: simple quotas (Linux 6.7): the bytes the layer allocated


@dataclass(frozen=True)
class Usage:
    """What Handle.get_usage() reports (struct btrfslayer_usage).  Limits
    are in bytes, 0 meaning none."""

    referenced: int         #: bytes the layer's qgroup references
    exclusive: int          #: bytes no other subvolume shares
    limit: int              #: the limit the kernel enforces; 0: none
    recorded_limit: int     #: the limit recorded in HOME/quotas/<id>; 0: none
    subvolume_id: int       #: the layer's subvolume (and level-0 qgroup)
    quota_mode: QuotaMode   #: how the bytes are counted
    consistent: bool        #: False: the kernel wants a rescan
    exclusive_limit: int    #: an administrator's exclusive limit; 0: none
    walk_bytes: Optional[int] = None   #: walk=True only: bytes allocated to files
    walk_inodes: Optional[int] = None  #: walk=True only: distinct inodes

    @classmethod
    def _from_c(cls, u: _ffi.c_usage, walked: bool) -> "Usage":
        mode = QuotaMode(u.quota_mode) if u.quota_mode in (0, 1, 2) else u.quota_mode
        return cls(referenced=u.referenced, exclusive=u.exclusive, limit=u.limit,
                   recorded_limit=u.recorded_limit, subvolume_id=u.subvolume_id,
                   quota_mode=mode, consistent=bool(u.consistent),
                   exclusive_limit=u.exclusive_limit,
                   walk_bytes=u.walk_bytes if walked else None,
                   walk_inodes=u.walk_inodes if walked else None)


@dataclass(frozen=True)
class LayerInfo:
    """What Handle.layer_info() reports (struct btrfslayer_info)."""

    id: str                     #: the layer's id
    subvolume_id: int           #: its subvolume (and level-0 qgroup)
    generation: int             #: the subvolume's last changed transaction
    created: datetime.datetime  #: creation time (btrfs otime), UTC-aware
    created_ns: int             #: the same in nanoseconds since the epoch
    read_only: bool             #: the layer is sealed
    has_nested: bool            #: it holds nested subvolumes
    parent: Optional[str]       #: the layer it is a snapshot of, if still there

    @classmethod
    def _from_c(cls, id: str, i: _ffi.c_info) -> "LayerInfo":
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        created = epoch + datetime.timedelta(seconds=i.otime_sec,
                                             microseconds=i.otime_nsec // 1000)
        parent = os.fsdecode(i.parent) if i.parent else None
        return cls(id=id, subvolume_id=i.subvolume_id, generation=i.generation,
                   created=created, created_ns=i.otime_sec * 10**9 + i.otime_nsec,
                   read_only=bool(i.flags & _ffi.INFO_READ_ONLY),
                   has_nested=bool(i.flags & _ffi.INFO_HAS_NESTED), parent=parent)


class ChangeKind(enum.IntEnum):
    """BTRFSLAYER_CHANGE_*, with the letters of `docker diff`."""

    ADDED = 1
    MODIFIED = 2
    DELETED = 3

    @property
    def letter(self) -> str:
        """"A", "C" or "D", as `docker diff` prints them."""
        return "ACD"[self.value - 1]


@dataclass(frozen=True)
class Change:
    """One changed path of a layer relative to its parent."""

    kind: ChangeKind
    path: str   #: absolute within the layer: "/a/b"

    def __str__(self) -> str:
        return f"{self.kind.letter} {self.path}"
