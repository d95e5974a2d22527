#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ABI gate: the library of a normal build against the 1.0 baseline
# abi/libbtrfslayer.abi (libabigail's abidiff).  Passes only when nothing
# changed but what 1.x allows:
#   - new functions (or variables), each in a version node that is not in
#     the baseline (BTRFSLAYER_1.1, ...): none added to, removed from or
#     moved out of BTRFSLAYER_1.0;
#   - growth at the end of the size-carrying structs listed in
#     abi/libbtrfslayer.suppr.
# Anything else fails: a removed symbol, a changed signature, a changed
# layout, or abidiff failing to run or finding no debug info.
#
#     bash scripts/abi-check.sh [BUILD_DIR]      (default: build; built if missing)
#
# How the exit bits of abidiff are read: bit 1 is an error, bit 2 a usage
# error, bit 4 "the ABI changed", bit 8 "incompatibly" -- but layout and
# signature breaks set only bit 4, and so does an added symbol.  So abidiff
# runs with --no-added-syms, where only a break can set any bit, and must
# exit 0; then the added symbols, which it no longer reports, are checked
# here against the baseline's version nodes.  abidiff's full report
# (added symbols included) is printed for the log.
#
# ABI_BASELINE, ABI_HEADERS, ABI_SUPPRESSIONS and ABI_LIBRARY replace the
# baseline, the header directory, the suppression file and the library
# (tests/abi/gate.sh checks the gate itself on small libraries this way).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${1:-build}
baseline=${ABI_BASELINE:-abi/libbtrfslayer.abi}
headers=${ABI_HEADERS:-include}
suppressions=${ABI_SUPPRESSIONS:-abi/libbtrfslayer.suppr}
lib=${ABI_LIBRARY:-}

if [[ -z $lib ]]; then
	lib=$dir/libbtrfslayer.so
	if [[ ! -e $lib ]]; then
		echo "abi: building $dir/"
		cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBTRFSLAYER_WERROR=ON >/dev/null
		cmake --build "$dir" -j"$(nproc)" --target btrfslayer >/dev/null
	fi
fi
for f in "$baseline" "$suppressions" "$lib"; do
	[[ -e $f ]] || { echo "abi: $f is missing" >&2; exit 1; }
done
command -v abidiff >/dev/null || { echo "abi: abidiff is missing (Debian: abigail-tools)" >&2; exit 1; }

# abidiff compares types only from DWARF; without it, it sees names alone and
# passes any layout or signature change (and --fail-no-debug-info does not
# catch that in libabigail 2.2).
# (readelf's output taken whole first: with pipefail, grep -q quitting early
# would fail the pipe by SIGPIPE on readelf)
sections=$(readelf -S "$lib")
if ! grep -q '[.]debug_info' <<<"$sections"; then
	echo "abi: FAILED: $lib has no DWARF (.debug_info): build with -g (RelWithDebInfo)" >&2
	exit 1
fi

status=0
common=(--headers-dir2 "$headers" --suppressions "$suppressions" --fail-no-debug-info)

# 1. Breaks: any exit status but 0 fails.
echo "abi: abidiff --no-added-syms ${common[*]} $baseline $lib"
rc=0
report=$(abidiff --no-added-syms "${common[@]}" "$baseline" "$lib" 2>&1) || rc=$?
if ((rc != 0)); then
	printf '%s\n' "$report" >&2
	echo "abi: FAILED: abidiff exit status $rc (1 error, 2 usage, 4 ABI change, 8 incompatible)" >&2
	status=1
fi

# 2. The full report, additions included (exit 0 or 4 once step 1 passed).
echo "abi: abidiff ${common[*]} $baseline $lib"
abidiff "${common[@]}" "$baseline" "$lib" 2>&1 | sed 's/^/  /' || true

# 3. Symbols, as name@node: the baseline's from its ELF symbol lists, the
# library's from its dynamic symbol table.
old=$(sed -n "s/.*<elf-symbol name='\([^']*\)' version='\([^']*\)'.*is-defined='yes'.*/\1@\2/p" \
	"$baseline" | sort -u)
new=$(nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@@/, "@", $3); print $3 }' | sort -u)
old_nodes=$(sed 's/.*@//' <<<"$old" | sort -u)
if [[ -z $old ]]; then
	echo "abi: FAILED: no symbol in $baseline" >&2
	exit 1
fi
# every symbol of the baseline is still there, under its node
gone=$(comm -23 <(printf '%s\n' "$old") <(printf '%s\n' "$new"))
if [[ -n $gone ]]; then
	echo "abi: FAILED: symbols of the baseline missing (or moved to another node):" >&2
	sed 's/^/  /' <<<"$gone" >&2
	status=1
fi
# every symbol added is in a node the baseline does not have
added=$(comm -13 <(cut -d@ -f1 <<<"$old" | sort -u) \
	<(cut -d@ -f1 <<<"$new" | sort -u))
for name in $added; do
	node=$(grep -m1 "^$name@" <<<"$new" | sed 's/.*@//')
	if [[ -z $node ]] || grep -qxF "$node" <<<"$old_nodes"; then
		echo "abi: FAILED: $name is new but added to ${node:-no} version node, which the baseline has: a new symbol goes in a new node" >&2
		status=1
	else
		echo "abi: added $name@$node (a new node)"
	fi
done

if ((status == 0)); then
	echo "abi: OK: $(wc -l <<<"$old") symbols of the baseline unchanged, $(wc -w <<<"$added") added in new nodes"
fi
exit $status
