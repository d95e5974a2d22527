#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A guided tour of btrfslayer on a throw-away loopback btrfs.
# Run as root from the repository root:
#
#     bash scripts/demo.sh
#
# It installs what is missing, builds into build/ (or $BUILD_DIR), makes a
# small btrfs in an image file, walks through a session with the CLI, and
# removes everything it made on the way out, even if a step fails.
# The steps below are single-quoted on purpose: run shows them as written.
# shellcheck disable=SC2016
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}

if ((EUID != 0)); then
	echo "demo: run me as root: mounting a loop device needs it" >&2
	exit 1
fi

# ---- helpers -----------------------------------------------------------------

# Show a command as written, then run it, so the output reads like a session.
run() {
	echo "+ $1"
	eval "$1"
}

# Like run, for a command that must end with exit status $1.  Its output is
# shown and kept in $OUT.
expect() {
	local want=$1 got=0
	echo "+ $2"
	OUT=$(eval "$2" 2>&1) || got=$?
	if [[ -n $OUT ]]; then
		printf '%s\n' "$OUT"
	fi
	echo "  (exit status $got)"
	if ((got != want)); then
		die "expected exit status $want"
	fi
}

say() { printf '\n### %s\n' "$*"; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }

# ---- a filesystem of our own, removed on any exit ---------------------------

IMG='' MNT=''
cleanup() {
	local rc=$? dev
	set +e	# tear down as much as we can, whatever fails
	if [[ -n $MNT ]] && mountpoint -q "$MNT"; then
		umount "$MNT" || umount -l "$MNT"	# -l: busy, detach anyway
	fi
	if [[ -n $IMG ]]; then
		# mount -o loop frees its device on umount; this is for when it
		# did not (or the umount failed).
		for dev in $(losetup -j "$IMG" | cut -d: -f1); do
			losetup -d "$dev"
		done
		rm -f "$IMG"
	fi
	if [[ -n $MNT ]]; then
		rmdir "$MNT" 2>/dev/null
	fi
	if ((rc != 0)); then
		echo "demo: FAILED (exit status $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT

# ---- dependencies and build ----------------------------------------------------

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
deps_install

echo "demo: building into $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j2 >/dev/null
CLI=$(realpath "$BUILD_DIR/tools/btrfslayer")

IMG=$(mktemp /var/tmp/btrfslayer-demo.XXXXXX.img)
MNT=$(mktemp -d /tmp/btrfslayer-demo.XXXXXX)
truncate -s 1G "$IMG"	# sparse: takes only what btrfs writes
# mkfs.btrfs talks even with -q; show what it said only if it failed.
out=$(mkfs.btrfs -q "$IMG" 2>&1) || die "mkfs.btrfs: $out"
mount -o loop "$IMG" "$MNT"
HOME_DIR=$MNT/home

# In what follows, `btrfslayer` is the freshly built CLI on our store.
btrfslayer() { "$CLI" --home "$HOME_DIR" "$@"; }

echo "demo: a fresh btrfs is mounted at $MNT; the store is $HOME_DIR"

# ---- the session ----------------------------------------------------------------

say "An empty base layer, with some files in it"
run 'btrfslayer version'
run 'btrfslayer create base'
run 'BASE=$(btrfslayer path base)'
run 'echo "$BASE"'
run 'echo "hello from base" > "$BASE/greeting"'
run 'mkdir "$BASE/etc" && echo "name=base" > "$BASE/etc/config"'

say "A child: a snapshot of base, made in O(1) and sharing its data"
run 'btrfslayer create --parent base child'
run 'CHILD=$(btrfslayer path child)'
run 'cat "$CHILD/greeting"'
run 'echo "changed in child" > "$CHILD/greeting"'
run 'cat "$CHILD/greeting"'
say "... and the parent does not see the change"
run 'cat "$BASE/greeting"'
[[ $(cat "$BASE/greeting") == "hello from base" ]] || die "base changed"

say "A read-only layer refuses writes"
run 'btrfslayer create --read-only --parent base frozen'
run 'FROZEN=$(btrfslayer path frozen)'
expect 1 'echo "no" > "$FROZEN/greeting"'
[[ $OUT == *"Read-only file system"* ]] || die "write was not refused as read-only"

say "Removing a layer removes the subvolumes nested in it"
run 'btrfs subvolume create "$CHILD/nested"'
run 'btrfs subvolume list "$MNT"'
echo "(.empty-0755-0-0 is the library's empty template, never a layer: the first empty"
echo " layer made it, and every plain empty layer is a snapshot of it)"
run 'btrfslayer rm child'
run 'btrfs subvolume list "$MNT"'
if btrfs subvolume list "$MNT" | grep -q nested; then
	die "the nested subvolume survived rm"
fi

say "A container layer with a size limit: writing past it fails"
run 'btrfslayer create --parent base --storage-opt size=16M box'
run 'BOX=$(btrfslayer path box)'
expect 1 'dd if=/dev/urandom of="$BOX/big" bs=1M count=64 conv=fsync status=none'
[[ $OUT == *"quota exceeded"* ]] || die "the write past the limit was not refused"
run 'btrfslayer usage --sync box'
say "... the limit can be raised, and the layer still read and removed"
run 'btrfslayer quota box 128M'
run 'btrfslayer usage box | grep limit'
run 'ls -l "$BOX"'
run 'btrfslayer rm box'

say "A process killed in the middle of its work leaves nothing half-made"
# churn SECONDS: create and remove size-limited layers in a loop, in a
# session of its own, and SIGKILL the whole session after SECONDS.
churn() {
	setsid bash -c 'for i in $(seq 100000); do
		"$1" --home "$2" -o btrfs.mount_home=false create --storage-opt size=8M "churn-$i" &&
		"$1" --home "$2" -o btrfs.mount_home=false rm "churn-$i" || exit 1
	done' churn "$CLI" "$HOME_DIR" &
	local group=$!
	sleep "$1"
	kill -KILL -- "-$group"
	wait "$group" 2>/dev/null || true
	# a process killed inside a system call that does not stop (a
	# commit) dies when the call returns: until then it holds its slot
	while kill -0 -- "-$group" 2>/dev/null; do sleep 0.1; done
}
run 'churn 2'
# the library's reserved names live in the .staging directories; the qgroup
# markers wait for the kernel's cleaner in the attribute user.btrfslayer.qgroups
# of subvolumes/, and as files (.qgroup-N) there when the list is full: those
# are counted
reserved() {
	ls -A "$HOME_DIR"/{subvolumes,quotas}{,/.staging} | grep -v '^\.qgroup-'
	echo "qgroup marker files: $(ls -A "$HOME_DIR/quotas/.staging" | grep -c '^\.qgroup-')"
}
run 'reserved'
say "... the next open finishes or undoes what the killed call left (-v shows the log)"
run 'btrfslayer -v status 2>&1 | grep -E "recovery|sweep_"'
run 'reserved'
if ls -A "$HOME_DIR"/{subvolumes,quotas}{,/.staging} | grep -qE '^\.(tmp|tomb)-'; then
	die "a reserved name survived the sweep"
fi
run 'for id in $(btrfslayer ls | grep churn-); do btrfslayer rm "$id"; done'

say "Listing and status"
run 'btrfslayer ls'
run 'btrfslayer ls --json'
run 'btrfslayer status'

say "exists answers with its exit status"
expect 0 'btrfslayer exists base'
expect 1 'btrfslayer exists child'

say "Errors name what failed and where"
expect 1 'btrfslayer rm child'
expect 2 'btrfslayer frobnicate'

echo
echo "demo: OK"
