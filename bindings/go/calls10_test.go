// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

// The 1.0 calls: layer info, seal, fds, idmapped mounts, changes, diff size,
// export and apply.  Against a library that lacks one, its tests skip
// (need10), or fail under CI=true.

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rootID is btrfs's own idea of the subvolume at path.
func rootID(t *testing.T, path string) uint64 {
	t.Helper()
	out, err := exec.Command("btrfs", "inspect-internal", "rootid", path).Output()
	if err != nil {
		t.Fatalf("btrfs inspect-internal rootid %s: %v", path, err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLayerInfo(t *testing.T) {
	h, _ := openNew(t)
	before := time.Now()
	create(t, h, "base", "", 0)
	create(t, h, "image", "base", CreateReadOnly)
	after := time.Now()
	base := get(t, h, "base")

	info, err := h.LayerInfo("base")
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if info.SubvolumeID != rootID(t, base) || info.Generation == 0 || info.ReadOnly ||
		info.HasNested || info.Parent != "" {
		t.Errorf("LayerInfo(base) = %+v (subvolume %d)", info, rootID(t, base))
	}
	// otime has the filesystem's clock: seconds around the creates
	if info.Created.Before(before.Add(-time.Second)) || info.Created.After(after.Add(time.Second)) {
		t.Errorf("LayerInfo(base).Created = %v, not between %v and %v", info.Created, before, after)
	}
	info, err = h.LayerInfo("image")
	if err != nil || !info.ReadOnly || info.Parent != "base" || info.SubvolumeID != rootID(t, get(t, h, "image")) {
		t.Errorf("LayerInfo(image) = %+v, %v; want read-only, parent base", info, err)
	}
	if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(base, "nested")).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v %s", err, out)
	}
	if info, err = h.LayerInfo("base"); err != nil || !info.HasNested {
		t.Errorf("LayerInfo(base) with a nested subvolume = %+v, %v", info, err)
	}
	_, err = h.LayerInfo("missing")
	wantErr(t, "LayerInfo of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
	_, err = h.LayerInfo("bad/id")
	wantErr(t, "LayerInfo with a bad id", err, syscall.EINVAL, "bad/id")
}

func TestSetReadOnly(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "base", "", 0)
	base := get(t, h, "base")
	nested := filepath.Join(base, "nested")
	if out, err := exec.Command("btrfs", "subvolume", "create", nested).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v %s", err, out)
	}
	err := h.SetReadOnly("base", true)
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{base, nested} {
		if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("writing in %s of a sealed layer: %v, want EROFS", dir, err)
		}
	}
	if info, _ := h.LayerInfo("base"); !info.ReadOnly {
		t.Errorf("LayerInfo after SetReadOnly(true) = %+v", info)
	}
	if err := h.SetReadOnly("base", true); err != nil {
		t.Errorf("sealing a sealed layer: %v", err)
	}
	if err := h.SetReadOnly("base", false); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{base, nested} {
		writeFile(t, filepath.Join(dir, "f"), "writable again")
	}
	err = h.SetReadOnly("missing", true)
	wantErr(t, "SetReadOnly of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
}

func TestOpenLayer(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "base", "", 0)
	writeFile(t, filepath.Join(get(t, h, "base"), "file"), "data")
	f, err := h.OpenLayer("base", 0)
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if names, err := f.Readdirnames(-1); err != nil || !reflect.DeepEqual(names, []string{"file"}) {
		t.Errorf("names in the layer's fd: %q, %v", names, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Ino != 256 {
		t.Errorf("the fd is not a subvolume's root (inode %d, %v)", st.Ino, err)
	}

	p, err := h.OpenLayer("base", FDPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Readdirnames(-1); !errors.Is(err, syscall.EBADF) {
		t.Errorf("reading an O_PATH fd: %v, want EBADF", err)
	}
	fd, err := syscall.Openat(int(p.Fd()), "file", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Errorf("openat relative to the O_PATH fd: %v", err)
	} else {
		syscall.Close(fd)
	}

	_, err = h.OpenLayer("base", 1<<7)
	wantErr(t, "OpenLayer with an unknown flag", err, syscall.EINVAL, "")
	_, err = h.OpenLayer("missing", 0)
	wantErr(t, "OpenLayer of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
}

func TestMountIdmapped(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "base", "", 0)
	writeFile(t, filepath.Join(get(t, h, "base"), "file"), "data") // owned by 0:0
	idmap := []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}

	m, err := h.MountIdmapped("base", idmap, idmap, 0)
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(testDir, "idmapped")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(target)
	err = AttachMount(m, target)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(target, syscall.MNT_DETACH)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(target, "file"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("through the idmapped mount, a file of 0:0 is %d:%d, want 100000:100000", st.Uid, st.Gid)
	}
	if b, err := os.ReadFile(filepath.Join(target, "file")); err != nil || string(b) != "data" {
		t.Errorf("through the idmapped mount: %q, %v", b, err)
	}
	if err := syscall.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}

	m, err = h.MountIdmapped("base", idmap, idmap, MountReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	err = AttachMount(m, target)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing through a read-only idmapped mount: %v, want EROFS", err)
	}
	if err := syscall.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}

	_, err = h.MountIdmapped("base", []IDMap{{ContainerID: 1, HostID: 100000, Size: 10}}, idmap, 0)
	wantErr(t, "MountIdmapped with a map missing root", err, syscall.EINVAL, "uid map")
	_, err = h.MountIdmapped("base", idmap, idmap, 1<<5)
	wantErr(t, "MountIdmapped with an unknown flag", err, syscall.EINVAL, "flags")
	_, err = h.MountIdmapped("missing", idmap, idmap, 0)
	wantErr(t, "MountIdmapped of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)

	f, err := os.Open(testDir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = AttachMount(f, filepath.Join(testDir, "no-such-dir"))
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.EINVAL) {
		t.Errorf("AttachMount of a plain directory fd on a missing target: %v", err)
	}
}

