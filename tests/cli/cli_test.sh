#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Integration test of the btrfslayer CLI on a loopback btrfs made here and
# always torn down.
#
#     bash tests/cli/cli_test.sh PATH/TO/btrfslayer
#
# Needs root, loop devices and btrfs; without them it skips (exit 77), but
# under CI=true a skip would hide a broken setup, so it fails instead.
# CLI_WRAPPER, if set, prefixes every CLI run, e.g.
#     CLI_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=99"
set -uo pipefail	# no -e: failing commands are what we test

CLI=${1:?usage: cli_test.sh PATH/TO/btrfslayer}
CLI=$(realpath -m -- "$CLI")
read -ra WRAPPER <<<"${CLI_WRAPPER:-}"
unset BTRFSLAYER_HOME

skip() {
	if [[ ${CI:-} == true ]]; then
		echo "cli_test: FAIL: cannot run: $* (CI=true, so this is not a skip)"
		exit 1
	fi
	echo "cli_test: SKIP: $*"
	exit 77
}

# ---- setup and teardown ----------------------------------------------------------

TMP='' IMG='' MNT='' TMPFS=''
cleanup() {
	local rc=$? m dev
	for m in "$TMPFS" "$MNT"; do
		if [[ -n $m ]] && mountpoint -q "$m"; then
			# -R: a CLI that died may have left its home's bind
			# mount; -l: if something holds it busy, detach it anyway.
			umount -R "$m" || umount -l "$m"
		fi
	done
	if [[ -n $IMG ]]; then
		for dev in $(losetup -j "$IMG" | cut -d: -f1); do
			losetup -d "$dev"
		done
		rm -f "$IMG"
	fi
	# --one-file-system: never reach into a mount that would not go away.
	[[ -z $TMP ]] || rm -rf --one-file-system "$TMP"
	exit "$rc"
}
trap cleanup EXIT

setup() {
	((EUID == 0)) || skip "not root"
	[[ -x $CLI ]] || { echo "cli_test: FAIL: $CLI is not executable"; exit 1; }
	command -v mkfs.btrfs >/dev/null || skip "mkfs.btrfs not found (btrfs-progs)"
	command -v losetup >/dev/null || skip "losetup not found"
	TMP=$(mktemp -d /tmp/cli_test.XXXXXX)
	IMG=$(mktemp /var/tmp/cli_test.XXXXXX.img)
	MNT=$TMP/mnt
	TMPFS=$TMP/tmpfs
	mkdir "$MNT" "$TMPFS"
	truncate -s 1G "$IMG"
	local out
	out=$(mkfs.btrfs -q "$IMG" 2>&1) || skip "mkfs.btrfs failed: $out"
	out=$(mount -o loop "$IMG" "$MNT" 2>&1) ||
		skip "cannot mount a loopback btrfs: $out"
	out=$(mount -t tmpfs -o size=4m tmpfs "$TMPFS" 2>&1) ||
		skip "cannot mount a tmpfs: $out"
	H=$MNT/home
}

# ---- assertions --------------------------------------------------------------------

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() {
	FAILED=$((FAILED + 1))
	echo "not ok - $1"
	shift
	local line
	for line in "$@"; do
		echo "#   $line"
	done
}

# t NAME WANT CMD...: run CMD, which must exit WANT; leaves RC, OUT, ERR.
t() {
	local name=$1 want=$2
	shift 2
	OUT=$("$@" 2>"$TMP/stderr")
	RC=$?
	ERR=$(<"$TMP/stderr")
	if ((RC == want)); then
		pass "$name"
	else
		fail "$name" "exit status $RC, want $want" "stdout: $OUT" "stderr: $ERR"
	fi
}

# COND; verdict NAME: pass or fail on the status of the condition just run.
verdict() {
	local rc=$?
	if ((rc == 0)); then
		pass "$1"
	else
		fail "$1" "stdout: $OUT" "stderr: $ERR"
	fi
}

