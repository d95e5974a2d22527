// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

/*
#include <stdlib.h>
#include <btrfslayer.h>
*/
import "C"

import (
	"strconv"
	"syscall"
	"unsafe"
)

// SetQuota limits layer id to size bytes and records the limit
// (btrfslayer_set_quota), turning quotas on if they are off.
func (h *Handle) SetQuota(id string, size uint64) error {
	return h.idCall("set quota", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_set_quota(c, cid, C.uint64_t(size), e)
	})
}

// ClearQuota removes layer id's limit and its record
// (btrfslayer_clear_quota).
func (h *Handle) ClearQuota(id string) error {
	return h.idCall("clear quota", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_clear_quota(c, cid, e)
	})
}

// UsageFlags are the flags of Usage.
type UsageFlags uint32

const (
	// UsageSync commits the filesystem's transaction first, so the
	// numbers include every write made so far.
	UsageSync UsageFlags = C.BTRFSLAYER_USAGE_SYNC
	// UsageWalk also walks the layer's files for WalkBytes and
	// WalkInodes (O(files)); with it, quotas off is no error.
	UsageWalk UsageFlags = C.BTRFSLAYER_USAGE_WALK
)

// QuotaMode is the filesystem's quota mode.
type QuotaMode uint32

const (
	QuotaOff    QuotaMode = C.BTRFSLAYER_QUOTA_OFF    // usage with UsageWalk only
	QuotaQgroup QuotaMode = C.BTRFSLAYER_QUOTA_QGROUP // full qgroups
	QuotaSimple QuotaMode = C.BTRFSLAYER_QUOTA_SIMPLE // simple quotas (Linux 6.7)
)

// Usage is a layer's usage (btrfslayer_usage; the header says what each
// field counts).  Limits of 0 mean none.
type Usage struct {
	Referenced, Exclusive, Limit, RecordedLimit, SubvolumeID uint64
	QuotaMode                                                QuotaMode
	// Consistent is false while the kernel marks its numbers
	// inconsistent, until a rescan.
	Consistent            bool
	ExclusiveLimit        uint64
	WalkBytes, WalkInodes uint64 // UsageWalk only
}

// Usage returns layer id's usage (btrfslayer_get_usage).  With quotas off
// and without UsageWalk, the error matches ErrNoQuota.
func (h *Handle) Usage(id string, flags UsageFlags) (Usage, error) {
	var u C.btrfslayer_usage
	err := h.idCall("usage", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_get_usage(c, cid, C.uint32_t(flags), &u, C.size_t(unsafe.Sizeof(u)), e)
	})
	if err != nil {
		return Usage{}, err
	}
	return Usage{
		Referenced:     uint64(u.referenced),
		Exclusive:      uint64(u.exclusive),
		Limit:          uint64(u.limit),
		RecordedLimit:  uint64(u.recorded_limit),
		SubvolumeID:    uint64(u.subvolume_id),
		QuotaMode:      QuotaMode(u.quota_mode),
		Consistent:     u.consistent != 0,
		ExclusiveLimit: uint64(u.exclusive_limit),
		WalkBytes:      uint64(u.walk_bytes),
		WalkInodes:     uint64(u.walk_inodes),
	}, nil
}

// ParseSize parses a size in Docker's syntax ("10G", "512m", "1.5GiB",
// "4096"; binary units) as size= and btrfs.min_space= take it
// (btrfslayer_parse_size).
func ParseSize(s string) (uint64, error) {
	cs, err := cString("parse size", "size", s)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cs))
	var n C.uint64_t
	if r := C.btrfslayer_parse_size(cs, &n); r < 0 {
		return 0, &Error{Code: syscall.Errno(-r),
			Message: "parse size: " + strconv.Quote(s) + ": " + C.GoString(C.btrfslayer_strerror(r))}
	}
	return uint64(n), nil
}