// changedPair makes base (a, b, d/x) and child from it (a modified, b
// deleted, c and d/y added) and returns the changes a user expects.
func changedPair(t *testing.T, h *Handle) []Change {
	t.Helper()
	create(t, h, "base", "", 0)
	base := get(t, h, "base")
	writeFile(t, filepath.Join(base, "a"), "a1")
	writeFile(t, filepath.Join(base, "b"), "b1")
	if err := os.Mkdir(filepath.Join(base, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(base, "d", "x"), "x1")
	create(t, h, "child", "base", 0)
	child := get(t, h, "child")
	writeFile(t, filepath.Join(child, "a"), "a2, longer")
	if err := os.Remove(filepath.Join(child, "b")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(child, "c"), strings.Repeat("c", 100000))
	writeFile(t, filepath.Join(child, "d", "y"), "y1")
	return []Change{{ChangeModified, "/a"}, {ChangeDeleted, "/b"}, {ChangeAdded, "/c"},
		{ChangeAdded, "/d/y"}}
}

// sameChanges checks got against want, in path order; a directory whose
// content changed (/d) may also be listed as modified.
func sameChanges(t *testing.T, what string, got, want []Change) {
	t.Helper()
	var files []Change
	for i, c := range got {
		if i > 0 && got[i-1].Path >= c.Path {
			t.Errorf("%s: not in path order: %v", what, got)
		}
		if c == (Change{ChangeModified, "/d"}) {
			continue
		}
		files = append(files, c)
	}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestChanges(t *testing.T) {
	h, _ := openNew(t)
	want := changedPair(t, h)
	got, err := h.Changes("child", "base", 0)
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	sameChanges(t, "Changes(child, base)", got, want)
	got, err = h.Changes("child", "base", ChangesWalk)
	if err != nil {
		t.Fatal(err)
	}
	sameChanges(t, "Changes(child, base, ChangesWalk)", got, want)
	if got, err = h.Changes("child", "child", 0); err != nil || len(got) != 0 {
		t.Errorf("Changes(child, child) = %v, %v; want none", got, err)
	}

	_, err = h.Changes("child", "missing", 0)
	wantErr(t, "Changes from a missing parent", err, syscall.ENOENT, "missing", fs.ErrNotExist)
	_, err = h.Changes("missing", "base", 0)
	wantErr(t, "Changes of a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
	_, err = h.Changes("child", "base", 1<<9)
	wantErr(t, "Changes with an unknown flag", err, syscall.EINVAL, "")
}

func TestDiffSize(t *testing.T) {
	h, _ := openNew(t)
	changedPair(t, h)
	size, err := h.DiffSize("child", "base")
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	// at least the added and modified files' bytes
	if min := uint64(100000 + len("a2, longer") + len("y1")); size < min {
		t.Errorf("DiffSize(child, base) = %d, want at least %d", size, min)
	}
	_, err = h.DiffSize("child", "missing")
	wantErr(t, "DiffSize from a missing parent", err, syscall.ENOENT, "missing", fs.ErrNotExist)
}

// progressLog records progress calls and checks that done never goes back.
type progressLog struct {
	t     *testing.T
	calls int
	done  uint64
}

func (p *progressLog) fn(done, total uint64) {
	if done < p.done || (total != 0 && done > total) {
		p.t.Errorf("progress went from %d to %d (total %d)", p.done, done, total)
	}
	p.calls++
	p.done = done
}

// tarOf is an OCI layer tar: entries name -> content ("/" suffix: a
// directory).
func tarOf(t *testing.T, entries [][2]string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(testDir, "layer-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
	tw := tar.NewWriter(f)
	for _, e := range entries {
		hdr := &tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg,
			ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(e[0], "/") {
			hdr.Mode, hdr.Size, hdr.Typeflag = 0o755, 0, tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestApply(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "base", "", 0)
	base := get(t, h, "base")
	writeFile(t, filepath.Join(base, "gone"), "to be whited out")
	writeFile(t, filepath.Join(base, "kept"), "kept")
	create(t, h, "layer", "base", 0)
	big := strings.Repeat("z", 3<<20)
	f := tarOf(t, [][2]string{{"dir/", ""}, {"dir/file", "hello"}, {"big", big}, {".wh.gone", ""}})
	p := &progressLog{t: t}
	unpacked, err := h.Apply("layer", f, p.fn)
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if unpacked < uint64(len(big)+len("hello")) {
		t.Errorf("Apply unpacked %d bytes, want at least %d", unpacked, len(big)+len("hello"))
	}
	if p.calls == 0 {
		t.Errorf("Apply of a 3 MiB tar never called progress")
	}
	layer := get(t, h, "layer")
	for name, want := range map[string]string{"dir/file": "hello", "big": big, "kept": "kept"} {
		if b, err := os.ReadFile(filepath.Join(layer, name)); err != nil || string(b) != want {
			t.Errorf("%s after Apply: %d bytes, %v", name, len(b), err)
		}
	}
	if _, err := os.Lstat(filepath.Join(layer, "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("whited-out file after Apply: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "gone")); err != nil {
		t.Errorf("the parent's file after Apply to the child: %v", err)
	}

	f = tarOf(t, [][2]string{{"../escape", "x"}})
	_, err = h.Apply("layer", f, nil)
	wantErr(t, "Apply of a tar with ..", err, syscall.EINVAL, "../escape")
	if _, err := os.Lstat(filepath.Join(filepath.Dir(layer), "escape")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused entry was made outside the layer: %v", err)
	}
	create(t, h, "sealed", "base", CreateReadOnly)
	_, err = h.Apply("sealed", tarOf(t, [][2]string{{"f", "x"}}), nil)
	wantErr(t, "Apply to a read-only layer", err, syscall.EROFS, "sealed")
	_, err = h.Apply("missing", tarOf(t, [][2]string{{"f", "x"}}), nil)
	wantErr(t, "Apply to a missing layer", err, syscall.ENOENT, "missing", fs.ErrNotExist)
}

// A panic in a progress function cancels the call and reaches the caller
// of Apply after the library has returned (it never unwinds through C).
func TestProgressPanic(t *testing.T) {
	h, _ := openNew(t)
	create(t, h, "layer", "", 0)
	f := tarOf(t, [][2]string{{"big", strings.Repeat("z", 3<<20)}})
	var recovered interface{}
	var err error
	func() {
		defer func() { recovered = recover() }()
		_, err = h.Apply("layer", f, func(done, total uint64) { panic("progress panic") })
	}()
	if recovered == nil {
		need10(t, err)
		t.Fatalf("Apply with a panicking progress returned %v without the panic", err)
	}
	if recovered != "progress panic" {
		t.Errorf("recovered %v", recovered)
	}
	// the panic stopped the call (ECANCELED) before the end of the data:
	// apply leaves what it wrote in the layer, for the caller to remove
	if fi, err := os.Lstat(filepath.Join(get(t, h, "layer"), "big")); err == nil && fi.Size() >= 3<<20 {
		t.Errorf("a cancelled Apply went on to write all of big (%d bytes)", fi.Size())
	}
	// the handle still works: the library was not left mid-call
	if _, err := h.Layers(); err != nil {
		t.Error(err)
	}
}

func TestExport(t *testing.T) {
	h, _ := openNew(t)
	want := changedPair(t, h)
	out, err := os.CreateTemp(testDir, "export-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	p := &progressLog{t: t}
	err = h.Export("child", "base", out, p.fn)
	need10(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	entries := map[string][]byte{}
	tr := tar.NewReader(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the export is not a tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		entries[strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")] = b
	}
	for name, want := range map[string]string{"a": "a2, longer", "c": strings.Repeat("c", 100000),
		"d/y": "y1", ".wh.b": ""} {
		if b, ok := entries[name]; !ok || !bytes.Equal(b, []byte(want)) {
			t.Errorf("export entry %s: %d bytes, present %v", name, len(b), ok)
		}
	}
	if _, ok := entries["d/x"]; ok {
		t.Errorf("export holds the unchanged d/x")
	}

	// the export applied to another snapshot of base makes the same tree
	create(t, h, "copy", "base", 0)
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply("copy", out, nil); err != nil {
		t.Fatal(err)
	}
	got, err := h.Changes("copy", "base", 0)
	if err != nil {
		t.Fatal(err)
	}
	sameChanges(t, "Changes(copy, base) after applying the export", got, want)
	if b, err := os.ReadFile(filepath.Join(get(t, h, "copy"), "c")); err != nil || len(b) != 100000 {
		t.Errorf("copy/c: %d bytes, %v", len(b), err)
	}

	err = h.Export("child", "missing", out, nil)
	wantErr(t, "Export from a missing parent", err, syscall.ENOENT, "missing", fs.ErrNotExist)
}
