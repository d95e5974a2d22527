// SPDX-License-Identifier: LGPL-2.1-or-later

// Package snapshotter is a containerd snapshotter over libbtrfslayer.
//
// Keys, names, parents, kinds and labels live in containerd's own metadata
// store (snapshots/storage, a bolt file at ROOT/metadata.db); each snapshot's
// data is the library's layer whose id is the snapshot's numeric storage id,
// under the library's home ROOT/home.  Active snapshots are writable layers,
// committed snapshots are the same layers sealed in place (read-only), views
// are read-only snapshots of their parent.
//
// Crash safety: a layer is created before the metadata transaction that names
// it commits, and a snapshot's metadata is deleted (committed) before its
// layer is removed.  So after a crash the only leftovers are layers that no
// metadata names; Cleanup (run at start and when containerd asks) removes
// them.  The library itself leaves no half-made layer behind.
package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/storage"

	"libbtrfslayer.org/go/btrfslayer"
)

// Labels this snapshotter reads.
const (
	// LabelMaxSize limits a snapshot's size (bytes, or a size like "10G").
	LabelMaxSize = "containerd.io/snapshot/max-size"
	// LabelUIDMapping and LabelGIDMapping ask for an idmapped layer:
	// "containerID:hostID:size" (snapshots.WithRemapperLabels).
	LabelUIDMapping = "containerd.io/snapshot/uidmapping"
	LabelGIDMapping = "containerd.io/snapshot/gidmapping"
)

// Config is what the daemon is started with.
type Config struct {
	// Root holds the metadata store and the library's home.
	Root string `toml:"root"`
	// DefaultSize limits every new writable snapshot that carries no
	// LabelMaxSize ("" or "0": no limit).
	DefaultSize string `toml:"default_size"`
	// QuotaMode is the library's btrfs.quota_mode ("qgroup" or "simple";
	// "" leaves the filesystem's mode alone).
	QuotaMode string `toml:"quota_mode"`
	// MountHome is the library's btrfs.mount_home (default true).
	MountHome *bool `toml:"mount_home"`
	// KeepLeftovers skips the removal of layers no snapshot names at
	// start (for Check, which must see them).
	KeepLeftovers bool `toml:"-"`
}

// Snapshotter implements snapshots.Snapshotter and snapshots.Cleaner.
type Snapshotter struct {
	root        string
	ms          *storage.MetaStore
	h           *btrfslayer.Handle
	defaultSize uint64
	closeOnce   sync.Once
	closeErr    error
}

var (
	_ snapshots.Snapshotter = (*Snapshotter)(nil)
	_ snapshots.Cleaner     = (*Snapshotter)(nil)
)

// New opens (making if needed) a snapshotter at cfg.Root, then removes the
// layers a crash left without metadata.
func New(ctx context.Context, cfg Config) (*Snapshotter, error) {
	if cfg.Root == "" {
		return nil, errors.New("snapshotter: no root directory given")
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("snapshotter: make root: %w", err)
	}
	var defaultSize uint64
	if cfg.DefaultSize != "" && cfg.DefaultSize != "0" {
		size, err := btrfslayer.ParseSize(cfg.DefaultSize)
		if err != nil {
			return nil, fmt.Errorf("snapshotter: default size %q: %w", cfg.DefaultSize, err)
		}
		defaultSize = size
	}
	var options []string
	if cfg.QuotaMode != "" {
		options = append(options, "btrfs.quota_mode="+cfg.QuotaMode)
	}
	if cfg.MountHome != nil {
		options = append(options, "btrfs.mount_home="+strconv.FormatBool(*cfg.MountHome))
	}
	h, err := btrfslayer.Open(filepath.Join(cfg.Root, "home"), options, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshotter: open layer store: %w", err)
	}
	ms, err := storage.NewMetaStore(filepath.Join(cfg.Root, "metadata.db"))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("snapshotter: open metadata: %w", err)
	}
	s := &Snapshotter{root: cfg.Root, ms: ms, h: h, defaultSize: defaultSize}
	if cfg.KeepLeftovers {
		return s, nil
	}
	if err := s.Cleanup(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("snapshotter: remove leftovers of a crash: %w", err)
	}
	return s, nil
}

// Stat returns the info of the snapshot named key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return snapshots.Info{}, err
	}
	defer t.Rollback() //nolint:errcheck
	_, info, _, err := storage.GetInfo(ctx, key)
	return info, err
}

// Update changes the labels of a snapshot (the only mutable field).
func (s *Snapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	ctx, t, err := s.ms.TransactionContext(ctx, true)
	if err != nil {
		return snapshots.Info{}, err
	}
	info, err = storage.UpdateInfo(ctx, info, fieldpaths...)
	if err != nil {
		t.Rollback() //nolint:errcheck
		return snapshots.Info{}, err
	}
	return info, t.Commit()
}

