// SPDX-License-Identifier: LGPL-2.1-or-later

// btrfslayer-snapshotter serves containerd's snapshots API (a proxy
// snapshotter) on a unix socket, over libbtrfslayer.
//
//	btrfslayer-snapshotter --root /var/lib/btrfslayer-snapshotter \
//	    --address /run/btrfslayer-snapshotter/snapshotter.sock
//
// containerd's config then names it under [proxy_plugins] (see README).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/BurntSushi/toml"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/log"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"libbtrfslayer.org/go/btrfslayer"
	"libbtrfslayer.org/snapshotter"
)

const (
	defaultRoot    = "/var/lib/btrfslayer-snapshotter"
	defaultAddress = "/run/btrfslayer-snapshotter/snapshotter.sock"
)

// fileConfig is the --config file (TOML); flags given on the command line
// win over it.
type fileConfig struct {
	Root        string `toml:"root"`
	Address     string `toml:"address"`
	LogLevel    string `toml:"log_level"`
	DefaultSize string `toml:"default_size"`
	QuotaMode   string `toml:"quota_mode"`
	MountHome   *bool  `toml:"mount_home"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "btrfslayer-snapshotter: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		configPath  = flag.String("config", "", "TOML config file (root, address, log_level, default_size, quota_mode, mount_home)")
		root        = flag.String("root", defaultRoot, "directory holding the metadata and the layer store (on btrfs)")
		address     = flag.String("address", defaultAddress, "unix socket to serve containerd's snapshots API on")
		logLevel    = flag.String("log-level", "info", "trace, debug, info, warn or error")
		defaultSize = flag.String("default-size", "", "size limit of every writable snapshot without a "+snapshotter.LabelMaxSize+" label (e.g. 10G)")
		quotaMode   = flag.String("quota-mode", "", "quota mode to use when a limit is first set: qgroup or simple")
		mountHome   = flag.Bool("mount-home", true, "make the layer store a mount point of its own (shared propagation)")
		version     = flag.Bool("version", false, "print the version and exit")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: btrfslayer-snapshotter [flags]        serve\n"+
			"       btrfslayer-snapshotter [flags] check  compare metadata and layers (daemon stopped)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	check := false
	switch {
	case flag.NArg() == 1 && flag.Arg(0) == "check":
		check = true
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if *version {
		fmt.Printf("btrfslayer-snapshotter (libbtrfslayer %s)\n", btrfslayer.Version())
		return nil
	}
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var fc fileConfig
	if *configPath != "" {
		if _, err := toml.DecodeFile(*configPath, &fc); err != nil {
			return fmt.Errorf("config %s: %w", *configPath, err)
		}
	}
	pick := func(flagName, flagValue, fileValue string) string {
		if given[flagName] || fileValue == "" {
			return flagValue
		}
		return fileValue
	}
	cfg := snapshotter.Config{
		Root:        pick("root", *root, fc.Root),
		DefaultSize: pick("default-size", *defaultSize, fc.DefaultSize),
		QuotaMode:   pick("quota-mode", *quotaMode, fc.QuotaMode),
		MountHome:   mountHome,
	}
	if !given["mount-home"] && fc.MountHome != nil {
		cfg.MountHome = fc.MountHome
	}
	sock := pick("address", *address, fc.Address)
	level, err := logrus.ParseLevel(pick("log-level", *logLevel, fc.LogLevel))
	if err != nil {
		return err
	}
	logrus.SetLevel(level)
	btrfslayer.SetLogger(func(lvl int, msg string) {
		entry := logrus.WithField("from", "libbtrfslayer")
		switch {
		case lvl <= 3:
			entry.Error(msg)
		case lvl == 4:
			entry.Warn(msg)
		case lvl <= 6:
			entry.Info(msg)
		default:
			entry.Debug(msg)
		}
	})

	ctx := context.Background()
	if check {
		return runCheck(ctx, cfg)
	}
	sn, err := snapshotter.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer sn.Close()

	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	// A socket left by a daemon that died is in the way; anything else
	// at that path is not ours to remove.
	if fi, err := os.Lstat(sock); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%s exists and is not a socket", sock)
		}
		if err := os.Remove(sock); err != nil {
			return err
		}
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(srv, snapshotservice.FromSnapshotter(sn))

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		log.G(ctx).Infof("%v: stopping", sig)
		srv.GracefulStop()
	}()
	log.G(ctx).WithField("root", cfg.Root).WithField("address", sock).Info("serving")
	if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// runCheck prints how the metadata and the layers compare; an orphan layer
// or a snapshot without its layer is an error.  The bolt file is locked by a
// running daemon, so this waits for it to stop.
func runCheck(ctx context.Context, cfg snapshotter.Config) error {
	cfg.KeepLeftovers = true
	sn, err := snapshotter.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer sn.Close()
	c, err := sn.Check(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("snapshots %d layers %d orphan_layers %d missing_layers %d\n",
		c.Snapshots, c.Layers, len(c.OrphanLayers), len(c.MissingLayers))
	if len(c.OrphanLayers) > 0 || len(c.MissingLayers) > 0 {
		return fmt.Errorf("inconsistent: layers no snapshot names %v; snapshots without a layer %v",
			c.OrphanLayers, c.MissingLayers)
	}
	return nil
}
