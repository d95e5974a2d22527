# SPDX-License-Identifier: LGPL-2.1-or-later
"""The handle on a home, and the process-wide calls."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import logging
import os
import threading
import warnings
from typing import IO, Any, Callable, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from . import _ffi
from ._types import Change, ChangeKind, IDMap, LayerInfo, Usage, error_from

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: ``{"key": "value"}`` or ``["key=value", ...]``
Options = Union[Mapping[str, Union[str, int, bool]], Iterable[str]]
#: IDMap objects or (container_id, host_id, size) tuples
IDMaps = Iterable[Union[IDMap, Tuple[int, int, int]]]
#: an fd, or an object with fileno(), or any binary file-like object
FileArg = Union[int, IO[bytes], Any]
#: progress(done, total): bytes so far, and the total (0 when unknown)
Progress = Callable[[int, int], None]
LibraryArg = Union[None, str, "os.PathLike[str]", _ffi.Library]


def _library(library: LibraryArg) -> _ffi.Library:
    if isinstance(library, _ffi.Library):
        return library
    return _ffi.load(library)


def _cstr(value: Union[str, bytes, "os.PathLike[Any]"], what: str) -> bytes:
    """A C string, refusing what C would silently cut at a NUL."""
    b = os.fsencode(value)
    if b"\0" in b:
        raise ValueError(f"{what}: embedded null byte")
    return b


def _opt_cstr(value: Optional[Union[str, bytes]], what: str) -> Optional[bytes]:
    return None if value is None else _cstr(value, what)


def _strv(options: Optional[Options], what: str) -> Tuple[Any, int]:
    """key=value strings as a const char *const * and its length."""
    if options is None:
        return None, 0
    if isinstance(options, (str, bytes)):
        raise TypeError(f"{what}: a mapping or a list of \"key=value\" strings, not one string")
    items: List[bytes] = []
    if isinstance(options, Mapping):
        for key, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            items.append(_cstr(f"{key}={value}", what))
    else:
        items = [_cstr(o, what) for o in options]
    if not items:
        return None, 0
    return (ctypes.c_char_p * len(items))(*items), len(items)


def _maps(maps: Optional[IDMaps], what: str) -> Tuple[Any, int]:
    """id maps as a const btrfslayer_idmap * and its length."""
    if maps is None:
        return None, 0
    lines = []
    for m in maps:
        if isinstance(m, IDMap):
            m = (m.container_id, m.host_id, m.size)
        try:
            c, h, n = (int(x) for x in m)
        except (TypeError, ValueError):
            raise TypeError(f"{what}: {m!r} is not an IDMap nor a (container_id, host_id, size)"
                            " tuple") from None
        for x in (c, h, n):
            if not 0 <= x <= 0xFFFFFFFF:
                raise ValueError(f"{what}: {m!r}: ids and sizes are 32-bit unsigned")
        lines.append(_ffi.c_idmap(c, h, n))
    if not lines:
        return None, 0
    return (_ffi.c_idmap * len(lines))(*lines), len(lines)


def _decode(b: bytes) -> str:
    return os.fsdecode(b)


class _Callbacks:
    """Python callbacks handed to a C call on `handle`: an exception raised
    in one is kept and raised again once the call returned (ctypes cannot
    carry it through C).  The library may run them on a thread of its own,
    so that thread is marked as inside a call of the handle while one runs:
    a close() there would wait for the call that waits for it."""

    def __init__(self, handle: "Handle") -> None:
        self.error: Optional[BaseException] = None
        self.handle = handle

    def progress(self, fn: Optional[Progress]) -> Any:
        if fn is None:
            return _ffi.PROGRESS_FN(0)   # NULL
        report: Progress = fn

        def call(done: int, total: int, _userdata: Any) -> int:
            # an exception stops the call (the library takes back what it
            # made and returns -ECANCELED) and is raised again after it
            if self.error is not None:
                return 1
            local = self.handle._local
            local.depth = getattr(local, "depth", 0) + 1
            try:
                report(done, total)
            except BaseException as e:  # noqa: B902 — raised again after the call
                self.error = e
                return 1
            finally:
                local.depth -= 1
            return 0
        return _ffi.PROGRESS_FN(call)

    def check(self) -> None:
        if self.error is not None:
            e, self.error = self.error, None
            raise e

    def check_from(self, stopped: OSError) -> None:
        """The call failed: if a callback raised, that exception, caused by
        the library's failure (ECANCELED), is what the caller sees."""
        if self.error is not None:
            e, self.error = self.error, None
            raise e from stopped


