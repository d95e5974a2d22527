// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

/*
#include <stdlib.h>
#include <btrfslayer.h>
*/
import "C"

import "unsafe"

// CreateFlags are the flags of Create.
type CreateFlags uint32

const (
	// CreateReadOnly makes the layer read-only from birth.
	CreateReadOnly CreateFlags = C.BTRFSLAYER_CREATE_READ_ONLY
)

// Create makes layer id (btrfslayer_create): an empty subvolume when parent
// is "", else a snapshot of layer parent.  mountLabel is an SELinux context
// or "".  storageOpts are Docker's --storage-opt "key=value" strings
// (size=SIZE).  An existing id is an error matching fs.ErrExist, a missing
// parent one matching fs.ErrNotExist.
func (h *Handle) Create(id, parent string, flags CreateFlags, mountLabel string, storageOpts []string) error {
	const op = "create"
	c, err := h.enter(op)
	if err != nil {
		return err
	}
	defer h.leave()
	cid, err := cString(op, "id", id)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cid))
	cparent, err := cOptString(op, "parent", parent)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cparent))
	clabel, err := cOptString(op, "mount label", mountLabel)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(clabel))
	copts, nopts, err := cStrings(op, "storage option", storageOpts)
	if err != nil {
		return err
	}
	defer freeStrings(copts, nopts)

	var e *C.btrfslayer_error
	r := C.btrfslayer_create(c, cid, cparent, C.uint32_t(flags), clabel, copts, nopts, &e)
	return check(op, r, e)
}

// Remove deletes layer id and every subvolume nested in it
// (btrfslayer_remove).  A missing layer is an error matching
// fs.ErrNotExist.
func (h *Handle) Remove(id string) error {
	return h.idCall("remove", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_remove(c, cid, e)
	})
}

// Put releases what Get acquired (btrfslayer_put): nothing today.
func (h *Handle) Put(id string) error {
	return h.idCall("put", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_put(c, cid, e)
	})
}

// Exists says whether layer id exists (btrfslayer_exists).
func (h *Handle) Exists(id string) (bool, error) {
	var r C.int
	err := h.idCall("exists", id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		r = C.btrfslayer_exists(c, cid, e)
		return r
	})
	return r == 1, err
}

// Get returns the absolute path of layer id (btrfslayer_get).  mountLabel
// is accepted for the graph-driver contract and not used.
func (h *Handle) Get(id, mountLabel string) (string, error) {
	const op = "get"
	var path *C.char
	clabel, err := cOptString(op, "mount label", mountLabel)
	if err != nil {
		return "", err
	}
	defer C.free(unsafe.Pointer(clabel))
	err = h.idCall(op, id, func(c *C.btrfslayer, cid *C.char, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_get(c, cid, clabel, &path, e)
	})
	if err != nil {
		return "", err
	}
	defer C.free(unsafe.Pointer(path))
	return C.GoString(path), nil
}

// idCall runs fn, a call on layer id, with the handle entered and id as a
// C string.
func (h *Handle) idCall(op, id string, fn func(*C.btrfslayer, *C.char, **C.btrfslayer_error) C.int) error {
	c, err := h.enter(op)
	if err != nil {
		return err
	}
	defer h.leave()
	cid, err := cString(op, "id", id)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cid))
	var e *C.btrfslayer_error
	return check(op, fn(c, cid, &e), e)
}

// Layer is a layer of the home: its id and absolute path.
type Layer struct {
	ID, Path string
}

// Layers lists every layer, sorted by id (btrfslayer_layers).
func (h *Handle) Layers() ([]Layer, error) {
	var layers []Layer
	err := h.list("layers", func(c *C.btrfslayer, l **C.btrfslayer_list, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_layers(c, l, e)
	}, func(k, v string) { layers = append(layers, Layer{ID: k, Path: v}) })
	return layers, err
}

// KeyValue is one line of Status.
type KeyValue struct {
	Key, Value string
}

// Status returns what a runtime shows in its info (btrfslayer_status):
// library version, home, filesystem uuid, quota mode, features, layer count
// and what the recovery sweep of this handle's open did.  Keys are stable.
func (h *Handle) Status() ([]KeyValue, error) {
	var status []KeyValue
	err := h.list("status", func(c *C.btrfslayer, l **C.btrfslayer_list, e **C.btrfslayer_error) C.int {
		return C.btrfslayer_status(c, l, e)
	}, func(k, v string) { status = append(status, KeyValue{Key: k, Value: v}) })
	return status, err
}

// list runs fn, a call that makes a list, and passes each entry to add.
func (h *Handle) list(op string, fn func(*C.btrfslayer, **C.btrfslayer_list, **C.btrfslayer_error) C.int, add func(k, v string)) error {
	c, err := h.enter(op)
	if err != nil {
		return err
	}
	defer h.leave()
	var l *C.btrfslayer_list
	var e *C.btrfslayer_error
	if err := check(op, fn(c, &l, &e), e); err != nil {
		return err
	}
	defer C.btrfslayer_list_free(l)
	n := C.btrfslayer_list_count(l)
	for i := C.size_t(0); i < n; i++ {
		add(C.GoString(C.btrfslayer_list_key(l, i)), C.GoString(C.btrfslayer_list_value(l, i)))
	}
	return nil
}
