#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The safety net under the powercut test (ctest's FIXTURES_CLEANUP): the test
# tears down its own mounts, loop devices and recorder, but one killed
# outright (a sanitizer abort, SIGKILL) cannot.  Remove what such a run left:
# only directories whose recorded process is gone, so a concurrent run is
# safe.  The recorder exits by itself when its parent dies (PDEATHSIG).
set -u
shopt -s nullglob
status=0
for dir in /var/tmp/btrfslayer-powercut.*; do
	pid=$(cat "$dir/pid" 2>/dev/null) || continue
	if kill -0 "$pid" 2>/dev/null; then
		continue	# still running: its own teardown will come
	fi
	for mnt in "$dir/check" "$dir/btrfs" "$dir/recorder"; do
		if mountpoint -q "$mnt" 2>/dev/null || grep -q " $mnt " /proc/self/mounts; then
			echo "sweep: unmounting $mnt left by dead test process $pid" >&2
			umount "$mnt" 2>/dev/null || umount -l "$mnt" || status=1
		fi
	done
	# loop devices whose backing file is in $dir (the recorder's disk too)
	for dev in $(losetup -n -O NAME,BACK-FILE | awk -v d="$dir/" 'index($2, d) == 1 { print $1 }'); do
		losetup -d "$dev" || status=1
	done
	rm -f "$dir"/*.img "$dir/disk.log" "$dir/results" "$dir/pid"
	rmdir "$dir/check" "$dir/btrfs" "$dir/recorder" "$dir" 2>/dev/null
done
exit $status