_OPEN, _CLOSING, _CLOSED = range(3)


class Handle:
    """An open home: btrfslayer_open() ... btrfslayer_close().

    Use it as a context manager, or call close() (idempotent).  A handle may
    be shared by any number of threads: each call releases the GIL while the
    library works, and close() waits for the calls running in other threads
    to return (a call started after close() raises ValueError).  Layer ids
    are str (or bytes); paths come back as str (os.fsdecode).

    Errors raise OSError with the call's own message: FileExistsError,
    FileNotFoundError, PermissionError, NotBtrfsError, NoQuotaError, or
    OSError with .errno for the rest; a missing call in an older library
    raises NotImplementedError; an argument C cannot carry (a NUL byte)
    ValueError, before anything happens.
    """

    def __init__(self, home: StrPath, options: Optional[Options] = None, *,
                 uid_map: Optional[IDMaps] = None, gid_map: Optional[IDMaps] = None,
                 library: LibraryArg = None) -> None:
        """Open (creating if needed) the store at `home`.

        options: open options, ``{"btrfs.min_space": "1G",
        "btrfs.quota_mode": "simple", "btrfs.mount_home": False,
        "btrfs.read_only": True}`` or
        ``["btrfs.min_space=1G"]``.  uid_map, gid_map: the user-namespace
        maps of remapped containers (IDMap or 3-tuples).  library: a path
        to libbtrfslayer.so.1 or a loaded Library (default: see load()).

        Raises NotBtrfsError when home (or its parent) is not on btrfs,
        OSError(EBUSY) for a home laid out for other maps, and the rest of
        the errors btrfslayer_open() documents.  Privilege: CAP_SYS_ADMIN
        to bind-mount home (btrfs.mount_home=false does without).
        """
        self._lib = _library(library)
        self._ptr: Optional[int] = None
        self._cond = threading.Condition()
        self._users = 0
        self._state = _CLOSED
        self._local = threading.local()
        home_b = _cstr(home, "home")
        self.home: str = os.fsdecode(home_b)
        opts, n_opts = _strv(options, "options")
        uids, n_uids = _maps(uid_map, "uid_map")
        gids, n_gids = _maps(gid_map, "gid_map")
        out = ctypes.c_void_p()
        err = ctypes.c_void_p()
        r = self._lib.fn("btrfslayer_open")(home_b, opts, n_opts, uids, n_uids, gids, n_gids,
                                             ctypes.byref(out), ctypes.byref(err))
        if r < 0:
            raise error_from(self._lib, r, err, "open")
        self._ptr = out.value
        self._state = _OPEN

    # ---- lifetime -------------------------------------------------------

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._state == _OPEN else "closed"
        return f"<btrfslayer.Handle {self.home!r} {state}>"

    @property
    def closed(self) -> bool:
        """True once close() has begun."""
        return self._state != _OPEN

    @property
    def library(self) -> _ffi.Library:
        """The library this handle was opened with."""
        return self._lib

    def close(self) -> None:
        """btrfslayer_close(): free the handle; idempotent.

        Waits for the calls other threads are making with this handle, then
        closes; a second close (from any thread) waits for the first and
        returns.  The handle is freed even when this raises (the library
        reports an unmount that failed, for instance).  Calling it from a
        callback of a call on this handle (changes, progress) would wait for
        itself: RuntimeError.
        """
        if getattr(self._local, "depth", 0):
            raise RuntimeError("btrfslayer: close() from inside a call on the same handle")
        with self._cond:
            if self._state == _CLOSING:
                self._cond.wait_for(lambda: self._state == _CLOSED)
            if self._state == _CLOSED:
                return
            self._state = _CLOSING
            self._cond.wait_for(lambda: self._users == 0)
            ptr, self._ptr = self._ptr, None
        err = ctypes.c_void_p()
        try:
            r = self._lib.fn("btrfslayer_close")(ptr, ctypes.byref(err))
        finally:
            with self._cond:
                self._state = _CLOSED
                self._cond.notify_all()
        if r < 0:
            raise error_from(self._lib, r, err, "close")

    def __del__(self) -> None:
        # A safety net, not the way to close: a handle holds a lock slot and
        # maybe the bind mount of home until it is closed.
        if getattr(self, "_state", _CLOSED) == _OPEN:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self)
            with contextlib.suppress(Exception):
                self.close()

    @contextlib.contextmanager
    def _use(self) -> Iterator[int]:
        """The C handle, for one call; close() waits for it."""
        with self._cond:
            if self._state != _OPEN:
                raise ValueError(f"btrfslayer: the handle on {self.home} is closed")
            self._users += 1
            ptr = self._ptr
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            assert ptr is not None
            yield ptr
        finally:
            self._local.depth -= 1
            with self._cond:
                self._users -= 1
                if self._users == 0:
                    self._cond.notify_all()

    def _call(self, name: str, *args: Any) -> int:
        err = ctypes.c_void_p()
        with self._use() as ptr:
            r: int = self._lib.fn("btrfslayer_" + name)(ptr, *args, ctypes.byref(err))
        if r < 0:
            raise error_from(self._lib, r, err, name)
        return r

    # ---- layers -----------------------------------------------------------

    def create(self, id: str, parent: Optional[str] = None, *, read_only: bool = False,
               mount_label: Optional[str] = None,
               storage_opts: Optional[Options] = None) -> None:
        """btrfslayer_create(): layer `id`, empty, or a snapshot of layer
        `parent` (O(1), sharing all data).

        read_only: sealed from birth.  mount_label: an SELinux context for
        the layer root, on SELinux hosts only.  storage_opts: Docker's
        --storage-opt, ``{"size": "10G"}`` (limits the layer, turning quotas
        on).  FileExistsError if id exists, FileNotFoundError if parent does
        not, OSError(EINVAL) for a bad id, option or label.  Durable on
        return.
        """
        opts, n = _strv(storage_opts, "storage_opts")
        self._call("create", _cstr(id, "id"), _opt_cstr(parent, "parent"),
                   _ffi.CREATE_READ_ONLY if read_only else 0,
                   _opt_cstr(mount_label, "mount_label"), opts, n)

    def remove(self, id: str) -> None:
        """btrfslayer_remove(): delete layer `id`, the subvolumes nested in
        it and its recorded limit.  FileNotFoundError if there is no such
        layer; OSError(EBUSY) if it is a mount point.  Durable on return."""
        self._call("remove", _cstr(id, "id"))

    def get(self, id: str, mount_label: Optional[str] = None) -> str:
        """btrfslayer_get(): the absolute path of layer `id` (re-applying a
        recorded limit the kernel lost).  FileNotFoundError if missing;
        OSError(ESTALE) if home was moved since open."""
        out = ctypes.c_void_p()
        self._call("get", _cstr(id, "id"), _opt_cstr(mount_label, "mount_label"),
                   ctypes.byref(out))
        assert out.value is not None    # set on success
        try:
            return _decode(ctypes.string_at(out.value))
        finally:
            _ffi.libc_free(out)

    def put(self, id: str) -> None:
        """btrfslayer_put(): release what get() acquired (nothing today)."""
        self._call("put", _cstr(id, "id"))

    def exists(self, id: str) -> bool:
        """btrfslayer_exists(): whether layer `id` exists."""
        return self._call("exists", _cstr(id, "id")) == 1

    def __contains__(self, id: str) -> bool:
        return self.exists(id)

    def layers(self) -> dict[str, str]:
        """btrfslayer_layers(): every layer, sorted by id: {id: path}."""
        return self._list("layers")

    def __iter__(self) -> Iterator[str]:
        """The ids of the layers, sorted."""
        return iter(self.layers())

    def status(self) -> dict[str, str]:
        """btrfslayer_status(): what a runtime shows in `info` (library
        version, home, filesystem uuid, quota mode, kernel features, layer
        count, and the recovery sweep's counts), in the library's order."""
        return self._list("status")

    def _list(self, name: str) -> dict[str, str]:
        out = ctypes.c_void_p()
        self._call(name, ctypes.byref(out))
        lib = self._lib
        try:
            n = lib.fn("btrfslayer_list_count")(out)
            return {_decode(lib.fn("btrfslayer_list_key")(out, i)):
                    _decode(lib.fn("btrfslayer_list_value")(out, i)) for i in range(n)}
        finally:
            lib.fn("btrfslayer_list_free")(out)

    # ---- quotas -----------------------------------------------------------

    def set_quota(self, id: str, size: Union[int, str]) -> None:
        """btrfslayer_set_quota(): limit layer `id` to `size` bytes (an int,
        or a string in Docker's syntax, "10G"), replacing any limit, and
        record it.  OSError(EINVAL) for 0 or below btrfs.min_space,
        OSError(ERANGE) from 2**64-1 on.  Durable on return."""
        if isinstance(size, (str, bytes)):
            size = parse_size(size, self._lib)
        if size < 0:
            raise OSError(errno.EINVAL, f"set_quota: {id}: negative size {size}")
        if size >= 2**64:
            raise OSError(errno.ERANGE, f"set_quota: {id}: size {size} does not fit in 64 bits")
        self._call("set_quota", _cstr(id, "id"), size)

    def clear_quota(self, id: str) -> None:
        """btrfslayer_clear_quota(): remove layer `id`'s limit and record."""
        self._call("clear_quota", _cstr(id, "id"))

    def get_usage(self, id: str, *, sync: bool = False, walk: bool = False) -> Usage:
        """btrfslayer_get_usage(): layer `id`'s usage from the quota tree.

        sync: commit the transaction first, so that the numbers include
        every write so far.  walk: also count the layer's files
        (walk_bytes, walk_inodes; O(files)); with it, quotas off is no error.
        NoQuotaError when quotas are off (without walk).
        """
        flags = (_ffi.USAGE_SYNC if sync else 0) | (_ffi.USAGE_WALK if walk else 0)
        out = _ffi.c_usage()
        self._call("get_usage", _cstr(id, "id"), flags, ctypes.byref(out),
                   ctypes.sizeof(out))
        return Usage._from_c(out, walk)

    usage = get_usage

    # ---- layer info, seal, fds, idmapped mounts ---------------------------

    def layer_info(self, id: str) -> LayerInfo:
        """btrfslayer_layer_info(): what btrfs knows of layer `id`: parent,
        read-only flag, creation time, subvolume id, generation, nested
        subvolumes.  Works with quotas off.  FileNotFoundError if missing."""
        out = _ffi.c_info()
        self._call("layer_info", _cstr(id, "id"), ctypes.byref(out), ctypes.sizeof(out))
        return LayerInfo._from_c(_decode(_cstr(id, "id")), out)

    def set_read_only(self, id: str, read_only: bool = True) -> None:
        """btrfslayer_set_read_only(): seal (or unseal) layer `id` and every
        subvolume nested in it.  Durable on return."""
        self._call("set_read_only", _cstr(id, "id"), 1 if read_only else 0)

    def get_fd(self, id: str, *, path: bool = False) -> int:
        """btrfslayer_get_fd(): an O_DIRECTORY|O_CLOEXEC fd of layer `id`'s
        root (O_PATH with path=True); close it with os.close()."""
        fd = ctypes.c_int(-1)
        self._call("get_fd", _cstr(id, "id"), _ffi.FD_PATH if path else 0, ctypes.byref(fd))
        return fd.value

    def mount_idmapped(self, id: str, uid_map: IDMaps, gid_map: Optional[IDMaps] = None, *,
                       read_only: bool = False) -> int:
        """btrfslayer_mount_idmapped(): a detached, idmapped mount of layer
        `id`, as an fd; attach it with attach_mount(fd, target), then
        os.close() it.

        uid_map, gid_map: the container's maps (gid_map defaults to
        uid_map).  Files written through the mount are stored with host ids.
        OSError(EOPNOTSUPP) where the kernel cannot.  Privilege:
        CAP_SYS_ADMIN.
        """
        uids, n_uids = _maps(uid_map, "uid_map")
        gids, n_gids = _maps(uid_map if gid_map is None else gid_map, "gid_map")
        fd = ctypes.c_int(-1)
        self._call("mount_idmapped", _cstr(id, "id"), uids, n_uids, gids, n_gids,
                   _ffi.MOUNT_READ_ONLY if read_only else 0, ctypes.byref(fd))
        return fd.value

    # ---- changes, export, apply -------------------------------------------

    def changes(self, id: str, parent: Optional[str] = None, *,
                walk: bool = False) -> List[Change]:
        """btrfslayer_changes(): what layer `id` changed relative to layer
        `parent` (everything added without one), in path order, in Docker's
        semantics.  walk: compute by walking both trees instead of from the
        send stream."""
        found: List[Change] = []
        failure: List[BaseException] = []

        def each(kind: int, path: bytes, _userdata: Any) -> int:
            try:
                found.append(Change(ChangeKind(kind), _decode(path)))
                return 0
            except BaseException as e:  # noqa: B902 — raised again after the call
                failure.append(e)
                return 1
        fn = _ffi.CHANGE_FN(each)
        self._call("changes", _cstr(id, "id"), _opt_cstr(parent, "parent"),
                   _ffi.CHANGES_WALK if walk else 0, fn, None)
        if failure:
            raise failure[0]
        return found

    def diff_size(self, id: str, parent: Optional[str] = None) -> int:
        """btrfslayer_diff_size(): the bytes of the regular files layer `id`
        added or modified relative to `parent`, hard links counted once."""
        size = ctypes.c_uint64()
        self._call("diff_size", _cstr(id, "id"), _opt_cstr(parent, "parent"),
                   ctypes.byref(size))
        return size.value

    def export(self, id: str, file: FileArg, parent: Optional[str] = None, *,
               progress: Optional[Progress] = None, flags: int = 0) -> None:
        """btrfslayer_export(): write layer `id`'s changes relative to
        `parent` as an OCI image-layer tar (uncompressed) to `file`: an fd,
        a file object with a fileno(), or any object with write(bytes)
        (fed through a pipe by a thread).  progress(done, total) is called
        as bytes go out, maybe from a thread of the library's; an exception
        it raises stops the call (the library's ECANCELED) and is raised
        here once the call returned, with that OSError as its cause."""
        cbs = _Callbacks(self)
        with _writable_fd(file) as fd:
            try:
                self._call("export", _cstr(id, "id"), _opt_cstr(parent, "parent"), fd, flags,
                           cbs.progress(progress), None)
            except OSError as stopped:
                cbs.check_from(stopped)
                raise
        cbs.check()

    def apply(self, id: str, file: FileArg, *, progress: Optional[Progress] = None,
              flags: int = 0) -> int:
        """btrfslayer_apply(): apply an OCI layer tar (plain, gzip or zstd)
        read from `file` (an fd, a file object, or any object with
        read(n)) to layer `id`; returns the unpacked size in bytes.  Paths
        that would escape the layer are refused.  progress: as for
        export()."""
        cbs = _Callbacks(self)
        unpacked = ctypes.c_uint64()
        with _readable_fd(file) as fd:
            try:
                self._call("apply", _cstr(id, "id"), fd, flags, cbs.progress(progress), None,
                           ctypes.byref(unpacked))
            except OSError as stopped:
                cbs.check_from(stopped)
                raise
        cbs.check()
        return unpacked.value