# The usage-error shape: "btrfslayer: <what>" then the hint, nothing on stdout.
usage_shape() {
	[[ -z $OUT && $ERR == "btrfslayer: "* && $ERR == *$'\n'"Try 'btrfslayer help'." ]]
}
# The library-error shape: one line "btrfslayer: <step>: <path>: <reason>".
lib_shape() {
	[[ -z $OUT && $ERR == "btrfslayer: "*": "*": "* && $ERR != *$'\n'* ]]
}
# The CLI on the store under test.
bl() { "${WRAPPER[@]}" "$CLI" --home "$H" "$@"; }
blh() { "${WRAPPER[@]}" "$CLI" "$@"; }

# Validate JSON on stdin with whatever is installed; 2 if nothing is.
json_ok() {
	if command -v python3 >/dev/null; then
		python3 -m json.tool >/dev/null
	elif command -v jq >/dev/null; then
		jq . >/dev/null
	else
		cat >/dev/null
		return 2
	fi
}

# json_check NAME JSON: a parse failure fails, no validator only says so.
json_check() {
	local rc=0
	json_ok <<<"$2" || rc=$?
	case $rc in
	0) pass "$1" ;;
	2) echo "ok - $1 # SKIP neither python3 nor jq"; PASSED=$((PASSED + 1)) ;;
	*) fail "$1" "invalid JSON: $2" ;;
	esac
}

# ---- tests -----------------------------------------------------------------------------

test_basics() {
	t "version exits 0" 0 blh version
	[[ $OUT =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && -z $ERR ]]; verdict "version prints x.y.z"
	t "help exits 0" 0 blh help
	[[ $OUT == "Usage: btrfslayer"* && -z $ERR ]]; verdict "help prints usage on stdout"
	t "--help exits 0" 0 blh --help
	[[ $OUT == "Usage: btrfslayer"* ]]; verdict "--help prints usage"
}

test_usage_errors() {
	local args
	# Each of these is wrong on the command line alone; none may touch $H.
	while IFS= read -r args; do
		# shellcheck disable=SC2086 # the words are the point
		t "usage error: '$args' exits 2" 2 bl $args
		usage_shape; verdict "usage error: '$args' message"
	done <<-'EOF'
		--frob ls
		-x ls
		frobnicate
		create
		create a b
		create --parent
		create --frob a
		rm
		rm a b
		path
		exists
		ls extra
		ls --frob
		status --parent x
		seal --json a
		unseal --walk a
		info --sync a
		version extra
		help extra
	EOF
	t "no command exits 2" 2 bl
	usage_shape && [[ $ERR == *"missing command"* ]]; verdict "no command: message"
	t "--home without a value exits 2" 2 blh --home
	usage_shape && [[ $ERR == *--home* ]]; verdict "--home without a value: message"
	t "unknown command: exits 2" 2 bl frobnicate
	[[ $ERR == *"'frobnicate'"* ]]; verdict "unknown command: names it"
	[[ ! -e $H ]]; verdict "usage errors do not create the home"
}

# Every command counts its operands before it reads one: a missing or an
# extra one is a usage error (2) that names it, never a read past the end
# of argv (the suite also runs under ASan).
test_operand_counts() {
	local args
	while IFS= read -r args; do
		# shellcheck disable=SC2086 # the words are the point
		t "operand count: '$args' exits 2" 2 bl $args
		usage_shape && [[ $ERR == *"$(cut -d' ' -f1 <<<"$args"): missing "* ]]
		verdict "operand count: '$args' says what is missing"
	done <<-'EOF'
		create
		create --read-only --parent a
		rm
		path
		exists
		quota
		quota a
		usage
		usage --json --sync
		usage --walk
		info
		info --json
		seal
		unseal
	EOF
	while IFS= read -r args; do
		# shellcheck disable=SC2086
		t "operand count: '$args' exits 2" 2 bl $args
		usage_shape && [[ $ERR == *"unexpected argument '${args##* }'"* ]]
		verdict "operand count: '$args' names the extra one"
	done <<-'EOF'
		quota a 1G b
		usage a b
		path a b
		exists a b
		info a b
		seal a b
		unseal a b
	EOF
	[[ ! -e $H ]]; verdict "operand count errors do not create the home"
}

