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
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// ChangeKind is what happened to a path between a parent and a layer.
type ChangeKind int

const (
	ChangeAdded    ChangeKind = C.BTRFSLAYER_CHANGE_ADDED
	ChangeModified ChangeKind = C.BTRFSLAYER_CHANGE_MODIFIED
	ChangeDeleted  ChangeKind = C.BTRFSLAYER_CHANGE_DELETED
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAdded:
		return "A"
	case ChangeModified:
		return "C"
	case ChangeDeleted:
		return "D"
	}
	return "?"
}

// Change is one changed path ("/a/b") of a layer.
type Change struct {
	Kind ChangeKind
	Path string
}

// ChangesFlags are the flags of Changes.
type ChangesFlags uint32

const (
	// ChangesWalk computes the changes by walking both trees, never by
	// the send stream.
	ChangesWalk ChangesFlags = C.BTRFSLAYER_CHANGES_WALK
)

// Changes lists the paths that differ between layer parent and layer id,
// in path order (btrfslayer_changes).
func (h *Handle) Changes(id, parent string, flags ChangesFlags) ([]Change, error) {
	const op = "changes"
	cparent, err := cOptString(op, "parent", parent)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cparent))
	var changes []Change
	fn := cgo.NewHandle(func(kind C.int, path *C.char) C.int {
		changes = append(changes, Change{Kind: ChangeKind(kind), Path: C.GoString(path)})
		return 0
	})
	defer fn.Delete()
	err = h.idCall(op, id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_changes(c, cid, cparent, C.uint32_t(flags), C.uintptr_t(fn), e)
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// DiffSize returns the size of the changes between layer parent and layer
// id (btrfslayer_diff_size).
func (h *Handle) DiffSize(id, parent string) (uint64, error) {
	const op = "diff size"
	cparent, err := cOptString(op, "parent", parent)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cparent))
	var size C.uint64_t
	err = h.idCall(op, id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_diff_size(c, cid, cparent, &size, e)
	})
	return uint64(size), err
}

// Export writes the changes between layer parent and layer id to w
// (btrfslayer_export).  progress, if not nil, is called with the bytes done
// and the total (0 when unknown), from the calling goroutine; a panic in it
// cancels the call and is raised again once the library has returned.
func (h *Handle) Export(id, parent string, w *os.File, progress func(done, total uint64)) error {
	const op = "export"
	cparent, err := cOptString(op, "parent", parent)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cparent))
	p := newProgress(progress)
	defer p.done()
	err = h.idCall(op, id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_export(c, cid, cparent, C.int(w.Fd()), p.handle, e)
	})
	runtime.KeepAlive(w)
	return err
}

// Apply unpacks the stream read from r (as Export writes it) into layer id
// (btrfslayer_apply) and returns the bytes unpacked.  progress is as for
// Export.
func (h *Handle) Apply(id string, r *os.File, progress func(done, total uint64)) (uint64, error) {
	p := newProgress(progress)
	defer p.done()
	var unpacked C.uint64_t
	err := h.idCall("apply", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.blgo_apply(c, cid, C.int(r.Fd()), p.handle, &unpacked, e)
	})
	runtime.KeepAlive(r)
	return uint64(unpacked), err
}

// progress carries a Go progress function through the library as a
// cgo.Handle, and a panic of it back to the caller: a panic must not unwind
// through the library's C frames (it would leave its locks held), so it
// stops the call instead (the library takes back what the call made) and is
// raised again once the call has returned.
type progress struct {
	fn       func(done, total uint64)
	panicked interface{}
	handle   C.uintptr_t // 0: no function, no callback
}

func newProgress(fn func(done, total uint64)) *progress {
	p := &progress{fn: fn}
	if fn != nil {
		p.handle = C.uintptr_t(cgo.NewHandle(p))
	}
	return p
}

// done releases the handle and raises again a panic of the function.
func (p *progress) done() {
	if p.handle != 0 {
		cgo.Handle(p.handle).Delete()
	}
	if p.panicked != nil {
		panic(p.panicked)
	}
}

// blgoProgress returns non-zero, which cancels the call, once fn panicked.
//
//export blgoProgress
func blgoProgress(done, total C.uint64_t, handle C.uintptr_t) (stop C.int) {
	p := cgo.Handle(handle).Value().(*progress)
	if p.panicked != nil {
		return 1
	}
	defer func() {
		if p.panicked = recover(); p.panicked != nil {
			stop = 1
		}
	}()
	p.fn(uint64(done), uint64(total))
	return 0
}

//export blgoChange
func blgoChange(kind C.int, path *C.char, handle C.uintptr_t) C.int {
	return cgo.Handle(handle).Value().(func(C.int, *C.char) C.int)(kind, path)
}
