// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

// The tests' filesystem: a loopback btrfs (and a tmpfs, for "not btrfs")
// made by TestMain under /var/tmp/btrfslayer-test.*, the layout of the C
// tests' harness, so tests/sweep-mounts.sh also cleans up after a test
// binary killed too hard to tear down.  Without root (or mkfs.btrfs, or
// loop devices) every test skips saying why; with CI=true it fails instead.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

const imageSize = 1 << 30 // room for 64 goroutines' layers

var (
	testDir, btrfsMnt, tmpfsMnt string
	unavailable                 string // why the filesystem could not be made
	homes                       atomic.Int64
	teardownOnce                sync.Once
)

func TestMain(m *testing.M) {
	code := 1
	func() {
		defer teardown()
		if err := setup(); err != nil {
			unavailable = err.Error()
		}
		code = m.Run()
	}()
	os.Exit(code)
}

func setup() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (mount, loop devices)")
	}
	dir, err := os.MkdirTemp("/var/tmp", "btrfslayer-test.")
	if err != nil {
		return fmt.Errorf("cannot make a directory under /var/tmp: %v", err)
	}
	testDir = dir
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		teardown()
		os.Exit(1)
	}()
	btrfsMnt = filepath.Join(dir, "btrfs")
	tmpfsMnt = filepath.Join(dir, "tmpfs")
	for _, d := range []string{btrfsMnt, tmpfsMnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	image := filepath.Join(dir, "fs.img")
	f, err := os.Create(image)
	if err == nil {
		err = f.Truncate(imageSize)
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("cannot make a sparse image under /var/tmp: %v", err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", "-f", image).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.btrfs failed or is missing (install btrfs-progs): %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "btrfs", "-o", "loop", image, btrfsMnt).CombinedOutput(); err != nil {
		btrfsMnt = ""
		return fmt.Errorf("cannot mount a loopback btrfs: %v %s", err, out)
	}
	if err := syscall.Mount("tmpfs", tmpfsMnt, "tmpfs", 0, "size=1m"); err != nil {
		tmpfsMnt = ""
		return fmt.Errorf("cannot mount a tmpfs: %v", err)
	}
	return nil
}

func teardown() {
	teardownOnce.Do(func() {
		if testDir == "" {
			return
		}
		for _, mnt := range []string{btrfsMnt, tmpfsMnt} {
			if mnt == "" {
				continue
			}
			// -R: homes may still carry the library's bind mount;
			// a busy one still goes, lazily
			if exec.Command("umount", "-R", mnt).Run() != nil {
				if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
					fmt.Fprintf(os.Stderr, "teardown: umount %s: %v\n", mnt, err)
				}
			}
		}
		image := filepath.Join(testDir, "fs.img")
		if out, err := exec.Command("losetup", "-j", image, "-O", "NAME", "-n").Output(); err == nil {
			for _, dev := range strings.Fields(string(out)) {
				_ = exec.Command("losetup", "-d", dev).Run()
			}
		}
		for _, p := range []string{image, filepath.Join(testDir, "pid"),
			filepath.Join(testDir, "btrfs"), filepath.Join(testDir, "tmpfs"), testDir} {
			_ = os.Remove(p)
		}
	})
}

// cannot ends a test that cannot run: a skip, or a failure in CI.
func cannot(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run: %s (CI=true: no skipping)", why)
	}
	t.Skipf("cannot run: %s", why)
}

// need skips (or fails, in CI) a test without the test filesystem.
func need(t testing.TB) {
	t.Helper()
	if unavailable != "" {
		cannot(t, unavailable)
	}
}

// need10 ends a test of a 1.0 call the loaded library lacks (ENOSYS from
// the binding): a skip outside CI, where the call may not be merged yet.
func need10(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, syscall.ENOSYS) {
		cannot(t, err.Error())
	}
}

// newHome returns a fresh home path on the test filesystem.
func newHome(t testing.TB) string {
	t.Helper()
	need(t)
	return filepath.Join(btrfsMnt, fmt.Sprintf("home%d", homes.Add(1)))
}

// open opens home, closed at the end of the test.
func open(t testing.TB, home string, options ...string) *Handle {
	t.Helper()
	h, err := Open(home, options, nil, nil)
	if err != nil {
		t.Fatalf("Open(%s, %q): %v", home, options, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// openNew opens a fresh home.
func openNew(t testing.TB, options ...string) (*Handle, string) {
	t.Helper()
	home := newHome(t)
	return open(t, home, options...), home
}

func create(t testing.TB, h *Handle, id, parent string, flags CreateFlags, opts ...string) {
	t.Helper()
	if err := h.Create(id, parent, flags, "", opts); err != nil {
		t.Fatalf("Create(%s, %q): %v", id, parent, err)
	}
}

func get(t testing.TB, h *Handle, id string) string {
	t.Helper()
	p, err := h.Get(id, "")
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return p
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err is an *Error with code want, matching every
// target, with a message that says what it is about.
func wantErr(t testing.TB, what string, err error, want syscall.Errno, mention string, targets ...error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: got %v (%T), want an *Error with %v", what, err, err, want)
	}
	if e.Code != want {
		t.Errorf("%s: code %d (%v), want %d (%v): %s", what, int(e.Code), e.Code, int(want), want, e)
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: errors.Is(err, %v) is false", what, want)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: errors.Is(%q, %v) is false", what, err, target)
		}
	}
	if mention != "" && !strings.Contains(e.Message, mention) {
		t.Errorf("%s: message %q does not mention %q", what, e.Message, mention)
	}
}
