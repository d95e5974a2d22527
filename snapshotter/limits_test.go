// SPDX-License-Identifier: LGPL-2.1-or-later

package snapshotter_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
)

// startWithConfig starts a daemon whose config file holds cfg.
func startWithConfig(t *testing.T, cfg string) snapshots.Snapshotter {
	t.Helper()
	root, err := os.MkdirTemp(testBtrfs, "limits-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfgFile := filepath.Join(root, "config.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sn, stop, err := startDaemon(daemonBinary(t), root, "--config", cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sn.Close()
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return sn
}

// writeInto mounts the snapshot's mounts and writes size bytes into a file.
func writeInto(t *testing.T, mounts []mount.Mount, size int) error {
	t.Helper()
	target := t.TempDir()
	if err := mount.All(mounts, target); err != nil {
		t.Fatal(err)
	}
	defer mount.UnmountAll(target, 0)
	f, err := os.Create(filepath.Join(target, "data"))
	if err != nil {
		return err
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for written := 0; written < size; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestSizeLimits(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "limits")
	sn := startWithConfig(t, "quota_mode = \"simple\"\ndefault_size = \"48M\"\n")

	// the label wins over the default
	mounts, err := sn.Prepare(ctx, "labelled", "", snapshots.WithLabels(map[string]string{
		"containerd.io/snapshot/max-size": "16M"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeInto(t, mounts, 32<<20); !errors.Is(err, syscall.EDQUOT) {
		t.Fatalf("32 MiB into a snapshot labelled max-size=16M: %v, want EDQUOT", err)
	}
	// the default applies without a label
	mounts, err = sn.Prepare(ctx, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeInto(t, mounts, 32<<20); err != nil {
		t.Fatalf("32 MiB under the 48M default: %v", err)
	}
	if err := writeInto(t, mounts, 64<<20); !errors.Is(err, syscall.EDQUOT) {
		t.Fatalf("64 MiB under the 48M default: %v, want EDQUOT", err)
	}
	// usage comes from the quota tree: what the snapshot wrote
	if err := sn.Commit(ctx, "default-committed", "default"); err != nil {
		t.Fatal(err)
	}
	usage, err := sn.Usage(ctx, "default-committed")
	if err != nil {
		t.Fatal(err)
	}
	if usage.Size < 32<<20 || usage.Size > 80<<20 {
		t.Fatalf("usage of a snapshot holding 32-64 MiB: %d bytes", usage.Size)
	}
	// a malformed label is refused, and nothing is left of the snapshot
	_, err = sn.Prepare(ctx, "bad", "", snapshots.WithLabels(map[string]string{
		"containerd.io/snapshot/max-size": "lots"}))
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("max-size=lots: %v, want an invalid-argument error", err)
	}
	if _, err := sn.Stat(ctx, "bad"); !errdefs.IsNotFound(err) {
		t.Fatalf("after a refused prepare, stat says %v, want not found", err)
	}
}

func TestIDMappedMounts(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "idmap")
	sn := startWithConfig(t, "")
	mounts, err := sn.Prepare(ctx, "mapped", "", snapshots.WithLabels(map[string]string{
		"containerd.io/snapshot/uidmapping": "0:100000:65536",
		"containerd.io/snapshot/gidmapping": "0:200000:65536"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Type != "bind" {
		t.Fatalf("mounts %+v, want one bind mount", mounts)
	}
	opts := strings.Join(mounts[0].Options, ",")
	for _, want := range []string{"uidmap=0:100000:65536", "gidmap=0:200000:65536"} {
		if !strings.Contains(opts, want) {
			t.Fatalf("options %q lack %q", opts, want)
		}
	}
}
