#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# End to end under a real containerd (Debian's containerd and runc):
#   bash tests/snapshotter/e2e.sh DAEMON
# DAEMON is the btrfslayer-snapshotter binary.  The test makes a loopback
# btrfs, starts the snapshotter and a containerd with a config, root and
# socket of its own, imports a two-layer OCI image it builds from
# busybox-static, runs a container that writes a file, checks where the data
# went, kills the snapshotter in the middle of an import and of a run, and
# checks that nothing is left once the container and the image are gone.
# Everything it started or mounted is taken down on exit, whatever the
# outcome.  Without root or tools: skip (exit 77), or fail with CI=true.
set -euo pipefail

daemon=${1:?usage: e2e.sh DAEMON}
daemon=$(realpath "$daemon")

skip() {
	if [[ "${CI:-}" == true ]]; then
		echo "e2e: FAIL: cannot run (CI=true): $*" >&2
		exit 1
	fi
	echo "e2e: SKIP: $*" >&2
	exit 77
}
((EUID == 0)) || skip "needs root (containerd, mounts)"
for tool in containerd ctr runc mkfs.btrfs busybox btrfs; do
	command -v "$tool" >/dev/null || skip "$tool not found"
done

work=$(mktemp -d /var/tmp/btrfslayer-e2e.XXXXXX)
mnt=$work/mnt
snap_root=$mnt/snapshotter
snap_sock=$work/snapshotter.sock
ctd_sock=$work/containerd.sock
snap_pid=
ctd_pid=

log() { printf 'e2e: %s\n' "$*"; }
fail() {
	printf 'e2e: FAIL: %s\n' "$*" >&2
	exit 1
}

teardown() {
	local rc=$?
	set +e
	if [[ -S $ctd_sock ]]; then
		for c in $(ctr -a "$ctd_sock" -n e2e tasks ls -q 2>/dev/null); do
			ctr -a "$ctd_sock" -n e2e tasks kill -s KILL "$c" >/dev/null 2>&1
		done
	fi
	[[ -n $ctd_pid ]] && kill "$ctd_pid" 2>/dev/null && wait "$ctd_pid" 2>/dev/null
	[[ -n $snap_pid ]] && kill "$snap_pid" 2>/dev/null && wait "$snap_pid" 2>/dev/null
	# whatever containerd's shims or the snapshotter left mounted under work
	findmnt -rn -o TARGET | grep "^$work/" | sort -r | while read -r target; do
		umount -l "$target" 2>/dev/null
	done
	rm -rf "$work"
	if ((rc != 0)); then
		echo "e2e: failed (exit $rc); containerd log tail:" >&2
		tail -n 30 "$work.containerd.log" >&2 2>/dev/null
		echo "e2e: snapshotter log tail:" >&2
		grep -v "level=debug" "$work.snapshotter.log" | tail -n 30 >&2 2>/dev/null
	fi
	rm -f "$work.containerd.log" "$work.snapshotter.log"
	exit $rc
}
trap teardown EXIT

mkdir -p "$mnt"
truncate -s 4G "$work/disk.img"
mkfs.btrfs -q "$work/disk.img"
mount -o loop "$work/disk.img" "$mnt"

start_snapshotter() {
	# a default limit, so quotas are on and usage comes from the quota tree
	"$daemon" --config "$work/snapshotter.toml" --root "$snap_root" --address "$snap_sock" \
		>>"$work.snapshotter.log" 2>&1 &
	snap_pid=$!
	local i
	for ((i = 0; i < 300; i++)); do
		if [[ -S $snap_sock ]]; then
			# containerd redials a restarted proxy with a backoff: wait
			# until it is through, so that its garbage collector, which
			# does not retry at once, finds the snapshotter there
			if [[ -n $ctd_pid ]]; then
				retry ctr -a "$ctd_sock" -n e2e snapshots --snapshotter btrfslayer ls >/dev/null
			fi
			return 0
		fi
		kill -0 "$snap_pid" 2>/dev/null || fail "snapshotter exited at start"
		sleep 0.1
	done
	fail "snapshotter did not serve within 30 s"
}

kill_snapshotter() {
	kill -KILL "$snap_pid"
	echo "e2e: SIGKILL snapshotter" >&2
	wait "$snap_pid" 2>/dev/null || true
	snap_pid=
}

cat >"$work/snapshotter.toml" <<EOF
log_level = "debug"
quota_mode = "simple"
default_size = "1G"
EOF
cat >"$work/containerd.toml" <<EOF
version = 2
root = "$work/containerd-root"
state = "$work/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$ctd_sock"
[proxy_plugins]
  [proxy_plugins.btrfslayer]
    type = "snapshot"
    address = "$snap_sock"
