// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

/*
#include <stdlib.h>
#include <btrfslayer.h>
#include "shim.h"
*/
import "C"

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// LayerInfo is what btrfs knows of a layer (btrfslayer_info).
type LayerInfo struct {
	SubvolumeID, Generation uint64
	Created                 time.Time // btrfs otime
	ReadOnly, HasNested     bool
	// Parent is the id of the layer this one is a snapshot of; "" when
	// it is none or that layer is gone.
	Parent string
}

// LayerInfo returns what btrfs knows of layer id (btrfslayer_layer_info).
// It works with quotas off.
func (h *Handle) LayerInfo(id string) (LayerInfo, error) {
	const op = "layer info"
	var info C.btrfslayer_info
	err := h.idCall(op, id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_layer_info(c, cid, &info, e)
	})
	if err != nil {
		return LayerInfo{}, err
	}
	return LayerInfo{
		SubvolumeID: uint64(info.subvolume_id),
		Generation:  uint64(info.generation),
		Created:     time.Unix(int64(info.otime_sec), int64(info.otime_nsec)),
		ReadOnly:    info.flags&C.BTRFSLAYER_INFO_READ_ONLY != 0,
		HasNested:   info.flags&C.BTRFSLAYER_INFO_HAS_NESTED != 0,
		Parent:      C.GoString(&info.parent[0]),
	}, nil
}

// SetReadOnly seals (readOnly) or unseals layer id and every subvolume
// nested in it (btrfslayer_set_read_only).
func (h *Handle) SetReadOnly(id string, readOnly bool) error {
	ro := C.int(0)
	if readOnly {
		ro = 1
	}
	return h.idCall("set read-only", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_set_read_only(c, cid, ro, e)
	})
}

// FDFlags are the flags of OpenLayer.
type FDFlags uint32

const (
	// FDPath opens the layer's root with O_PATH instead of O_RDONLY.
	FDPath FDFlags = C.BTRFSLAYER_FD_PATH
)

// OpenLayer opens layer id's root directory (btrfslayer_get_fd), for work
// relative to an fd rather than a path.  The file is named after the id.
func (h *Handle) OpenLayer(id string, flags FDFlags) (*os.File, error) {
	fd := C.int(-1)
	err := h.idCall("open layer", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_get_fd(c, cid, C.uint32_t(flags), &fd, e)
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), id), nil
}

// MountFlags are the flags of MountIdmapped.
type MountFlags uint32

const (
	// MountReadOnly makes the idmapped mount read-only.
	MountReadOnly MountFlags = C.BTRFSLAYER_MOUNT_READ_ONLY
)

// MountIdmapped returns a detached mount of layer id, idmapped with a user
// namespace of the given maps (btrfslayer_mount_idmapped).  Attach it with
// AttachMount, and close it.  Needs CAP_SYS_ADMIN; an error matching
// syscall.EOPNOTSUPP where the kernel cannot.
func (h *Handle) MountIdmapped(id string, uidMap, gidMap []IDMap, flags MountFlags) (*os.File, error) {
	uid, nuid := cIDMaps(uidMap)
	gid, ngid := cIDMaps(gidMap)
	defer C.free(unsafe.Pointer(uid))
	defer C.free(unsafe.Pointer(gid))
	fd := C.int(-1)
	err := h.idCall("mount idmapped", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_mount_idmapped(c, cid, uid, nuid, gid, ngid, C.uint32_t(flags), &fd, e)
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "mount of "+id), nil
}

// move_mount(2): 429 in the table every architecture but alpha shares for
// the calls added since Linux 5.1; Go 1.19's syscall package predates it.
const (
	sysMoveMount        = 429
	moveMountFEmptyPath = 0x4  // MOVE_MOUNT_F_EMPTY_PATH
	atFDCWD             = -100 // AT_FDCWD
)

// AttachMount attaches a detached mount (from MountIdmapped) at target, a
// directory, with move_mount(2).  mount stays open: close it after.
func AttachMount(mount *os.File, target string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	ptarget, err := syscall.BytePtrFromString(target)
	if err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: syscall.EINVAL}
	}
	raw, err := mount.SyscallConn()
	if err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	var errno syscall.Errno
	dirfd := atFDCWD // target is relative to the working directory
	err = raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(sysMoveMount, fd, uintptr(unsafe.Pointer(empty)),
			uintptr(dirfd), uintptr(unsafe.Pointer(ptarget)), moveMountFEmptyPath, 0)
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return nil
}
