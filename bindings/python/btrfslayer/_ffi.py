# SPDX-License-Identifier: LGPL-2.1-or-later
"""ctypes declarations of include/btrfslayer.h, and the loading of the library.

Only this module knows the C types.  Every prototype is declared (argtypes and
restype) so that ctypes converts and checks arguments instead of guessing: a
missing declaration would pass a 64-bit size as a C int.

ctypes.CDLL releases the GIL for the duration of each foreign call, so a call
that waits on the disk does not hold up other Python threads, and the library
itself is thread-safe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Any, Optional, Union

# ---- constants of the header -------------------------------------------------

ENOTBTRFS = 4096
ENOQUOTA = 4097
ID_MAX = 255

CREATE_READ_ONLY = 1 << 0
USAGE_SYNC = 1 << 0
USAGE_WALK = 1 << 1
INFO_READ_ONLY = 1 << 0
INFO_HAS_NESTED = 1 << 1
FD_PATH = 1 << 0
MOUNT_READ_ONLY = 1 << 0
CHANGES_WALK = 1 << 0

LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6
LOG_DEBUG = 7

USAGE_SIZE_V1 = 48
USAGE_SIZE_V2 = 56
USAGE_SIZE_V3 = 72
INFO_SIZE_V1 = 288


# ---- structures --------------------------------------------------------------

class c_idmap(ctypes.Structure):
    """struct btrfslayer_idmap."""

    _fields_ = [
        ("container_id", ctypes.c_uint32),
        ("host_id", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
    ]


class c_usage(ctypes.Structure):
    """struct btrfslayer_usage (as of BTRFSLAYER_USAGE_SIZE_V3)."""

    _fields_ = [
        ("referenced", ctypes.c_uint64),
        ("exclusive", ctypes.c_uint64),
        ("limit", ctypes.c_uint64),
        ("recorded_limit", ctypes.c_uint64),
        ("subvolume_id", ctypes.c_uint64),
        ("quota_mode", ctypes.c_uint32),
        ("consistent", ctypes.c_uint32),
        ("exclusive_limit", ctypes.c_uint64),
        ("walk_bytes", ctypes.c_uint64),
        ("walk_inodes", ctypes.c_uint64),
    ]


class c_info(ctypes.Structure):
    """struct btrfslayer_info (as of BTRFSLAYER_INFO_SIZE_V1)."""

    _fields_ = [
        ("subvolume_id", ctypes.c_uint64),
        ("generation", ctypes.c_uint64),
        ("otime_sec", ctypes.c_int64),
        ("otime_nsec", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("parent", ctypes.c_char * (ID_MAX + 1)),
    ]


# The header's layouts, checked once here rather than trusted.
assert ctypes.sizeof(c_idmap) == 12
assert ctypes.sizeof(c_usage) == USAGE_SIZE_V3
assert ctypes.sizeof(c_info) == INFO_SIZE_V1

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
CHANGE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
# int (*)(done, total, userdata): non-zero stops the call (-ECANCELED)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)

_p = ctypes.c_void_p            # opaque btrfslayer *, btrfslayer_list *
_s = ctypes.c_char_p
_i = ctypes.c_int
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64
_sz = ctypes.c_size_t
_err = ctypes.POINTER(ctypes.c_void_p)   # btrfslayer_error **
_strv = ctypes.POINTER(ctypes.c_char_p)  # const char *const *
_maps = ctypes.POINTER(c_idmap)

# name: (restype, argtypes)
PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "btrfslayer_error_code": (_i, [_p]),
    # c_void_p, not c_char_p: the string belongs to the error object
    "btrfslayer_error_message": (_p, [_p]),
    "btrfslayer_error_free": (None, [_p]),
    "btrfslayer_strerror": (_s, [_i]),
    "btrfslayer_parse_size": (_i, [_s, ctypes.POINTER(_u64)]),
    "btrfslayer_version": (_s, []),
    "btrfslayer_set_log_fn": (None, [LOG_FN, _p]),
    "btrfslayer_open": (_i, [_s, _strv, _sz, _maps, _sz, _maps, _sz,
                             ctypes.POINTER(_p), _err]),
    "btrfslayer_close": (_i, [_p, _err]),
    "btrfslayer_create": (_i, [_p, _s, _s, _u32, _s, _strv, _sz, _err]),
    "btrfslayer_remove": (_i, [_p, _s, _err]),
    "btrfslayer_get": (_i, [_p, _s, _s, ctypes.POINTER(_p), _err]),
    "btrfslayer_put": (_i, [_p, _s, _err]),
    "btrfslayer_exists": (_i, [_p, _s, _err]),
    "btrfslayer_set_quota": (_i, [_p, _s, _u64, _err]),
    "btrfslayer_clear_quota": (_i, [_p, _s, _err]),
    "btrfslayer_get_usage": (_i, [_p, _s, _u32, ctypes.POINTER(c_usage), _sz, _err]),
    "btrfslayer_layer_info": (_i, [_p, _s, ctypes.POINTER(c_info), _sz, _err]),
    "btrfslayer_set_read_only": (_i, [_p, _s, _i, _err]),
    "btrfslayer_get_fd": (_i, [_p, _s, _u32, ctypes.POINTER(_i), _err]),
    "btrfslayer_mount_idmapped": (_i, [_p, _s, _maps, _sz, _maps, _sz, _u32,
                                       ctypes.POINTER(_i), _err]),
    "btrfslayer_changes": (_i, [_p, _s, _s, _u32, CHANGE_FN, _p, _err]),
    "btrfslayer_diff_size": (_i, [_p, _s, _s, ctypes.POINTER(_u64), _err]),
    "btrfslayer_export": (_i, [_p, _s, _s, _i, _u32, PROGRESS_FN, _p, _err]),
    "btrfslayer_apply": (_i, [_p, _s, _i, _u32, PROGRESS_FN, _p,
                              ctypes.POINTER(_u64), _err]),
    "btrfslayer_list_count": (_sz, [_p]),
    "btrfslayer_list_key": (_s, [_p, _sz]),
    "btrfslayer_list_value": (_s, [_p, _sz]),
    "btrfslayer_list_free": (None, [_p]),
    "btrfslayer_layers": (_i, [_p, ctypes.POINTER(_p), _err]),
    "btrfslayer_status": (_i, [_p, ctypes.POINTER(_p), _err]),
}

# free(3), for the path btrfslayer_get() hands out.
_libc = ctypes.CDLL(None, use_errno=True)
libc_free = _libc.free
libc_free.restype = None
libc_free.argtypes = [ctypes.c_void_p]
libc_syscall = _libc.syscall
libc_syscall.restype = ctypes.c_long


class Library:
    """The loaded libbtrfslayer.so.1 with its prototypes declared.

    A function the loaded library does not export (a library older than
    these bindings) is looked up when it is called, not at load, so the
    calls it does have keep working; calling a missing one raises
    NotImplementedError naming it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._dll = ctypes.CDLL(path)
        self._fns: dict[str, Any] = {}
        self._lock = threading.Lock()

    def has(self, name: str) -> bool:
        """Whether the loaded library exports `name` ("btrfslayer_..." or
        the name without the prefix)."""
        if not name.startswith("btrfslayer_"):
            name = "btrfslayer_" + name
        try:
            getattr(self._dll, name)
        except AttributeError:
            return False
        return True

    def fn(self, name: str) -> Any:
        """The declared function `name`."""
        f = self._fns.get(name)
        if f is not None:
            return f
        with self._lock:
            f = self._fns.get(name)
            if f is not None:
                return f
            try:
                # a fresh _FuncPtr: setting argtypes on a shared one would race
                f = self._dll[name]
            except AttributeError:
                raise NotImplementedError(
                    f"{name}: not exported by the loaded library {self.path}"
                    f" (version {self.version()})") from None
            restype, argtypes = PROTOTYPES[name]
            f.restype = restype
            f.argtypes = argtypes
            self._fns[name] = f
            return f

    def version(self) -> str:
        """btrfslayer_version(): the version of the loaded library."""
        v: Optional[bytes] = self.fn("btrfslayer_version")()
        return v.decode() if v else "?"


