// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const goroutines = 64

// 64 goroutines doing mixed operations on one handle.  Goroutines move
// between OS threads while they run, so each error's message is checked to
// be its own call's (it names the goroutine's own id).
func TestConcurrentOneHandle(t *testing.T) {
	h, _ := openNew(t, "btrfs.min_space=1M")
	create(t, h, "base", "", 0)
	writeFile(t, filepath.Join(get(t, h, "base"), "file"), "base data")

	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 3; n++ {
				if err := mixed(h, g, n); err != nil {
					t.Errorf("goroutine %d, round %d: %v", g, n, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	layers, err := h.Layers()
	if err != nil || len(layers) != 1 || layers[0].ID != "base" {
		t.Errorf("after the goroutines: Layers() = %v, %v; want base alone", layers, err)
	}
}

// mixed is one round of goroutine g on a shared handle.
func mixed(h *Handle, g, n int) error {
	id := fmt.Sprintf("g%d-%d", g, n)
	var flags CreateFlags
	var opts []string
	if n%2 == 1 {
		flags = CreateReadOnly
		opts = []string{"size=64M"}
	}
	if err := h.Create(id, "base", flags, "", opts); err != nil {
		return fmt.Errorf("Create(%s): %w", id, err)
	}
	if err := ownErr(h.Create(id, "base", 0, "", nil), syscall.EEXIST, id); err != nil {
		return fmt.Errorf("second Create: %w", err)
	}
	if ok, err := h.Exists(id); err != nil || !ok {
		return fmt.Errorf("Exists(%s) = %v, %v", id, ok, err)
	}
	path, err := h.Get(id, "")
	if err != nil {
		return fmt.Errorf("Get(%s): %w", id, err)
	}
	if b, err := os.ReadFile(filepath.Join(path, "file")); err != nil || string(b) != "base data" {
		return fmt.Errorf("reading %s/file: %q, %v", path, b, err)
	}
	if err := h.Put(id); err != nil {
		return fmt.Errorf("Put(%s): %w", id, err)
	}
	if err := h.SetQuota(id, uint64(128+g)<<20); err != nil {
		return fmt.Errorf("SetQuota(%s): %w", id, err)
	}
	u, err := h.Usage(id, 0)
	if err != nil || u.RecordedLimit != uint64(128+g)<<20 {
		return fmt.Errorf("Usage(%s) = %+v, %v", id, u, err)
	}
	if info, err := h.LayerInfo(id); err == nil {
		if info.ReadOnly != (flags == CreateReadOnly) || info.Parent != "base" {
			return fmt.Errorf("LayerInfo(%s) = %+v", id, info)
		}
	} else if !errors.Is(err, syscall.ENOSYS) {
		return fmt.Errorf("LayerInfo(%s): %w", id, err)
	}
	layers, err := h.Layers()
	if err != nil {
		return fmt.Errorf("Layers: %w", err)
	}
	found := false
	for _, l := range layers {
		found = found || l.ID == id
	}
	if !found {
		return fmt.Errorf("Layers() lacks %s", id)
	}
	if _, err := h.Status(); err != nil {
		return fmt.Errorf("Status: %w", err)
	}
	missing := "missing-" + id
	if err := ownErr(h.Remove(missing), syscall.ENOENT, missing); err != nil {
		return fmt.Errorf("Remove(%s): %w", missing, err)
	}
	if _, err := h.Get(missing, ""); ownErr(err, syscall.ENOENT, missing) != nil {
		return fmt.Errorf("Get(%s): %w", missing, ownErr(err, syscall.ENOENT, missing))
	}
	if err := ownErr(h.Create(id+"-child", missing, 0, "", nil), syscall.ENOENT, missing); err != nil {
		return fmt.Errorf("Create from %s: %w", missing, err)
	}
	if err := h.ClearQuota(id); err != nil {
		return fmt.Errorf("ClearQuota(%s): %w", id, err)
	}
	if err := h.Remove(id); err != nil {
		return fmt.Errorf("Remove(%s): %w", id, err)
	}
	if ok, err := h.Exists(id); err != nil || ok {
		return fmt.Errorf("Exists(%s) after Remove = %v, %v", id, ok, err)
	}
	return nil
}

// ownErr checks that err is an *Error with code want whose message names
// mention: the message of this very call.
func ownErr(err error, want syscall.Errno, mention string) error {
	var e *Error
	if !errors.As(err, &e) || e.Code != want {
		return fmt.Errorf("got %v, want %v", err, want)
	}
	if !strings.Contains(e.Message, mention) {
		return fmt.Errorf("message %q is not its own call's (no %q)", e.Message, mention)
	}
	return nil
}

// One handle per goroutine on one home: each works on its own layer, and
// all race to create one id, which exactly one wins.
func TestHandlePerGoroutine(t *testing.T) {
	home := newHome(t)
	var ready, start sync.WaitGroup
	ready.Add(goroutines)
	start.Add(1)
	results := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			h, err := Open(home, nil, nil, nil)
			ready.Done()
			if err != nil {
				t.Errorf("goroutine %d: Open: %v", g, err)
				results <- err
				return
			}
			defer func() {
				if err := h.Close(); err != nil {
					t.Errorf("goroutine %d: Close: %v", g, err)
				}
			}()
			start.Wait()
			results <- h.Create("contested", "", 0, "", nil)
			id := fmt.Sprintf("own%d", g)
			if err := h.Create(id, "", 0, "", nil); err != nil {
				t.Errorf("goroutine %d: Create(%s): %v", g, id, err)
				return
			}
			if ok, err := h.Exists("contested"); err != nil || !ok {
				t.Errorf("goroutine %d: Exists(contested) = %v, %v", g, ok, err)
			}
			if _, err := h.Get(id, ""); err != nil {
				t.Errorf("goroutine %d: Get(%s): %v", g, id, err)
			}
			if err := h.Remove(id); err != nil {
				t.Errorf("goroutine %d: Remove(%s): %v", g, id, err)
			}
			if err := ownErr(h.Remove(id), syscall.ENOENT, id); err != nil {
				t.Errorf("goroutine %d: second Remove(%s): %v", g, id, err)
			}
		}(g)
	}
	ready.Wait()
	start.Done()
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("a losing Create(contested): %v, want fs.ErrExist", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creates of one id won, want 1", won)
	}
	h := open(t, home)
	if layers, err := h.Layers(); err != nil || len(layers) != 1 || layers[0].ID != "contested" {
		t.Errorf("after the handles: Layers() = %v, %v; want contested alone", layers, err)
	}
}
