#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The three lists of the public API must name the same symbols:
#   - what the library exports (nm -D --defined-only), with its version node;
#   - what include/btrfslayer.h declares with BTRFSLAYER_API;
#   - what src/libbtrfslayer.sym lists, node by node.
# A symbol in one list and missing from another fails, naming it and where
# it is missing; so does an exported symbol under another node than the one
# the .sym file gives it.
#
#     bash tests/abi/symbols.sh LIBRARY.so include/btrfslayer.h src/libbtrfslayer.sym
set -euo pipefail

if (($# != 3)); then
	echo "usage: $0 LIBRARY.so HEADER SYMFILE" >&2
	exit 2
fi
lib=$1 header=$2 symfile=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Exported: "name@node" of every defined dynamic symbol, version nodes
# themselves (type A) aside.  "@@" marks the default version.
nm -D --defined-only "$lib" |
	awk '$2 != "A" { sub(/@@/, "@", $3); print $3 }' | sort -u >"$work/exported"

# Declared: the name before the first "(" (or the ";" of a variable) after
# each BTRFSLAYER_API, comments and preprocessor lines taken out first, the
# whole header read as one line so a declaration may span several.
sed -e 's|/\*.*\*/||g' "$header" |
	awk '/\/\*/ { skip = 1 } !skip && !/^[ \t]*#/ { print } /\*\// { skip = 0 }' |
	tr '\n' ' ' |
	grep -oE 'BTRFSLAYER_API[^;(]*[;(]' |
	sed -E 's/[[:space:]]*[;(]$//; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)$/\1/' |
	sort -u >"$work/declared"

# Listed: "name@node" of each name in a global: section of the .sym file.
sed -e 's|/\*.*\*/||g' "$symfile" |
	awk '/\/\*/ { skip = 1 } !skip { print } /\*\// { skip = 0 }' |
	awk '
		/^[ \t]*[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); scope = ""; next }
		/^[ \t]*global:/ { scope = "global"; next }
		/^[ \t]*local:/ { scope = "local"; next }
		/^[ \t]*\}/ { node = ""; next }
		scope == "global" && match($0, /[A-Za-z_][A-Za-z0-9_]*[ \t]*;/) {
			name = substr($0, RSTART, RLENGTH); sub(/[ \t]*;$/, "", name)
			print name "@" node
		}' | sort -u >"$work/listed"

status=0
# report LEFT RIGHT WHAT: names in file LEFT and not in RIGHT
report() {
	local missing
	missing=$(comm -23 "$1" "$2")
	if [[ -n $missing ]]; then
		echo "symbols: $3:" >&2
		sed 's/^/  /' <<<"$missing" >&2
		status=1
	fi
}
cut -d@ -f1 "$work/exported" | sort -u >"$work/exported.names"
cut -d@ -f1 "$work/listed" | sort -u >"$work/listed.names"

report "$work/declared" "$work/exported.names" "declared in $header but not defined by $lib"
report "$work/exported.names" "$work/declared" "exported by $lib but not declared in $header"
report "$work/declared" "$work/listed.names" "declared in $header but not in $symfile"
report "$work/listed.names" "$work/declared" "in $symfile but not declared in $header"
# both have every name now or were reported above: compare the nodes
report "$work/exported" "$work/listed" "exported by $lib under another version node than $symfile gives (name@node)"

if [[ ! -s $work/declared ]]; then
	echo "symbols: no BTRFSLAYER_API declaration found in $header" >&2
	status=1
fi
if ((status == 0)); then
	echo "symbols: $(wc -l <"$work/declared") symbols, the same in the library, the header and the version script"
fi
exit $status