# ---- file objects as fds -------------------------------------------------------

def _fileno(file: FileArg) -> Optional[int]:
    if isinstance(file, int):
        return file
    try:
        return int(file.fileno())
    except (AttributeError, io.UnsupportedOperation, OSError, ValueError):
        return None


def _resync(file: Any, fd: int) -> None:
    """After C wrote or read through fd, put a buffered file object where
    the fd is (a file that cannot seek has nothing to resync)."""
    if isinstance(file, int):
        return
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        if file.seekable():
            file.seek(os.lseek(fd, 0, os.SEEK_CUR))


@contextlib.contextmanager
def _writable_fd(file: FileArg) -> Iterator[int]:
    fd = _fileno(file)
    if fd is not None:
        if not isinstance(file, int):
            file.flush()    # what Python buffered goes first
        yield fd
        _resync(file, fd)
        return
    if not callable(getattr(file, "write", None)):
        raise TypeError(f"{file!r}: neither an fd, nor a file with fileno(), nor writable")
    sink: Any = file
    r, w = os.pipe()
    failure: List[BaseException] = []

    def drain() -> None:
        with os.fdopen(r, "rb", buffering=0) as src:
            while chunk := src.read(1 << 16):
                if failure:
                    continue    # keep draining, or the writer blocks forever
                try:
                    sink.write(chunk)
                except BaseException as e:  # noqa: B902
                    failure.append(e)
    t = threading.Thread(target=drain, name="btrfslayer-export", daemon=True)
    t.start()
    try:
        yield w
    finally:
        os.close(w)
        t.join()
    if failure:
        raise failure[0]