// Usage of a committed snapshot is what was measured when it was committed;
// an active one is measured now.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return snapshots.Usage{}, err
	}
	id, info, usage, err := storage.GetInfo(ctx, key)
	t.Rollback() //nolint:errcheck
	if err != nil {
		return snapshots.Usage{}, err
	}
	if info.Kind == snapshots.KindActive {
		return s.measure(id)
	}
	return usage, nil
}

// measure reports what a layer itself holds.  With quotas on, from the quota
// tree, without a walk: the bytes no other snapshot shares (what the layer
// added), as of the filesystem's last commit (at most ~30 s old; a commit of
// its own on every Usage call would cost every container on the node).
// With quotas off, the library's documented walk counts the layer's
// allocated bytes and inodes: O(files), and the whole layer, not only what
// it added to its parent.
func (s *Snapshotter) measure(id string) (snapshots.Usage, error) {
	u, err := s.h.Usage(id, 0)
	if err == nil {
		return snapshots.Usage{Size: int64(u.Exclusive)}, nil
	}
	if !errors.Is(err, btrfslayer.ErrNoQuota) {
		return snapshots.Usage{}, err
	}
	u, err = s.h.Usage(id, btrfslayer.UsageWalk)
	if err != nil {
		return snapshots.Usage{}, err
	}
	return snapshots.Usage{Size: int64(u.WalkBytes), Inodes: int64(u.WalkInodes)}, nil
}

// Walk calls fn for every snapshot that matches the filters.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return err
	}
	defer t.Rollback() //nolint:errcheck
	return storage.WalkInfo(ctx, fn, filters...)
}

// Prepare makes a writable snapshot of parent (an empty one without).
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.makeSnapshot(ctx, snapshots.KindActive, key, parent, opts)
}

// View makes a read-only snapshot of parent.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.makeSnapshot(ctx, snapshots.KindView, key, parent, opts)
}

func (s *Snapshotter) makeSnapshot(ctx context.Context, kind snapshots.Kind, key, parent string, opts []snapshots.Opt) (_ []mount.Mount, err error) {
	ctx, t, err := s.ms.TransactionContext(ctx, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			t.Rollback() //nolint:errcheck
		}
	}()
	snap, err := storage.CreateSnapshot(ctx, kind, key, parent, opts...)
	if err != nil {
		return nil, err
	}
	_, info, _, err := storage.GetInfo(ctx, key)
	if err != nil {
		return nil, err
	}
	var storageOpts []string
	var flags btrfslayer.CreateFlags
	if kind == snapshots.KindView {
		flags |= btrfslayer.CreateReadOnly
	} else {
		size, err := s.sizeOf(info)
		if err != nil {
			return nil, err
		}
		if size > 0 {
			storageOpts = append(storageOpts, "size="+strconv.FormatUint(size, 10))
		}
	}
	var parentLayer string
	if len(snap.ParentIDs) > 0 {
		parentLayer = snap.ParentIDs[0]
	}
	// A layer a crash left under this id (metadata rolled back, layer
	// kept) is not ours any more: Cleanup at start removes those, and an
	// id is never handed out twice by the metadata store.
	if err := s.h.Create(snap.ID, parentLayer, flags, "", storageOpts); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, toContainerd(err))
	}
	if err := t.Commit(); err != nil {
		if rerr := s.h.Remove(snap.ID); rerr != nil {
			log.G(ctx).WithError(rerr).Warnf("snapshot %q: layer %s left for Cleanup", key, snap.ID)
		}
		return nil, err
	}
	return s.mounts(snap, info)
}

// sizeOf is the limit a writable snapshot gets: its label, else the default.
func (s *Snapshotter) sizeOf(info snapshots.Info) (uint64, error) {
	label, ok := info.Labels[LabelMaxSize]
	if !ok {
		return s.defaultSize, nil
	}
	size, err := btrfslayer.ParseSize(label)
	if err != nil {
		return 0, fmt.Errorf("label %s=%q: %w", LabelMaxSize, label, errdefs.ErrInvalidArgument)
	}
	return size, nil
}

// Mounts returns the mounts of an active snapshot or a view.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return nil, err
	}
	defer t.Rollback() //nolint:errcheck
	snap, err := storage.GetSnapshot(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("mounts of %q: %w", key, err)
	}
	_, info, _, err := storage.GetInfo(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.mounts(snap, info)
}

// mounts is one bind mount of the layer, read-only for views.  With
// uid/gid mapping labels the options ask containerd for an idmapped bind
// mount of the layer (no chown of the image).
func (s *Snapshotter) mounts(snap storage.Snapshot, info snapshots.Info) ([]mount.Mount, error) {
	path, err := s.h.Get(snap.ID, "")
	if err != nil {
		return nil, toContainerd(err)
	}
	options := []string{"rbind"}
	if snap.Kind == snapshots.KindView {
		options = append(options, "ro")
	} else {
		options = append(options, "rw")
	}
	if m, ok := info.Labels[LabelUIDMapping]; ok {
		options = append(options, "uidmap="+m)
	}
	if m, ok := info.Labels[LabelGIDMapping]; ok {
		options = append(options, "gidmap="+m)
	}
	return []mount.Mount{{Type: "bind", Source: path, Options: options}}, nil
}

