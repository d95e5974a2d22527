# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python bindings of libbtrfslayer: container image and container layers as
btrfs subvolumes.

    import btrfslayer
    with btrfslayer.Handle("/var/lib/btrfslayer") as h:
        h.create("base")
        h.create("image", "base", read_only=True)
        print(h.get("image"), h.layer_info("image"))

The library is loaded on first use from $BTRFSLAYER_LIBRARY, else where
ctypes.util.find_library("btrfslayer") finds it, else as
"libbtrfslayer.so.1"; or pass library="/path/libbtrfslayer.so.1" (to load()
or to Handle).  include/btrfslayer.h documents every call; each method says
which one it binds.
"""

from ._ffi import (CHANGES_WALK, CREATE_READ_ONLY, ENOQUOTA, ENOTBTRFS, FD_PATH, ID_MAX,
                   LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_WARNING, MOUNT_READ_ONLY, USAGE_SYNC,
                   USAGE_WALK, Library, find_library_path, load)
from ._handle import (FileArg, Handle, IDMaps, Options, Progress, StrPath, attach_mount,
                      log_to_logging, open, parse_size, set_log_fn, version)
from ._types import (Change, ChangeKind, IDMap, LayerInfo, NoQuotaError, NotBtrfsError,
                     QuotaMode, Usage, strerror)

__version__ = "1.0.0"

__all__ = [
    "Handle", "open", "load", "Library", "find_library_path", "version", "parse_size",
    "strerror", "set_log_fn", "log_to_logging", "attach_mount",
    "NotBtrfsError", "NoQuotaError",
    "IDMap", "Usage", "QuotaMode", "LayerInfo", "Change", "ChangeKind",
    "StrPath", "Options", "IDMaps", "FileArg", "Progress",
    "ENOTBTRFS", "ENOQUOTA", "ID_MAX", "CREATE_READ_ONLY", "USAGE_SYNC", "USAGE_WALK",
    "FD_PATH", "MOUNT_READ_ONLY", "CHANGES_WALK",
    "LOG_ERR", "LOG_WARNING", "LOG_INFO", "LOG_DEBUG",
]