@contextlib.contextmanager
def _readable_fd(file: FileArg) -> Iterator[int]:
    fd = _fileno(file)
    if fd is not None:
        if not isinstance(file, int) and _seekable(file):
            # a buffered reader may have read ahead: seeking to where it
            # stands drops its buffer and puts the fd there
            file.seek(file.tell())
        yield fd
        _resync(file, fd)
        return
    if not callable(getattr(file, "read", None)):
        raise TypeError(f"{file!r}: neither an fd, nor a file with fileno(), nor readable")
    source: Any = file
    r, w = os.pipe()
    failure: List[BaseException] = []

    def feed() -> None:
        try:
            with os.fdopen(w, "wb", buffering=0) as dst:
                while chunk := source.read(1 << 16):
                    view = memoryview(chunk)
                    while view:
                        view = view[dst.write(view):]
        except BrokenPipeError:
            pass    # the library stopped reading (it failed, or the tar ended)
        except BaseException as e:  # noqa: B902
            failure.append(e)
    t = threading.Thread(target=feed, name="btrfslayer-apply", daemon=True)
    t.start()
    try:
        yield r
    finally:
        os.close(r)
        t.join()
    if failure:
        raise failure[0]


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# ---- process-wide calls ----------------------------------------------------------

def open(home: StrPath, options: Optional[Options] = None, *,
         uid_map: Optional[IDMaps] = None, gid_map: Optional[IDMaps] = None,
         library: LibraryArg = None) -> Handle:
    """Open the store at `home`: the same as Handle(home, ...)."""
    return Handle(home, options, uid_map=uid_map, gid_map=gid_map, library=library)


