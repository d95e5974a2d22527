// SPDX-License-Identifier: LGPL-2.1-or-later

// snapshotter-bench measures this snapshotter beside containerd's built-in
// btrfs snapshotter, in one run, on one btrfs (DIR must be on btrfs):
//
//	snapshotter-bench [-files 10000] [-rounds 5] [-quota-mode simple -size 10G] DIR
//
// Per round and per snapshotter: prepare an empty active snapshot, fill it
// with N files, commit it, prepare a child of it, ask the child's usage and
// the committed parent's, remove the child and the parent.  The rounds of
// the two snapshotters interleave; the table shows medians and min-max.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/btrfs"

	"libbtrfslayer.org/snapshotter"
)

var ops = []string{"prepare (empty)", "commit (N files)", "prepare (child of N files)",
	"usage (active child)", "remove (child)", "remove (N files)"}

func main() {
	files := flag.Int("files", 10000, "files in the committed layer")
	rounds := flag.Int("rounds", 5, "rounds per snapshotter")
	quotaMode := flag.String("quota-mode", "", "this snapshotter's quota mode (qgroup or simple); with -size, quotas are on")
	size := flag.String("size", "", "this snapshotter's default size limit of writable snapshots")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: snapshotter-bench [-files N] [-rounds R] DIR")
		os.Exit(2)
	}
	cfg := snapshotter.Config{Root: filepath.Join(flag.Arg(0), "btrfslayer"),
		QuotaMode: *quotaMode, DefaultSize: *size}
	if err := run(cfg, flag.Arg(0), *files, *rounds); err != nil {
		fmt.Fprintf(os.Stderr, "snapshotter-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg snapshotter.Config, dir string, files, rounds int) error {
	ctx := namespaces.WithNamespace(context.Background(), "bench")
	ours, err := snapshotter.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer ours.Close()
	theirs, err := btrfs.NewSnapshotter(filepath.Join(dir, "containerd-btrfs"))
	if err != nil {
		return err
	}
	defer theirs.Close()
	subjects := []struct {
		name string
		sn   snapshots.Snapshotter
	}{{"btrfslayer", ours}, {"containerd btrfs", theirs}}
	times := map[string]map[string][]time.Duration{}
	for _, s := range subjects {
		times[s.name] = map[string][]time.Duration{}
	}
	for r := 0; r < rounds; r++ {
		for _, s := range subjects {
			if err := round(ctx, s.sn, fmt.Sprintf("r%d", r), dir, files, times[s.name]); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	fmt.Printf("N = %d files, %d rounds, medians (min-max); btrfslayer quota mode %q, default size %q\n\n",
		files, rounds, cfg.QuotaMode, cfg.DefaultSize)
	fmt.Printf("| op | btrfslayer | containerd btrfs | ratio |\n|---|---|---|---|\n")
	for _, op := range ops {
		a, b := times["btrfslayer"][op], times["containerd btrfs"][op]
		fmt.Printf("| %s | %s | %s | %.2g× |\n", op, span(a), span(b),
			float64(median(a))/float64(median(b)))
	}
	return nil
}

func round(ctx context.Context, sn snapshots.Snapshotter, tag, dir string, files int, t map[string][]time.Duration) error {
	timed := func(op string, fn func() error) error {
		start := time.Now()
		err := fn()
		t[op] = append(t[op], time.Since(start))
		return err
	}
	var mounts []mount.Mount
	if err := timed(ops[0], func() (err error) {
		mounts, err = sn.Prepare(ctx, tag+"-active", "")
		return err
	}); err != nil {
		return err
	}
	if err := fill(mounts, dir, files); err != nil {
		return err
	}
	if err := timed(ops[1], func() error { return sn.Commit(ctx, tag+"-committed", tag+"-active") }); err != nil {
		return err
	}
	if err := timed(ops[2], func() error {
		_, err := sn.Prepare(ctx, tag+"-child", tag+"-committed")
		return err
	}); err != nil {
		return err
	}
	if err := timed(ops[3], func() error {
		_, err := sn.Usage(ctx, tag+"-child")
		return err
	}); err != nil {
		return err
	}
	if err := timed(ops[4], func() error { return sn.Remove(ctx, tag+"-child") }); err != nil {
		return err
	}
	return timed(ops[5], func() error { return sn.Remove(ctx, tag+"-committed") })
}

// fill mounts the active snapshot and writes files small files into it.
func fill(mounts []mount.Mount, dir string, files int) error {
	target, err := os.MkdirTemp(dir, "mnt-")
	if err != nil {
		return err
	}
	defer os.Remove(target)
	if err := mount.All(mounts, target); err != nil {
		return err
	}
	defer mount.UnmountAll(target, 0)
	for i := 0; i < files; i++ {
		sub := filepath.Join(target, fmt.Sprintf("d%03d", i%100))
		if i < 100 {
			if err := os.Mkdir(sub, 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", i)), []byte(strings.Repeat("x", 100)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func span(d []time.Duration) string {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("%s (%s-%s)", round3(median(d)), round3(s[0]), round3(s[len(s)-1]))
}

func round3(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
}