test_not_btrfs() {
	t "home on tmpfs exits 1" 1 blh --home "$TMPFS/home" ls
	lib_shape && [[ $ERR == *"$TMPFS"* ]]; verdict "home on tmpfs: library message"
	[[ ! -e $TMPFS/home ]]; verdict "home on tmpfs is not created"
	ln -s "$MNT" "$TMP/link"
	t "home that is a symlink exits 1" 1 blh --home "$TMP/link" ls
	lib_shape; verdict "symlink home: library message"
}

test_create_and_query() {
	t "create base" 0 bl create base
	[[ -z $OUT$ERR ]]; verdict "create prints nothing"
	t "exists base exits 0" 0 bl exists base
	[[ -z $OUT$ERR ]]; verdict "exists prints nothing"
	t "exists missing exits 1" 1 bl exists nope
	[[ -z $OUT$ERR ]]; verdict "exists missing prints nothing"
	t "BTRFSLAYER_HOME is the default home" 0 \
		env BTRFSLAYER_HOME="$H" "${WRAPPER[@]}" "$CLI" exists base

	t "path base" 0 bl path base
	local base=$OUT
	[[ $base == /* ]]; verdict "path is absolute"
	[[ -d $base ]]; verdict "path is a directory"
	[[ $base == "$H/"* ]]; verdict "path is under the home"
	[[ $(stat -c %i "$base") == 256 ]]; verdict "path is a subvolume root"

	t "path of a missing layer exits 1" 1 bl path nope
	lib_shape; verdict "missing layer: message shape"
	[[ $ERR == *"$H"* ]]; verdict "missing layer: message names the path"
	t "rm of a missing layer exits 1" 1 bl rm nope
	lib_shape && [[ $ERR == *"$H"* ]]; verdict "rm missing: message shape"
	t "create existing exits 1" 1 bl create base
	lib_shape; verdict "create existing: message shape"
	t "create with a bad id exits 1" 1 bl create .hidden
	# An argument error has no path: "btrfslayer: <what is wrong>".
	[[ -z $OUT && $ERR == "btrfslayer: "*.hidden* && $ERR != *$'\n'* ]]
	verdict "bad id: message names the id"
	t "create from a missing parent exits 1" 1 bl create --parent nope orphan
	t "... and makes nothing" 1 bl exists orphan
	t "a malformed --storage-opt size is refused" 1 bl create --storage-opt size=1Q sized
	[[ -z $OUT && $ERR == "btrfslayer: "*1Q* ]]; verdict "storage-opt: message names the value"
	t "... and makes nothing" 1 bl exists sized
	t "unknown -o is refused" 1 bl -o frob=1 ls
	[[ $ERR == "btrfslayer: "*frob* ]]; verdict "unknown -o: message names it"
	t "-o btrfs.mount_home=maybe is refused" 1 bl -o btrfs.mount_home=maybe ls
	[[ $ERR == "btrfslayer: "*btrfs.mount_home* ]]; verdict "bad mount_home: message names it"
	t "-o btrfs.mount_home=false" 0 bl -o btrfs.mount_home=false ls
	# each command's open bind-mounts home and its close takes it down
	! mountpoint -q "$H"; verdict "no bind mount is left on home after a command"
	t "an id may start with '-' after --" 0 bl create -- -dash
	t "... and be removed" 0 bl rm -- -dash
}

test_snapshots() {
	local base child
	base=$(bl path base)
	echo "from base" >"$base/file"
	t "create child from base" 0 bl create --parent base child
	child=$(bl path child)
	[[ $(<"$child/file") == "from base" ]]; verdict "child sees the parent's file"
	echo "from child" >"$child/file"
	[[ $(<"$base/file") == "from base" ]]; verdict "parent does not see the child's change"

	t "create read-only snapshot" 0 bl create --read-only --parent base ro
	local ro err
	ro=$(bl path ro)
	err=$(touch "$ro/new" 2>&1)
	[[ $err == *"Read-only file system"* ]]; verdict "read-only snapshot refuses writes"
	[[ -f $ro/file ]]; verdict "read-only snapshot has the parent's data"
	t "create read-only empty layer" 0 bl create --read-only empty-ro
	ro=$(bl path empty-ro)
	err=$(mkdir "$ro/dir" 2>&1)
	[[ $err == *"Read-only file system"* ]]; verdict "read-only empty layer refuses writes"
	t "create with a label of none" 0 bl create --label "" labelled
}

test_listing() {
	t "ls" 0 bl ls
	[[ $OUT == "$(printf '%s\n' base child empty-ro labelled ro)" && -z $ERR ]]
	verdict "ls lists ids in order"
	t "ls --json" 0 bl ls --json
	json_check "ls --json is valid JSON" "$OUT"
	[[ $(grep -c '"id": *"' <<<"$OUT") == 5 ]]; verdict "ls --json has every layer"
	[[ $OUT == *"\"$(bl path child)\""* ]]; verdict "ls --json has the paths"
	t "--json before the command" 0 bl --json ls
	json_check "global --json is valid JSON" "$OUT"
	t "status" 0 bl status
	[[ -n $OUT ]] && ! grep -qv '^[^:]\+: ' <<<"$OUT"; verdict "status is key: value lines"
	t "status --json" 0 bl status --json
	json_check "status --json is valid JSON" "$OUT"
	[[ $OUT == "{"* ]]; verdict "status --json is an object"
	t "-v status" 0 bl -v status
}

# The 1.0 calls: info, seal/unseal, usage --walk (quotas are still off
# here), path/version --json, create's mode= option.
test_calls() {
	t "info base" 0 bl info base
	grep -qx 'parent: ' <<<"$OUT" && grep -qx 'read_only: no' <<<"$OUT" &&
		grep -qx 'has_nested: no' <<<"$OUT" &&
		grep -q '^created: [0-9-]*T[0-9:.]*Z$' <<<"$OUT" &&
		[[ $(sed -n 's/^subvolume_id: //p' <<<"$OUT") == "$(btrfs inspect-internal rootid "$(bl path base)")" ]]
	verdict "info base: no parent, writable, its subvolume id"
	t "info child" 0 bl info child
	grep -qx 'parent: base' <<<"$OUT"; verdict "info child: parent is base"
	t "info --json child" 0 bl info --json child
	json_check "info --json is valid JSON" "$OUT"
	[[ $OUT == *'"parent": "base"'* && $OUT == *'"read_only": false'* ]]
	verdict "info --json: parent and flags"
	t "info --json base" 0 bl --json info base
	[[ $OUT == *'"parent": null'* ]]; verdict "info --json: no parent is null"
	t "info of a missing layer exits 1" 1 bl info nope
	lib_shape && [[ $ERR == *"$H"* ]]; verdict "info missing: message names the path"

	local child err
	child=$(bl path child)
	t "seal child" 0 bl seal child
	[[ -z $OUT$ERR ]]; verdict "seal prints nothing"
	err=$(touch "$child/sealed" 2>&1)
	[[ $err == *"Read-only file system"* ]]; verdict "a sealed layer refuses writes"
	[[ $(bl info child) == *$'\nread_only: yes\n'* ]]; verdict "info shows it sealed"
	t "seal again" 0 bl seal child
	t "unseal child" 0 bl unseal child
	touch "$child/unsealed" && rm "$child/unsealed"; verdict "an unsealed layer takes writes"
	t "seal of a missing layer exits 1" 1 bl seal nope
	lib_shape; verdict "seal missing: message shape"

	t "usage --walk with quotas off" 0 bl usage --walk base
	grep -qx 'quota_mode: off' <<<"$OUT" && grep -qx 'walk_inodes: 2' <<<"$OUT" &&
		grep -q '^walk_bytes: [0-9]\+$' <<<"$OUT"
	verdict "usage --walk: the layer's root and file, quota mode off"
	t "usage --walk --json" 0 bl usage --walk --json base
	json_check "usage --walk --json is valid JSON" "$OUT"
	[[ $OUT == *'"walk_inodes": 2'* ]]; verdict "usage --walk --json has the inode count"

	t "path --json" 0 bl path --json base
	json_check "path --json is valid JSON" "$OUT"
	[[ $OUT == *"\"path\": \"$(bl path base)\""* ]]; verdict "path --json has the path"
	t "version --json" 0 blh version --json
	json_check "version --json is valid JSON" "$OUT"

	t "create with mode=0555" 0 bl create --storage-opt mode=0555 moded
	[[ $(stat -c %a "$(bl path moded)") == 555 ]]; verdict "mode=0555: the layer root's mode"
	t "rm moded" 0 bl rm moded
	t "create with mode=999 exits 1" 1 bl create --storage-opt mode=999 moded
	[[ $ERR == *mode=*999* ]]; verdict "bad mode: message names it"
	t "... and makes nothing" 1 bl exists moded
}

# A home whose name needs escaping in JSON: quote, backslash, tab, newline.
test_json_escaping() {
	local odd=$MNT/$'we"ird\\ \t\nhome'
	t "odd home: create" 0 blh --home "$odd" create a
	t "odd home: ls --json" 0 blh --home "$odd" ls --json
	json_check "odd home: ls --json is valid JSON" "$OUT"
	if command -v python3 >/dev/null; then
		local got
		got=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["path"], end="")' <<<"$OUT")
		[[ $got == "$odd/"* ]]; verdict "odd home: the JSON path decodes to the real one"
	fi
	t "odd home: status --json" 0 blh --home "$odd" status --json
	json_check "odd home: status --json is valid JSON" "$OUT"
}

test_remove() {
	local child
	child=$(bl path child)
	btrfs subvolume create "$child/nested" >/dev/null
	btrfs subvolume create "$child/nested/deeper" >/dev/null
	btrfs property set -ts "$child/nested/deeper" ro true
	t "rm a layer with nested subvolumes" 0 bl rm child
	[[ -z $OUT$ERR ]]; verdict "rm prints nothing"
	t "... it no longer exists" 1 bl exists child
	! btrfs subvolume list "$MNT" | grep -q nested; verdict "... nor do its nested subvolumes"
	t "rm again exits 1" 1 bl rm child
	t "rm a read-only layer" 0 bl rm ro
	t "create again after rm" 0 bl create child
	t "rm it" 0 bl rm child
	t "ls after rm" 0 bl ls
	[[ $OUT == "$(printf '%s\n' base empty-ro labelled)" ]]; verdict "ls shows what is left"
}

test_quota() {
	t "usage with quotas off exits 1" 1 bl usage base
	lib_shape && [[ $ERR == *"quotas are off"* ]]; verdict "usage, quotas off: says so"
	t "create with size=64M" 0 bl create --storage-opt size=64M sized
	t "usage" 0 bl usage --sync sized
	grep -qx 'limit: 67108864' <<<"$OUT"; verdict "usage shows the limit"
	grep -qx 'recorded_limit: 67108864' <<<"$OUT"; verdict "usage shows the recorded limit"
	grep -q '^referenced: [0-9]\+$' <<<"$OUT"; verdict "usage shows referenced bytes"
	t "usage --json" 0 bl usage --json sized
	json_check "usage --json is valid JSON" "$OUT"
	[[ $OUT == *'"limit": 67108864'* ]]; verdict "usage --json has the limit as a number"
	t "quota sets a new limit" 0 bl quota sized 128M
	[[ $(bl usage sized) == *$'\nlimit: 134217728\n'* ]]; verdict "... and usage shows it"
	t "quota none clears it" 0 bl quota sized none
	[[ $(bl usage sized) == *$'\nlimit: 0\nrecorded_limit: 0\n'* ]]
	verdict "... and usage shows no limit"
	t "quota with a bad size exits 2" 2 bl quota sized 12x
	usage_shape; verdict "quota bad size: usage message"
	t "quota of a missing layer exits 1" 1 bl quota nope 1G
	lib_shape; verdict "quota missing layer: message shape"
	t "quota below btrfs.min_space exits 1" 1 bl -o btrfs.min_space=1G quota sized 512M
	[[ $ERR == *min_space* ]]; verdict "... and names btrfs.min_space"
	t "status after quotas" 0 bl status
	grep -q '^quota_mode: \(simple\|qgroup\)$' <<<"$OUT"; verdict "status shows the quota mode"
	t "rm a layer with a limit" 0 bl rm sized
	[[ ! -e $H/quotas/sized ]]; verdict "... and its quota file"
}

# quota: only "none" clears a limit; 0 and 2^64-1 (the kernel's "no limit")
# are refused as btrfslayer_set_quota() refuses them, and change nothing.
# usage shows the exclusive limit an administrator set.
test_quota_sizes() {
	t "create a layer limited to 64M" 0 bl create --storage-opt size=64M q
	local size
	for size in 0 0k 0.5; do
		t "quota q $size exits 1" 1 bl quota q "$size"
		[[ -z $OUT && $ERR == "btrfslayer: invalid size 0: a limit must be above 0" ]]
		verdict "quota q $size: the library's message for size 0"
	done
	t "quota q 2^64-1 exits 1" 1 bl quota q 18446744073709551615
	[[ -z $OUT && $ERR == "btrfslayer: invalid size 18446744073709551615: "*"no limit"* ]]
	verdict "quota q 2^64-1: says it means no limit"
	[[ $(bl usage q) == *$'\nlimit: 67108864\nrecorded_limit: 67108864\n'* ]]
	verdict "... and the limit is still 64M"
	[[ $(<"$H/quotas/q") == 67108864 ]]; verdict "... and so is its record"
	# an exclusive limit an administrator set: no open, get (path) or
	# usage touches it, and usage shows it beside the size limit
	btrfs qgroup limit -e 4M "$(bl path q)"
	t "usage after an exclusive limit was set" 0 bl usage q
	grep -qx 'exclusive_limit: 4194304' <<<"$OUT" && grep -qx 'limit: 67108864' <<<"$OUT"
	verdict "usage shows the exclusive limit, kept, and the size limit"
	btrfs qgroup show -re --raw "$MNT" | grep -q "^0/$(bl usage q | sed -n 's/^subvolume_id: //p') .* 67108864 *4194304 "
	verdict "... as the kernel has them"
	t "usage --json" 0 bl usage --json q
	json_check "usage --json with exclusive_limit is valid JSON" "$OUT"
	[[ $OUT == *'"exclusive_limit": 4194304,'* ]]; verdict "usage --json has the exclusive limit"
	t "quota q none" 0 bl quota q none
	[[ $(bl usage q) == *$'\nlimit: 0\nrecorded_limit: 0\nexclusive_limit: 0\n'* ]]
	verdict "... clears the size limit"
	t "rm q" 0 bl rm q
}

# --uidmap/--gidmap: the syntax is the CLI's (exit 2), the maps' sense the
# library's (exit 1).  A home records its maps: a command without maps uses
# them and re-owns nothing, one with other maps is refused.
test_idmaps() {
	local M=$MNT/mapped arg
	for arg in 0:1 x:1:2 0:100000:65536:1 0:100000: :1:2 0:4294967296:1 -1:0:1 ''; do
		t "--uidmap '$arg' is a usage error" 2 bl --uidmap "$arg" ls
		usage_shape && [[ $ERR == *"--uidmap '$arg'"* ]]
		verdict "--uidmap '$arg': usage message names it"
	done
	t "--gidmap 0:1 is a usage error" 2 bl --gidmap 0:1 ls
	[[ $ERR == *"--gidmap '0:1'"* ]]; verdict "--gidmap: usage message names it"
	t "--uidmap without container root is refused" 1 \
		blh --home "$M" --uidmap 1:100000:10 ls
	[[ $ERR == *"container id 0 is not mapped"* ]]; verdict "... by the library, saying why"
	[[ ! -e $M ]]; verdict "... before anything is made"

	local maps=(--uidmap 0:100000:65536 --gidmap 0:100000:1000 --gidmap 1000:300000:10)
	t "create in a remapped home" 0 blh --home "$M" "${maps[@]}" create l
	[[ $(stat -c %u:%g "$M/subvolumes/l") == 100000:100000 ]]
	verdict "... the layer belongs to the remapped root"
	[[ $(stat -c %u:%g:%a "$M") == 0:100000:710 ]]; verdict "... home has the CVE-2021-21284 layout"
	t "ls without maps" 0 blh --home "$M" ls
	[[ $(stat -c %u:%g:%a "$M" "$M/subvolumes") == $'0:100000:710\n0:100000:710' ]]
	verdict "... re-owns nothing"
	t "create without maps" 0 blh --home "$M" create by-admin
	[[ $(stat -c %u:%g "$M/subvolumes/by-admin") == 100000:100000 ]]
	verdict "... uses the maps home records"
	t "the same maps in another order" 0 blh --home "$M" --uidmap 0:100000:65536 \
		--gidmap 1000:300000:10 --gidmap 0:100000:1000 ls
	t "other maps are refused" 1 blh --home "$M" --uidmap 0:200000:65536 ls
	lib_shape && [[ $ERR == *"$M"* && $ERR == *0:100000:65536* && $ERR == *0:200000:65536* ]]
	verdict "... naming home and both maps"
	[[ $(stat -c %u:%g:%a "$M") == 0:100000:710 ]]; verdict "... and changing nothing"
}

test_diff() {
	local img ctr
	t "create an image to diff" 0 bl create d-base
	img=$(bl path d-base)
	mkdir -p "$img/etc/ssl" "$img/var/log/old"
	echo hosts >"$img/etc/hosts"
	echo c >"$img/etc/ssl/c"
	echo a >"$img/var/log/old/a"
	t "seal it" 0 bl create --read-only --parent d-base d-img
	t "create a container" 0 bl create --parent d-img d-ctr
	ctr=$(bl path d-ctr)
	echo more >>"$ctr/etc/hosts"
	rm -rf "$ctr/var/log/old"
	mkdir "$ctr/new"
	mv "$ctr/etc/ssl" "$ctr/ssl"
	local want=$'C /etc\nC /etc/hosts\nD /etc/ssl\nA /new\nA /ssl\nA /ssl/c\nC /var\nC /var/log\nD /var/log/old'
	t "diff" 0 bl diff --parent d-img d-ctr
	[[ $OUT == "$want" && -z $ERR ]]; verdict "diff prints docker diff's lines in path order"
	t "diff --walk" 0 bl diff --walk --parent d-img d-ctr
	[[ $OUT == "$want" ]]; verdict "diff --walk prints the same"
	t "diff --json" 0 bl diff --json --parent d-img d-ctr
	json_check "diff --json is JSON" "$OUT"
	[[ $OUT == *'{"kind": "D", "path": "/etc/ssl"}'* ]]; verdict "diff --json names kind and path"
	t "diff without a parent" 0 bl diff d-base
	[[ $OUT == *"A /etc/hosts"* && $OUT != *"C "* ]]; verdict "without a parent all is added"
	t "diff of no layer" 1 bl diff --parent d-img nosuch
	lib_shape; verdict "diff of no layer: message"
	t "diff without an id" 2 bl diff --parent d-img
	usage_shape; verdict "diff without an id: message"
	[[ -z $(ls -A "$H/subvolumes/.staging") ]]; verdict "diff leaves no temporary behind"
}

setup
test_idmaps
test_basics
test_usage_errors
test_operand_counts
test_not_btrfs
test_create_and_query
test_snapshots
test_listing
test_calls
test_json_escaping
test_remove
test_quota
test_quota_sizes
test_diff

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
