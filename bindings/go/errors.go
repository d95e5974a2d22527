// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

/*
#include <errno.h>
#include <btrfslayer.h>
*/
import "C"

import (
	"errors"
	"syscall"
)

// The library's own codes, above the kernel's largest errno.  An *Error
// carries them in Code; match them with ErrNotBtrfs and ErrNoQuota.
const (
	// ENOTBTRFS: the home is not on btrfs (BTRFSLAYER_ENOTBTRFS).
	ENOTBTRFS syscall.Errno = C.BTRFSLAYER_ENOTBTRFS
	// ENOQUOTA: quotas are off on the filesystem (BTRFSLAYER_ENOQUOTA).
	ENOQUOTA syscall.Errno = C.BTRFSLAYER_ENOQUOTA
)

var (
	// ErrNotBtrfs matches (errors.Is) an error of a call whose home is
	// not on btrfs: a runtime falls through to its next driver on it.
	ErrNotBtrfs = errors.New("btrfslayer: not on btrfs")
	// ErrNoQuota matches an error of Usage when quotas are off.
	ErrNoQuota = errors.New("btrfslayer: quotas are off")
)

// Error is a failed call of the library: the positive code it returned and
// the message of that very call ("<step>: <path>: <reason>").
type Error struct {
	Code    syscall.Errno
	Message string
}

// Error returns the library's message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the code, so errors.Is matches syscall.Errno values and,
// through them, fs.ErrExist, fs.ErrNotExist and fs.ErrPermission.
func (e *Error) Unwrap() error { return e.Code }

// Is matches ErrNotBtrfs and ErrNoQuota.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotBtrfs:
		return e.Code == ENOTBTRFS
	case ErrNoQuota:
		return e.Code == ENOQUOTA
	}
	return false
}

// check turns the return value and error object of call op into an error,
// freeing the object.  The message is the call's own: it travels in e, not
// in thread-local state, so the goroutine may have changed OS thread since.
// -ENOSYS without an error object comes from the shim: the loaded library
// lacks a 1.0 call.
func check(op string, r C.int, e *C.btrfslayer_error) error {
	if r >= 0 {
		C.btrfslayer_error_free(e)
		return nil
	}
	if r == -C.ENOSYS && e == nil {
		return &Error{Code: syscall.ENOSYS,
			Message: op + ": not in the loaded libbtrfslayer (" + Version() + ")"}
	}
	err := &Error{Code: syscall.Errno(-r)}
	if e != nil {
		err.Message = C.GoString(C.btrfslayer_error_message(e))
		C.btrfslayer_error_free(e)
	}
	if err.Message == "" {
		err.Message = op + ": " + C.GoString(C.btrfslayer_strerror(r))
	}
	return err
}