def version(library: LibraryArg = None) -> str:
    """btrfslayer_version(): the version of the library actually loaded."""
    return _library(library).version()


def parse_size(size: Union[str, bytes], library: LibraryArg = None) -> int:
    """btrfslayer_parse_size(): a size in Docker's syntax ("10G", "512m",
    "1.5GiB", "4096"; binary units) in bytes.  OSError(EINVAL) when
    malformed, OSError(ERANGE) past 64 bits."""
    lib = _library(library)
    out = ctypes.c_uint64()
    r = lib.fn("btrfslayer_parse_size")(_cstr(size, "size"), ctypes.byref(out))
    if r < 0:
        raise OSError(-r, f"parse size {os.fsdecode(size)!r}: {os.strerror(-r)}")
    return out.value


_log_lock = threading.Lock()
_log_fns: dict[str, Any] = {}   # library path -> the live C callback


def set_log_fn(fn: Optional[Callable[[int, str], None]],
               library: LibraryArg = None) -> None:
    """btrfslayer_set_log_fn(): process-wide, fn(level, message) receives
    what the library has to say beyond errors (recovery work, a cleanup that
    failed); level is a syslog priority (LOG_ERR .. LOG_DEBUG).  None turns
    logging off.  fn may be called from any thread inside a library call and
    must not call the library.  Once this returns, the old fn is not running
    and will not be called again."""
    lib = _library(library)
    with _log_lock:
        if fn is None:
            cfn = _ffi.LOG_FN(0)   # NULL
        else:
            log = fn

            def call(level: int, message: bytes, _userdata: Any) -> None:
                log(level, message.decode("utf-8", "backslashreplace"))
            cfn = _ffi.LOG_FN(call)
        lib.fn("btrfslayer_set_log_fn")(cfn, None)
        # the old callback may be dropped only now that the library says it
        # is not running any more
        _log_fns[lib.path] = cfn


