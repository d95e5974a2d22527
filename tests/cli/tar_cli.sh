#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The CLI's export and apply on a loopback btrfs made here and always torn
# down: export | apply round trip (plain and zstd), diff agrees, a hostile
# tar refused with a one-line error, export refusing a terminal.
#
#     bash tests/cli/tar_cli.sh PATH/TO/btrfslayer
#
# Needs root, loop devices and btrfs; without them it skips (exit 77), but
# under CI=true it fails instead.
set -uo pipefail

CLI=$(realpath -m -- "${1:?usage: tar_cli.sh PATH/TO/btrfslayer}")
skip() {
	if [[ ${CI:-} == true ]]; then
		echo "tar_cli: FAIL: cannot run: $* (CI=true, so this is not a skip)"
		exit 1
	fi
	echo "tar_cli: SKIP: $*"
	exit 77
}

TMP='' IMG='' MNT=''
cleanup() {
	local rc=$? dev
	if [[ -n $MNT ]] && mountpoint -q "$MNT"; then
		umount -R "$MNT" || umount -l "$MNT"
	fi
	if [[ -n $IMG ]]; then
		for dev in $(losetup -j "$IMG" | cut -d: -f1); do
			losetup -d "$dev"
		done
		rm -f "$IMG"
	fi
	[[ -z $TMP ]] || rm -rf --one-file-system "$TMP"
	exit "$rc"
}
trap cleanup EXIT

((EUID == 0)) || skip "not root"
command -v mkfs.btrfs >/dev/null || skip "mkfs.btrfs not found (btrfs-progs)"
TMP=$(mktemp -d /tmp/tar_cli.XXXXXX)
IMG=$(mktemp /var/tmp/tar_cli.XXXXXX.img)
MNT=$TMP/mnt
mkdir "$MNT"
truncate -s 1G "$IMG"
out=$(mkfs.btrfs -q "$IMG" 2>&1) || skip "mkfs.btrfs failed: $out"
out=$(mount -o loop "$IMG" "$MNT" 2>&1) || skip "cannot mount a loopback btrfs: $out"
H=$MNT/home
bl() { "$CLI" --home "$H" "$@"; }
# Everything about a tree but inode numbers and times of directories: one
# line per entry (diff -r cannot compare fifos), and each file's content.
tree_sig() {
	(cd "$1" && find . -printf '%p %y %m %U:%G %s %l\n' | sort &&
		find . -type f -exec md5sum {} + | sort)
}

FAILED=0
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; FAILED=$((FAILED + 1)); }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }

bl create base && P=$(bl path base)
mkdir -p "$P/etc" "$P/gone" && echo base > "$P/etc/conf" && echo x > "$P/gone/f"
bl create top --parent base && T=$(bl path top)
echo changed > "$T/etc/conf" && rm -rf "$T/gone" && mkfifo "$T/fifo" &&
	ln -s /nonexistent/abs "$T/link" && chown 123:456 "$T/etc/conf"

check "export --parent writes a tar" 'bl export --parent base top > "$TMP/top.tar"'
check "the tar lists the changes and the whiteout" \
	'[[ $(tar -tf "$TMP/top.tar" | tr "\n" " ") == "etc/ etc/conf fifo .wh.gone link " ]]'
check "export is deterministic" 'bl export --parent base top | cmp -s - "$TMP/top.tar"'
bl create copy --parent base
check "apply of the export" 'bl apply copy < "$TMP/top.tar"'
C=$(bl path copy)
check "applied layer equals the layer" \
	'[[ "$(tree_sig "$T")" == "$(tree_sig "$C")" ]] && [[ $(stat -c %u:%g "$C/etc/conf") == 123:456 ]]'
check "diff of the copy equals diff of the layer" \
	'[[ "$(bl diff --parent base copy)" == "$(bl diff --parent base top)" ]]'
zstd -q -c "$TMP/top.tar" > "$TMP/top.tar.zst"
bl create z --parent base
check "apply of a zstd tar" 'bl apply z < "$TMP/top.tar.zst" && [[ "$(tree_sig "$T")" == "$(tree_sig "$(bl path z)")" ]]'
bl create ro --parent base --read-only
check "apply to a read-only layer fails with one line" \
	'! bl apply ro < "$TMP/top.tar" 2> "$TMP/err" && [[ $(wc -l < "$TMP/err") == 1 ]] && grep -q "read-only" "$TMP/err"'
python3 -c '
import io, tarfile, sys
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w") as t:
    i = tarfile.TarInfo("../../escape"); i.size = 1
    t.addfile(i, io.BytesIO(b"x"))
sys.stdout.buffer.write(b.getvalue())' > "$TMP/evil.tar"
bl create evil
check "a hostile tar is refused naming the entry" \
	'! bl apply evil < "$TMP/evil.tar" 2> "$TMP/err" && grep -q "\"../../escape\"" "$TMP/err" && [[ ! -e $MNT/escape && ! -e $H/escape ]]'
if command -v script >/dev/null; then
	check "export to a terminal is a usage error" \
		'[[ $(script -qec "$CLI --home $H export top" /dev/null) == *terminal* ]]'
fi
((FAILED == 0)) && echo "tar_cli: all passed" || echo "tar_cli: $FAILED failed"
((FAILED == 0))