_default: Optional[Library] = None
_default_lock = threading.Lock()
_loaded: dict[str, Library] = {}
_loaded_lock = threading.Lock()


def find_library_path() -> str:
    """Where load() looks when given no path: $BTRFSLAYER_LIBRARY, else what
    ctypes.util.find_library("btrfslayer") finds (the ldconfig cache),
    else the SONAME "libbtrfslayer.so.1" for the dynamic loader to find."""
    env = os.environ.get("BTRFSLAYER_LIBRARY")
    if env:
        return env
    return ctypes.util.find_library("btrfslayer") or "libbtrfslayer.so.1"


def load(path: Union[None, str, "os.PathLike[str]"] = None) -> Library:
    """Load libbtrfslayer (once per path) and return it.

    path: an explicit file ("/usr/lib/x86_64-linux-gnu/libbtrfslayer.so.1",
    or the in-tree build), or None for find_library_path().  Raises OSError
    when the library cannot be loaded.
    """
    global _default
    if path is None:
        with _default_lock:
            if _default is None:
                _default = _load(find_library_path())
            return _default
    return _load(os.fspath(path))


def _load(path: str) -> Library:
    with _loaded_lock:
        lib = _loaded.get(path)
        if lib is None:
            lib = Library(path)
            _loaded[path] = lib
        return lib