_LOGGING_LEVELS = {_ffi.LOG_ERR: logging.ERROR, _ffi.LOG_WARNING: logging.WARNING,
                   _ffi.LOG_INFO: logging.INFO, _ffi.LOG_DEBUG: logging.DEBUG}


def log_to_logging(logger: Optional[logging.Logger] = None,
                   library: LibraryArg = None) -> None:
    """set_log_fn() with the library's messages going to `logger` (default
    logging.getLogger("btrfslayer")) at the matching logging level."""
    log = logger or logging.getLogger("btrfslayer")
    set_log_fn(lambda level, msg: log.log(_LOGGING_LEVELS.get(level, logging.ERROR), "%s", msg),
               library)


# ---- attaching a detached mount ----------------------------------------------

_SYS_MOVE_MOUNT = 429   # one number on every architecture since Linux 5.2 (not alpha)
_AT_FDCWD = -100
_MOVE_MOUNT_F_EMPTY_PATH = 0x00000004


def attach_mount(mount_fd: int, target: StrPath) -> None:
    """move_mount(2) the detached mount `mount_fd` (from
    Handle.mount_idmapped()) onto the directory `target`.  The caller still
    closes mount_fd.  Raises OSError from the kernel.  Privilege:
    CAP_SYS_ADMIN in the target's mount namespace."""
    t = _cstr(target, "target")
    r = _ffi.libc_syscall(ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_int(mount_fd),
                          ctypes.c_char_p(b""), ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(t),
                          ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"attach mount: move_mount onto {os.fsdecode(t)}: {os.strerror(e)}",
                      os.fsdecode(t))


__all__ = ["Handle", "open", "version", "parse_size", "set_log_fn", "log_to_logging",
           "attach_mount", "StrPath", "Options", "IDMaps", "FileArg", "Progress"]