// Commit seals the active snapshot key in place and names it name.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) (err error) {
	ctx, t, err := s.ms.TransactionContext(ctx, true)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			t.Rollback() //nolint:errcheck
		}
	}()
	id, info, _, err := storage.GetInfo(ctx, key)
	if err != nil {
		return err
	}
	if info.Kind != snapshots.KindActive {
		return fmt.Errorf("commit %q: snapshot is not active: %w", key, errdefs.ErrFailedPrecondition)
	}
	// Sealed first: the seal commits the filesystem's transaction, so the
	// quota numbers measured next include everything written into the
	// layer.  A crash before the metadata commits leaves an active
	// snapshot whose layer is read-only, which a later Commit seals again
	// (a no-op) and a Remove removes.
	if err := s.h.SetReadOnly(id, true); err != nil {
		return fmt.Errorf("commit %q: seal layer %s: %w", key, id, toContainerd(err))
	}
	usage, err := s.measure(id)
	if err == nil {
		_, err = storage.CommitActive(ctx, key, name, usage, opts...)
	}
	if err != nil {
		if uerr := s.h.SetReadOnly(id, false); uerr != nil {
			log.G(ctx).WithError(uerr).Warnf("commit %q: layer %s stays sealed", key, id)
		}
		return err
	}
	if err := t.Commit(); err != nil {
		if uerr := s.h.SetReadOnly(id, false); uerr != nil {
			log.G(ctx).WithError(uerr).Warnf("commit %q: layer %s stays sealed", key, id)
		}
		return err
	}
	return nil
}

// Remove deletes the snapshot key: its metadata first, then its layer.
func (s *Snapshotter) Remove(ctx context.Context, key string) (err error) {
	ctx, t, err := s.ms.TransactionContext(ctx, true)
	if err != nil {
		return err
	}
	id, _, err := storage.Remove(ctx, key)
	if err != nil {
		t.Rollback() //nolint:errcheck
		return fmt.Errorf("remove %q: %w", key, err)
	}
	if err := t.Commit(); err != nil {
		return err
	}
	// The metadata no longer names the layer: if this fails or the
	// daemon dies here, Cleanup removes it.
	if err := s.h.Remove(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.G(ctx).WithError(err).Warnf("remove %q: layer %s left for Cleanup", key, id)
	}
	return nil
}

// Cleanup removes every layer no snapshot's metadata names.
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return err
	}
	ids, err := storage.IDMap(ctx)
	t.Rollback() //nolint:errcheck
	if errdefs.IsNotFound(err) {
		// a new store: no snapshot yet, so every layer is a leftover
		ids, err = map[string]string{}, nil
	}
	if err != nil {
		return err
	}
	layers, err := s.h.Layers()
	if err != nil {
		return err
	}
	var errs []string
	for _, layer := range layers {
		if _, ok := ids[layer.ID]; ok {
			continue
		}
		if err := s.h.Remove(layer.ID); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err.Error())
			continue
		}
		log.G(ctx).Debugf("cleanup: removed layer %s, named by no snapshot", layer.ID)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleanup: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Consistency is what Check found.
type Consistency struct {
	Snapshots     int      // snapshots the metadata names
	Layers        int      // layers in the library's home
	OrphanLayers  []string // layers no snapshot names
	MissingLayers []string // snapshots whose layer is gone
}

// Check compares the metadata with the layers, changing nothing.
func (s *Snapshotter) Check(ctx context.Context) (Consistency, error) {
	var c Consistency
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return c, err
	}
	ids, err := storage.IDMap(ctx)
	t.Rollback() //nolint:errcheck
	if errdefs.IsNotFound(err) {
		ids, err = map[string]string{}, nil
	}
	if err != nil {
		return c, err
	}
	layers, err := s.h.Layers()
	if err != nil {
		return c, err
	}
	c.Snapshots, c.Layers = len(ids), len(layers)
	have := map[string]bool{}
	for _, layer := range layers {
		have[layer.ID] = true
		if _, ok := ids[layer.ID]; !ok {
			c.OrphanLayers = append(c.OrphanLayers, layer.ID)
		}
	}
	for id, key := range ids {
		if !have[id] {
			c.MissingLayers = append(c.MissingLayers, id+" ("+key+")")
		}
	}
	return c, nil
}

// Close closes the metadata store and the library's handle; a second Close
// returns the first one's result.
func (s *Snapshotter) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.ms.Close()
		if err := s.h.Close(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// toContainerd maps the library's errors to containerd's errdefs, keeping the
// library's message.
func toContainerd(err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%v: %w", err, errdefs.ErrAlreadyExists)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%v: %w", err, errdefs.ErrNotFound)
	}
	return err
}
