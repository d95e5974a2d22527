// SPDX-License-Identifier: LGPL-2.1-or-later

package snapshotter_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests need a btrfs of their own: TestMain makes one on a loop device,
// points TMPDIR at it (containerd's suite makes its directories there) and
// tears it down whatever the outcome.  Without root or tools they skip and
// say why, except with CI=true, where they fail.
var testBtrfs string

func TestMain(m *testing.M) {
	mnt, teardown, reason := makeBtrfs()
	if reason != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: cannot run (CI=true): %s\n", reason)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "SKIP: %s\n", reason)
		os.Exit(0)
	}
	testBtrfs = mnt
	os.Setenv("TMPDIR", mnt)
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func makeBtrfs() (string, func() error, string) {
	if os.Geteuid() != 0 {
		return "", nil, "needs root to mount a loopback btrfs"
	}
	for _, tool := range []string{"mkfs.btrfs", "mount", "umount", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", nil, tool + " not found (apt-get install btrfs-progs)"
		}
	}
	dir, err := os.MkdirTemp("/var/tmp", "btrfslayer-snapshotter-test-")
	if err != nil {
		return "", nil, err.Error()
	}
	img := filepath.Join(dir, "disk.img")
	mnt := filepath.Join(dir, "mnt")
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	teardown := func() error {
		var first error
		// the daemons' own home mounts, then ours
		if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET", "-R", mnt).Output(); err == nil {
			targets := strings.Fields(string(out))
			for i := len(targets) - 1; i >= 0; i-- {
				if err := run("umount", targets[i]); err != nil && first == nil {
					first = err
				}
			}
		}
		if err := os.RemoveAll(dir); err != nil && first == nil {
			first = err
		}
		return first
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return "", nil, err.Error()
	}
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(4 << 30)
		f.Close()
	}
	if err == nil {
		err = run("mkfs.btrfs", "-q", img)
	}
	if err == nil {
		err = run("mount", "-o", "loop", img, mnt)
	}
	if err != nil {
		teardown()
		return "", nil, err.Error()
	}
	return mnt, teardown, ""
}

// daemonBinary is the daemon under test: $BTRFSLAYER_SNAPSHOTTER_BIN, or one
// built now from this source tree.
func daemonBinary(t *testing.T) string {
	if bin := os.Getenv("BTRFSLAYER_SNAPSHOTTER_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "btrfslayer-snapshotter")
	out, err := exec.Command("go", "build", "-o", bin,
		"libbtrfslayer.org/snapshotter/cmd/btrfslayer-snapshotter").CombinedOutput()
	if err != nil {
		t.Fatalf("build the daemon: %v: %s", err, out)
	}
	return bin
}
