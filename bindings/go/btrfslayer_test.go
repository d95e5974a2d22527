// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestVersion(t *testing.T) {
	if v := Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("Version() = %q, want MAJOR.MINOR.PATCH", v)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]uint64{
		"4096": 4096, "10G": 10 << 30, "512m": 512 << 20, "1.5GiB": 3 << 29, "1k": 1024,
	} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	_, err := ParseSize("ten")
	wantErr(t, `ParseSize("ten")`, err, syscall.EINVAL, `"ten"`)
	_, err = ParseSize("99999999999999999999")
	wantErr(t, "ParseSize(2^66)", err, syscall.ERANGE, "99999999999999999999")
	_, err = ParseSize("1G\x00junk")
	wantErr(t, "ParseSize with a NUL", err, syscall.EINVAL, "NUL")
}

// The mapping itself, for every code the binding treats apart; the tests
// below check that the library's real errors arrive through it.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		code syscall.Errno
		is   []error
		not  []error
	}{
		{syscall.EEXIST, []error{fs.ErrExist, syscall.EEXIST}, []error{fs.ErrNotExist, ErrNotBtrfs}},
		{syscall.ENOENT, []error{fs.ErrNotExist, syscall.ENOENT}, []error{fs.ErrExist, ErrNoQuota}},
		{syscall.EPERM, []error{fs.ErrPermission}, []error{fs.ErrNotExist}},
		{syscall.EACCES, []error{fs.ErrPermission}, []error{fs.ErrExist}},
		{ENOTBTRFS, []error{ErrNotBtrfs, ENOTBTRFS}, []error{ErrNoQuota, fs.ErrNotExist}},
		{ENOQUOTA, []error{ErrNoQuota, ENOQUOTA}, []error{ErrNotBtrfs, fs.ErrNotExist}},
		{syscall.EBUSY, []error{syscall.EBUSY}, []error{ErrNotBtrfs, fs.ErrExist, fs.ErrClosed}},
	}
	for _, c := range cases {
		err := error(&Error{Code: c.code, Message: "step: path: reason"})
		if err.Error() != "step: path: reason" {
			t.Errorf("Error() = %q, want the library's message", err.Error())
		}
		for _, target := range c.is {
			if !errors.Is(err, target) {
				t.Errorf("code %d: errors.Is(err, %v) is false", c.code, target)
			}
		}
		for _, target := range c.not {
			if errors.Is(err, target) {
				t.Errorf("code %d: errors.Is(err, %v) is true", c.code, target)
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	need(t)
	_, err := Open(filepath.Join(tmpfsMnt, "home"), nil, nil, nil)
	wantErr(t, "Open on tmpfs", err, ENOTBTRFS, tmpfsMnt, ErrNotBtrfs)

	home := newHome(t)
	link := home + ".link"
	if err := os.Symlink(home, link); err != nil {
		t.Fatal(err)
	}
	_, err = Open(link, nil, nil, nil)
	wantErr(t, "Open of a symlink", err, syscall.ELOOP, link)

	_, err = Open(home, []string{"btrfs.no_such_key=1"}, nil, nil)
	wantErr(t, "Open with an unknown option", err, syscall.EINVAL, "btrfs.no_such_key")
	_, err = Open(home, []string{"btrfs.min_space=1G\x00junk"}, nil, nil)
	wantErr(t, "Open with a NUL in an option", err, syscall.EINVAL, "NUL")
	_, err = Open(home+"\x00x", nil, nil, nil)
	wantErr(t, "Open with a NUL in home", err, syscall.EINVAL, "NUL")
	// a map must map container root
	_, err = Open(home, nil, []IDMap{{ContainerID: 1, HostID: 100000, Size: 10}}, nil)
	wantErr(t, "Open with a map missing root", err, syscall.EINVAL, "")
	if _, err := os.Stat(filepath.Join(home, "subvolumes")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused open left home/subvolumes: %v", err)
	}
}

func TestOpenIDMap(t *testing.T) {
	home := newHome(t)
	uidMap := []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	gidMap := []IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}
	h, err := Open(home, nil, uidMap, gidMap)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	create(t, h, "mapped", "", 0)
	var st syscall.Stat_t
	if err := syscall.Stat(get(t, h, "mapped"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 100000 || st.Gid != 200000 {
		t.Errorf("layer root owned by %d:%d, want container root 100000:200000", st.Uid, st.Gid)
	}
	// the home records its maps: other maps are refused
	_, err = Open(home, nil, []IDMap{{ContainerID: 0, HostID: 300000, Size: 65536}}, gidMap)
	wantErr(t, "Open with other maps", err, syscall.EBUSY, home)
}

func TestLayers(t *testing.T) {
	h, home := openNew(t)
	create(t, h, "base", "", 0)
	base := get(t, h, "base")
	if want := filepath.Join(home, "subvolumes", "base"); base != want {
		t.Errorf("Get(base) = %q, want %q", base, want)
	}
	writeFile(t, filepath.Join(base, "file"), "data")
	create(t, h, "image", "base", CreateReadOnly)
	image := get(t, h, "image")
	if b, err := os.ReadFile(filepath.Join(image, "file")); err != nil || string(b) != "data" {
		t.Errorf("snapshot's file: %q, %v", b, err)
	}
	err := os.WriteFile(filepath.Join(image, "new"), nil, 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing to a read-only layer: %v, want EROFS", err)
	}
	if err := h.Put("image"); err != nil {
		t.Errorf("Put: %v", err)
	}
	for id, want := range map[string]bool{"base": true, "image": true, "nope": false} {
		if got, err := h.Exists(id); err != nil || got != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	layers, err := h.Layers()
	if err != nil {
		t.Fatal(err)
	}
	want := []Layer{{"base", base}, {"image", image}}
	if len(layers) != 2 || layers[0] != want[0] || layers[1] != want[1] {
		t.Errorf("Layers() = %v, want %v", layers, want)
	}
	status, err := h.Status()
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	for _, e := range status {
		kv[e.Key] = e.Value
	}
	if kv["library_version"] != Version() || kv["home"] != home || kv["layers"] != "2" {
		t.Errorf("Status() = %v", status)
	}
	if err := h.Remove("base"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.Exists("base"); ok {
		t.Error("base exists after Remove")
	}
	if _, err := os.Stat(base); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("base's path after Remove: %v", err)
	}
	if layers, _ := h.Layers(); len(layers) != 1 || layers[0].ID != "image" {
		t.Errorf("Layers() after Remove = %v", layers)
	}
}

func TestLayerErrors(t *testing.T) {
	h, home := openNew(t)
	create(t, h, "base", "", 0)

	err := h.Create("base", "", 0, "", nil)
	wantErr(t, "Create of an existing id", err, syscall.EEXIST, "base", fs.ErrExist)
	err = h.Create("child", "missing-parent", 0, "", nil)
	wantErr(t, "Create from a missing parent", err, syscall.ENOENT, "missing-parent", fs.ErrNotExist)
	err = h.Remove("missing")
	wantErr(t, "Remove of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
	_, err = h.Get("missing", "")
	wantErr(t, "Get of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
	err = h.SetQuota("missing", 1<<30)
	wantErr(t, "SetQuota of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)

	err = h.Create("../escape", "", 0, "", nil)
	wantErr(t, "Create with a bad id", err, syscall.EINVAL, "../escape")
	err = h.Create("flags", "", 1<<31, "", nil)
	wantErr(t, "Create with an unknown flag", err, syscall.EINVAL, "")
	err = h.Create("opts", "", 0, "", []string{"nosuch=1"})
	wantErr(t, "Create with an unknown storage option", err, syscall.EINVAL, "nosuch")
	err = h.Create("label", "", 0, "not a label", nil)
	wantErr(t, "Create with a malformed label", err, syscall.EINVAL, "")
	err = h.Create("nul\x00", "", 0, "", nil)
	wantErr(t, "Create with a NUL in the id", err, syscall.EINVAL, "NUL")
	_, err = h.Exists("bad/id")
	wantErr(t, "Exists with a bad id", err, syscall.EINVAL, "bad/id")
	err = h.Put("bad/id")
	wantErr(t, "Put with a bad id", err, syscall.EINVAL, "bad/id")

	// no side effect: only base is there
	if layers, err := h.Layers(); err != nil || len(layers) != 1 {
		t.Errorf("after refused calls: Layers() = %v, %v", layers, err)
	}
	entries, _ := os.ReadDir(filepath.Join(home, "subvolumes"))
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") { // the library's own
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 {
		t.Errorf("after refused calls: subvolumes/ holds %q", names)
	}
}

// EPERM from the kernel: a snapshot into an immutable directory.
func TestPermissionError(t *testing.T) {
	h, home := openNew(t)
	create(t, h, "base", "", 0)
	subvolumes := filepath.Join(home, "subvolumes")
	if out, err := exec.Command("chattr", "+i", subvolumes).CombinedOutput(); err != nil {
		cannot(t, "chattr +i: "+err.Error()+" "+string(out))
	}
	defer exec.Command("chattr", "-i", subvolumes).Run()
	err := h.Create("child", "base", 0, "", nil)
	wantErr(t, "Create in an immutable subvolumes/", err, syscall.EPERM, "", fs.ErrPermission)
}

func TestQuota(t *testing.T) {
	h, _ := openNew(t, "btrfs.min_space=1M")
	create(t, h, "sized", "", 0, "size=64M")
	u, err := h.Usage("sized", UsageSync)
	if err != nil {
		t.Fatal(err)
	}
	if u.Limit != 64<<20 || u.RecordedLimit != 64<<20 {
		t.Errorf("Usage after size=64M: %+v", u)
	}
	if u.QuotaMode != QuotaQgroup && u.QuotaMode != QuotaSimple {
		t.Errorf("QuotaMode = %d with quotas on", u.QuotaMode)
	}
	if u.SubvolumeID < 256 {
		t.Errorf("SubvolumeID = %d", u.SubvolumeID)
	}
	writeFile(t, filepath.Join(get(t, h, "sized"), "f"), strings.Repeat("x", 1<<20))
	u, err = h.Usage("sized", UsageSync)
	if err != nil {
		t.Fatal(err)
	}
	if u.Referenced < 1<<20 || u.Exclusive < 1<<20 {
		t.Errorf("Usage after writing 1 MiB: %+v", u)
	}
	if err := h.SetQuota("sized", 128<<20); err != nil {
		t.Fatal(err)
	}
	if u, _ = h.Usage("sized", 0); u.Limit != 128<<20 || u.RecordedLimit != 128<<20 {
		t.Errorf("Usage after SetQuota(128M): %+v", u)
	}
	if err := h.ClearQuota("sized"); err != nil {
		t.Fatal(err)
	}
	if u, _ = h.Usage("sized", 0); u.Limit != 0 || u.RecordedLimit != 0 {
		t.Errorf("Usage after ClearQuota: %+v", u)
	}
	err = h.SetQuota("sized", 0)
	wantErr(t, "SetQuota(0)", err, syscall.EINVAL, "size 0")
	err = h.SetQuota("sized", 4096)
	wantErr(t, "SetQuota below min_space", err, syscall.EINVAL, "min_space")
	err = h.SetQuota("sized", ^uint64(0))
	wantErr(t, "SetQuota(2^64-1)", err, syscall.ERANGE, "18446744073709551615")
	_, err = h.Usage("sized", 1<<30)
	wantErr(t, "Usage with an unknown flag", err, syscall.EINVAL, "sized")
}

// Quotas off: Usage says ErrNoQuota; with UsageWalk it walks instead.
func TestUsageQuotasOff(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "plain", "", 0)
	writeFile(t, filepath.Join(get(t, h, "plain"), "f"), strings.Repeat("x", 1<<16))
	if out, err := exec.Command("btrfs", "quota", "disable", btrfsMnt).CombinedOutput(); err != nil {
		t.Fatalf("btrfs quota disable: %v %s", err, out)
	}
	_, err := h.Usage("plain", 0)
	wantErr(t, "Usage with quotas off", err, ENOQUOTA, "quotas are off", ErrNoQuota)

	u, err := h.Usage("plain", UsageWalk|UsageSync)
	if errors.Is(err, ErrNoQuota) {
		cannot(t, "the loaded library refuses USAGE_WALK with quotas off: not implemented ("+err.Error()+")")
	}
	if err != nil {
		t.Fatalf("Usage(UsageWalk) with quotas off: %v", err)
	}
	if u.WalkInodes == 0 {
		cannot(t, "the loaded library fills no walk_inodes: USAGE_WALK not implemented")
	}
	if u.WalkInodes != 2 || u.WalkBytes < 1<<16 || u.QuotaMode != QuotaOff || u.Referenced != 0 {
		t.Errorf("Usage(UsageWalk) of a root and one 64 KiB file, quotas off: %+v", u)
	}
}

func TestClose(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "a", "", 0)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	calls := map[string]error{}
	calls["Create"] = h.Create("b", "", 0, "", nil)
	calls["Remove"] = h.Remove("a")
	_, calls["Get"] = h.Get("a", "")
	_, calls["Exists"] = h.Exists("a")
	_, calls["Layers"] = h.Layers()
	_, calls["Status"] = h.Status()
	_, calls["Usage"] = h.Usage("a", 0)
	_, calls["LayerInfo"] = h.LayerInfo("a")
	_, calls["Changes"] = h.Changes("a", "", 0)
	for name, err := range calls {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s after Close: %v, want fs.ErrClosed", name, err)
		}
	}
}

// Close while calls run: each call either works or says fs.ErrClosed, and
// Close waits for the running ones (the race detector watches).
func TestCloseWhileBusy(t *testing.T) {
	home := newHome(t)
	h, err := Open(home, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	create(t, h, "a", "", 0)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := h.Exists("a"); err != nil && !errors.Is(err, fs.ErrClosed) {
					t.Errorf("Exists during Close: %v", err)
				}
				if _, err := h.Layers(); err != nil && !errors.Is(err, fs.ErrClosed) {
					t.Errorf("Layers during Close: %v", err)
				}
			}
		}()
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	if err := h.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}

func TestLogger(t *testing.T) {
	home := newHome(t)
	var mu sync.Mutex
	var logs []string
	SetLogger(func(level int, msg string) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, msg)
	})
	defer SetLogger(nil)
	h, err := Open(home, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// an open file under home keeps the library's bind mount busy: close
	// leaves it and says so through the logger
	f, err := os.Open(filepath.Join(home, "subvolumes"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	SetLogger(nil)
	mu.Lock()
	got := strings.Join(logs, "\n")
	mu.Unlock()
	if !strings.Contains(got, "close: "+home) || !strings.Contains(got, "in use") {
		t.Errorf("logs %q do not tell of the busy mount", got)
	}
	// the next open adopts the mount, its close takes it down
	open(t, home)
}

// The README shows example/main.go as it is.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("example", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	code := example[bytes.Index(example, []byte("package main")):]
	if !bytes.Contains(readme, append([]byte("```go\n"), code...)) {
		t.Error("README.md's Go example is not example/main.go")
	}
}
