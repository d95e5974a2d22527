// SPDX-License-Identifier: LGPL-2.1-or-later

package snapshotter_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

// TestContainerdSuite runs containerd's own snapshotter test suite against
// the daemon, each subtest with a daemon of its own reached through
// containerd's proxy client (the gRPC path containerd itself uses).
func TestContainerdSuite(t *testing.T) {
	bin := daemonBinary(t)
	testsuite.SnapshotterSuite(t, "Btrfslayer", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		return startDaemon(bin, root)
	})
}

// startDaemon starts btrfslayer-snapshotter with its root and socket under
// root and returns a proxy snapshotter connected to it.  The cleanup stops
// the daemon with SIGTERM and fails if it does not exit cleanly.
func startDaemon(bin, root string, extra ...string) (snapshots.Snapshotter, func() error, error) {
	// a unix socket path is at most 107 bytes: the suite's root is longer
	sockDir, err := os.MkdirTemp("/tmp", "bls-")
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(sockDir, "s.sock")
	args := append([]string{"--root", filepath.Join(root, "state"), "--address", sock,
		"--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		defer os.RemoveAll(sockDir)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("daemon exited: %w", err)
			}
			return nil
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			return fmt.Errorf("daemon did not stop within 30 s of SIGTERM")
		}
	}
	conn, err := dialSocket(sock, exited)
	if err != nil {
		stop()
		return nil, nil, err
	}
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "btrfslayer")
	return sn, func() error {
		conn.Close()
		return stop()
	}, nil
}

// dialSocket waits until the daemon serves (or dies).
func dialSocket(sock string, exited chan error) (*grpc.ClientConn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("daemon exited before serving: %v", err)
		default:
		}
		if _, err := os.Stat(sock); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := grpc.DialContext(ctx, "unix://"+sock,
				grpc.WithInsecure(), grpc.WithBlock(),
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", sock)
				}))
			cancel()
			if err == nil {
				return conn, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("daemon did not serve %s within 30 s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