EOF

start_snapshotter
containerd --config "$work/containerd.toml" >>"$work.containerd.log" 2>&1 &
ctd_pid=$!
for ((i = 0; i < 300; i++)); do
	ctr -a "$ctd_sock" version >/dev/null 2>&1 && break
	kill -0 "$ctd_pid" 2>/dev/null || fail "containerd exited at start"
	sleep 0.1
done
ctr -a "$ctd_sock" version >/dev/null || fail "containerd did not serve within 30 s"

ctr_() {
	echo "\$ ctr $*" >&2
	ctr -a "$ctd_sock" -n e2e "$@"
}

# containerd redials a restarted proxy snapshotter with a backoff: what a
# client does is retry, as a kubelet or a pull would.
retry() {
	local i
	for ((i = 1; i <= 20; i++)); do
		"$@" && return 0
		log "attempt $i failed; retrying"
		sleep 1
	done
	fail "still failing after 20 attempts: $*"
}

# ---- an OCI image of two layers, built here from busybox-static ----------
sha() { sha256sum "$1" | cut -d' ' -f1; }
build_image() {
	local out=$1 ref=$2 extra_files=${3:-0}
	local oci=$work/oci-$RANDOM rootfs=$work/rootfs-$RANDOM
	mkdir -p "$oci/blobs/sha256" "$rootfs/bin" "$rootfs/etc" "$rootfs/data"
	cp /bin/busybox "$rootfs/bin/busybox"
	for cmd in sh echo cat ls sleep; do ln -s busybox "$rootfs/bin/$cmd"; done
	echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
	tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$rootfs" -cf "$work/l1.tar" bin etc
	local i
	for ((i = 0; i < extra_files; i++)); do echo "$i" >"$rootfs/data/f$i"; done
	echo "second layer" >"$rootfs/etc/motd"
	tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$rootfs" -cf "$work/l2.tar" etc/motd data
	local l1 l2
	l1=$(sha "$work/l1.tar") l2=$(sha "$work/l2.tar")
	cp "$work/l1.tar" "$oci/blobs/sha256/$l1"
	cp "$work/l2.tar" "$oci/blobs/sha256/$l2"
	cat >"$work/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},
 "rootfs":{"type":"layers","diff_ids":["sha256:$l1","sha256:$l2"]}}
EOF
	local cfg
	cfg=$(sha "$work/config.json")
	cp "$work/config.json" "$oci/blobs/sha256/$cfg"
	cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$cfg","size":$(stat -c %s "$work/config.json")},
 "layers":[
  {"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$l1","size":$(stat -c %s "$work/l1.tar")},
  {"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$l2","size":$(stat -c %s "$work/l2.tar")}]}
EOF
	local man
	man=$(sha "$work/manifest.json")
	cp "$work/manifest.json" "$oci/blobs/sha256/$man"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
	cat >"$oci/index.json" <<EOF
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "digest":"sha256:$man","size":$(stat -c %s "$work/manifest.json"),
 "annotations":{"org.opencontainers.image.ref.name":"$ref"}}]}
EOF
	tar -C "$oci" -cf "$out" oci-layout index.json blobs
	rm -rf "$oci" "$rootfs"
}

layers_in_home() {
	find "$snap_root/home/subvolumes" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f\n' | sort
}
# Every layer named by a snapshot and every snapshot backed by a layer: the
# daemon's own check, run while it is stopped (it holds the metadata file).
check_no_orphans() {
	local what=$1
	kill -TERM "$snap_pid"
	wait "$snap_pid" || fail "the snapshotter did not stop cleanly"
	snap_pid=
	"$daemon" --root "$snap_root" check | tee "$work/check" || fail "$what: $(cat "$work/check")"
	log "$what: no orphan layer, no snapshot without its layer"
	start_snapshotter
}

build_image "$work/image.tar" docker.io/e2e/busybox:1
ctr_ images import --snapshotter btrfslayer --base-name docker.io/e2e/busybox "$work/image.tar"
ctr_ images ls -q | grep -qx docker.io/e2e/busybox:1 || fail "image not imported"

# ---- a container that writes a file --------------------------------------
ctr_ run --snapshotter btrfslayer docker.io/e2e/busybox:1 c1 \
	sh -c 'echo written-by-c1 > /hello.txt; cat /etc/motd'
