#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The safety net under the integration tests (ctest's FIXTURES_CLEANUP): each
# test program tears down its own filesystem, but one killed outright (a
# sanitizer abort, SIGKILL) cannot.  Remove what such a program left: only
# directories whose recorded process is gone, so a concurrent run is safe.
set -u
shopt -s nullglob
status=0
for dir in /var/tmp/btrfslayer-test.*; do
	pid=$(cat "$dir/pid" 2>/dev/null) || continue
	if kill -0 "$pid" 2>/dev/null; then
		continue	# still running: its own teardown will come
	fi
	for mnt in "$dir/btrfs" "$dir/tmpfs"; do
		if mountpoint -q "$mnt"; then
			echo "sweep: unmounting $mnt left by dead test process $pid" >&2
			# -R: homes inside it may still carry the bind mount
			# the library makes at open
			umount -R "$mnt" 2>/dev/null || umount -l "$mnt" || status=1
		fi
	done
	for dev in $(losetup -j "$dir/fs.img" -O NAME -n); do
		losetup -d "$dev" || status=1
	done
	rm -f "$dir/fs.img" "$dir/pid"
	rmdir "$dir/btrfs" "$dir/tmpfs" "$dir" 2>/dev/null
done
exit $status
