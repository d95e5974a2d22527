// SPDX-License-Identifier: LGPL-2.1-or-later

// Package btrfslayer stores container image and container layers as btrfs
// subvolumes, through libbtrfslayer (found with pkg-config).
//
// A Handle owns a home directory on btrfs; layer <id> is the subvolume
// HOME/subvolumes/<id>, and a layer made from a parent is a snapshot of it.
// The C header btrfslayer.h documents every call in full: what it does, its
// errors and the privilege it needs.  Each method here names the C call it
// wraps.
//
// Errors are *Error values carrying the library's code and the call's own
// message; use errors.Is with fs.ErrExist, fs.ErrNotExist, fs.ErrPermission,
// syscall.Errno values, ErrNotBtrfs and ErrNoQuota.  A string argument with
// a NUL byte is refused (syscall.EINVAL) before the library is called, as C
// would otherwise see only what comes before it.
//
// A Handle may be used from many goroutines at once.  Close waits for the
// calls running on the handle; calls after it fail with an error wrapping
// fs.ErrClosed.  So a progress function must not call Close on the handle
// of the call it reports on (it would wait for itself).  No finalizer
// closes a forgotten handle: call Close.
//
// The 1.0 calls (LayerInfo, SetReadOnly, OpenLayer, MountIdmapped, Changes,
// DiffSize, Export, Apply) are linked weakly: against a library without
// them, they fail with an error matching syscall.ENOSYS and the rest works.
package btrfslayer

/*
#cgo pkg-config: libbtrfslayer
#include <stdlib.h>
#include <btrfslayer.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"io/fs"
	"sync"
	"syscall"
	"unsafe"
)

// IDMap is one line of a user-namespace map, as in /proc/PID/uid_map:
// container ids [ContainerID, ContainerID+Size) are host ids
// [HostID, HostID+Size).
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// Handle is an open home.  Its methods are safe for concurrent use.
type Handle struct {
	// mu is held for reading by every call and for writing by Close, so
	// Close waits for the running calls and no call starts after it.
	mu sync.RWMutex
	c  *C.btrfslayer
}

// Open opens (creating if needed) the store at home (btrfslayer_open).
// options are "key=value" strings (btrfs.min_space=SIZE,
// btrfs.quota_mode=qgroup|simple, btrfs.mount_home=BOOL); uidMap and gidMap
// are the user-namespace maps of remapped containers, or nil.  A home not on
// btrfs is an error matching ErrNotBtrfs.
func Open(home string, options []string, uidMap, gidMap []IDMap) (*Handle, error) {
	chome, err := cString("open", "home", home)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(chome))
	copts, nopts, err := cStrings("open", "option", options)
	if err != nil {
		return nil, err
	}
	defer freeStrings(copts, nopts)
	uid, nuid := cIDMaps(uidMap)
	gid, ngid := cIDMaps(gidMap)
	defer C.free(unsafe.Pointer(uid))
	defer C.free(unsafe.Pointer(gid))

	var c *C.btrfslayer
	var e *C.btrfslayer_error
	r := C.btrfslayer_open(chome, copts, nopts, uid, nuid, gid, ngid, &c, &e)
	if err := check("open", r, e); err != nil {
		return nil, err
	}
	return &Handle{c: c}, nil
}

// Close closes the handle (btrfslayer_close), after the calls running on it
// return.  The handle is closed even when Close returns an error.  Closing a
// closed handle does nothing and returns nil.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c == nil {
		return nil
	}
	var e *C.btrfslayer_error
	r := C.btrfslayer_close(h.c, &e)
	h.c = nil
	return check("close", r, e)
}

// enter starts a call: it returns the C handle with h.mu read-locked, or an
// error wrapping fs.ErrClosed.  A nil error must be followed by h.leave().
func (h *Handle) enter(op string) (*C.btrfslayer, error) {
	h.mu.RLock()
	if h.c == nil {
		h.mu.RUnlock()
		return nil, fmt.Errorf("btrfslayer: %s: %w", op, fs.ErrClosed)
	}
	return h.c, nil
}

func (h *Handle) leave() { h.mu.RUnlock() }

// cString returns s as a C string (free it), refusing a NUL byte in it:
// C would see only what comes before it.
func cString(op, what, s string) (*C.char, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, &Error{Code: syscall.EINVAL,
				Message: fmt.Sprintf("%s: %s %q contains a NUL byte", op, what, s)}
		}
	}
	return C.CString(s), nil
}

// cOptString is cString where "" means NULL (no parent, no label).
func cOptString(op, what, s string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return cString(op, what, s)
}

// cStrings returns ss as a C array of C strings (freeStrings it), NULL when
// ss is empty.
func cStrings(op, what string, ss []string) (**C.char, C.size_t, error) {
	if len(ss) == 0 {
		return nil, 0, nil
	}
	arr := (**C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	elems := unsafe.Slice(arr, len(ss))
	for i, s := range ss {
		cs, err := cString(op, what, s)
		if err != nil {
			freeStrings(arr, C.size_t(i))
			return nil, 0, err
		}
		elems[i] = cs
	}
	return arr, C.size_t(len(ss)), nil
}

func freeStrings(arr **C.char, n C.size_t) {
	if arr == nil {
		return
	}
	for _, cs := range unsafe.Slice(arr, int(n)) {
		C.free(unsafe.Pointer(cs))
	}
	C.free(unsafe.Pointer(arr))
}

// cIDMaps returns m as a C array (free it), NULL when m is empty.
func cIDMaps(m []IDMap) (*C.btrfslayer_idmap, C.size_t) {
	if len(m) == 0 {
		return nil, 0
	}
	arr := (*C.btrfslayer_idmap)(C.malloc(C.size_t(len(m)) * C.size_t(unsafe.Sizeof(C.btrfslayer_idmap{}))))
	elems := unsafe.Slice(arr, len(m))
	for i, l := range m {
		elems[i].container_id = C.uint32_t(l.ContainerID)
		elems[i].host_id = C.uint32_t(l.HostID)
		elems[i].size = C.uint32_t(l.Size)
	}
	return arr, C.size_t(len(m))
}