ctr_ snapshots --snapshotter btrfslayer ls
ctr_ snapshots --snapshotter btrfslayer mounts /x c1 | tee "$work/mounts"
src=$(grep -o -- "$snap_root/home/subvolumes/[^ ]*" "$work/mounts" | head -1)
[[ -n $src ]] || fail "the container's rootfs is not a layer under $snap_root/home"
btrfs subvolume show "$src" >/dev/null || fail "$src is not a btrfs subvolume"
[[ $(cat "$src/hello.txt") == written-by-c1 ]] || fail "the container's write is not in $src"
[[ $(btrfs property get -ts "$src" ro) == ro=false ]] || fail "the container's layer is sealed"
log "container rootfs $src is a writable btrfs subvolume holding /hello.txt"
# the image's layers: committed, so sealed
sealed=0
for layer in $(layers_in_home); do
	[[ $snap_root/home/subvolumes/$layer == "$src" ]] && continue
	[[ $(btrfs property get -ts "$snap_root/home/subvolumes/$layer" ro) == ro=true ]] ||
		fail "image layer $layer is not sealed"
	sealed=$((sealed + 1))
done
((sealed == 2)) || fail "expected 2 sealed image layers, found $sealed"
log "the image's 2 layers are sealed"
ctr_ snapshots --snapshotter btrfslayer usage | tee "$work/usage"
# From the quota tree: the container's own writes (a few KiB), not the
# image's 1.9 MiB busybox it shares; the bottom image layer holds busybox.
c1_size=$(awk '$1 == "c1" {print $2, $3}' "$work/usage")
[[ $c1_size == *KiB || $c1_size == *" B" ]] || fail "usage of c1 is $c1_size, not what it wrote"
grep -E ' [0-9.]+ MiB ' "$work/usage" | grep -qv '^c1 ' || fail "no image layer holds MiBs"
log "usage: c1 $c1_size (its own writes), image layers from the quota tree"
check_no_orphans "after run"

ctr_ containers rm c1
ctr_ images rm --sync docker.io/e2e/busybox:1
left=$(layers_in_home)
[[ -z $left ]] || fail "layers left after removing the container and the image: $left"
log "container and image removed: no layer left"

# ---- SIGKILL of the snapshotter in the middle of an import ----------------
# The kill comes once the second layer's extraction snapshot exists, while
# containerd writes its 20,000 files into it.
wait_for_layers() {
	local n=$1 i
	for ((i = 0; i < 3000; i++)); do
		(($(layers_in_home | wc -l) >= n)) && return 0
		sleep 0.01
	done
	fail "never saw $n layers"
}
build_image "$work/big.tar" docker.io/e2e/big:1 20000
ctr_ images import --snapshotter btrfslayer --base-name docker.io/e2e/big "$work/big.tar" \
	>/dev/null 2>&1 &
import_pid=$!
wait_for_layers 2
kill_snapshotter
if wait "$import_pid"; then
	fail "the import finished although the snapshotter was killed during it"
fi
log "the import failed with the snapshotter killed"
start_snapshotter
ctr_ images rm --sync docker.io/e2e/big:1 >/dev/null 2>&1 || true
retry ctr_ images import --snapshotter btrfslayer --base-name docker.io/e2e/big "$work/big.tar"
check_no_orphans "after a kill during import and a retry"

# ---- SIGKILL of the snapshotter in the middle of a run ---------------------
before=$(layers_in_home | wc -l)
ctr_ run --snapshotter btrfslayer docker.io/e2e/big:1 c2 sh -c 'sleep 0.5' >/dev/null 2>&1 &
run_pid=$!
wait_for_layers $((before + 1))
kill_snapshotter
wait "$run_pid" || true
start_snapshotter
ctr_ tasks kill -s KILL c2 >/dev/null 2>&1 || true
sleep 0.5
ctr_ tasks rm c2 >/dev/null 2>&1 || true
ctr_ containers rm c2 >/dev/null 2>&1 || true
retry ctr_ run --snapshotter btrfslayer --rm docker.io/e2e/big:1 c3 sh -c 'ls /data | wc -l' | tee "$work/c3"
[[ $(tail -n 1 "$work/c3") == 20000 ]] || fail "c3 saw $(tail -n 1 "$work/c3") files in /data, not 20000"
check_no_orphans "after a kill during a run and a retry"

ctr_ images rm --sync docker.io/e2e/big:1
# containerd's garbage collector removed what no image or container holds,
# the snapshots of the killed import and run included
left=$(layers_in_home)
[[ -z $left ]] || fail "layers left at the end: $left"
check_no_orphans "at the end"
log "OK"
