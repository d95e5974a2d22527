#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ABI gate (scripts/abi-check.sh) itself: on a small library with the
# shape of ours (a size-carrying struct, a fixed struct, a version node),
# a baseline is made as scripts/abi-baseline.sh makes ours, then each case
# builds a changed library and checks the gate's verdict:
#   pass  nothing changed; a function added in a new node; a member added
#         at the end of a size-carrying struct (listed in the suppressions)
#   fail  a function added to the baseline's node; a function removed; a
#         changed parameter type; a changed return type; a member inserted
#         before the end of a size-carrying struct; a fixed struct grown; a
#         library without debug info
# Needs gcc, nm and libabigail's abidw/abidiff: without them it skips (77),
# and fails under CI=true.
#
#     bash tests/abi/gate.sh      (GATE_KEEP=1 keeps its temporary directory)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gate=$here/../../scripts/abi-check.sh

for tool in abidw abidiff gcc nm; do
	if ! command -v "$tool" >/dev/null; then
		if [[ ${CI:-} == true ]]; then
			echo "gate: FAILED: $tool is missing (CI=true: cannot skip)" >&2
			exit 1
		fi
		echo "gate: skipped: $tool is missing (Debian: abigail-tools, gcc, binutils)"
		exit 77
	fi
done

work=$(mktemp -d)
trap '[[ -n ${GATE_KEEP:-} ]] || rm -rf "$work"' EXIT
cat >"$work/suppr" <<'SUPPR'
[suppress_type]
  name = grows
  type_kind = struct
  has_data_member_inserted_at = end
SUPPR

# build NAME: a library from $work/NAME/{t.h,t.c,t.sym}, with -g unless
# NODEBUG is set.  The variables below are the parts a case changes.
GROWS='uint64_t a; uint64_t b;'
FIXED='uint32_t x;'
DECLS='int t_get(struct grows *out, size_t size); int t_fixed(const struct fixed *f); int t_plain(int v);'
DEFS='int t_get(struct grows *out, size_t size) { (void)out; return (int)size; }
int t_fixed(const struct fixed *f) { return f ? 1 : 0; }
int t_plain(int v) { return v; }'
SYM='T_1.0 { global: t_get; t_fixed; t_plain; local: *; };'
build() {
	local d=$work/$1 debug=-g
	[[ -n ${NODEBUG:-} ]] && debug=-g0
	mkdir -p "$d/include"
	printf '#include <stddef.h>\n#include <stdint.h>\n#define T_API __attribute__((visibility("default")))\nstruct grows { %s };\nstruct fixed { %s };\n%s\n' \
		"$GROWS" "$FIXED" "$(sed 's/\(^\|; \)int /\1T_API int /g' <<<"$DECLS")" >"$d/include/t.h"
	printf '#include "t.h"\n%s\n' "$DEFS" >"$d/t.c"
	printf '%s\n' "$SYM" >"$d/t.sym"
	gcc -shared -fPIC -fvisibility=hidden $debug -I"$d/include" -Wl,--version-script="$d/t.sym" \
		-Wl,-soname,libt.so.1 -o "$d/libt.so" "$d/t.c"
}

build base
abidw --headers-dir "$work/base/include" --drop-private-types --no-corpus-path \
	--no-comp-dir-path --short-locs --out-file "$work/base.abi" "$work/base/libt.so"

failures=0
# expect pass|fail NAME: build NAME with the current variables, run the gate
expect() {
	local want=$1 name=$2 got=pass
	build "$name"
	ABI_BASELINE=$work/base.abi ABI_HEADERS=$work/$name/include ABI_SUPPRESSIONS=$work/suppr \
		ABI_LIBRARY=$work/$name/libt.so bash "$gate" >"$work/$name.log" 2>&1 || got=fail
	if [[ $got == "$want" ]]; then
		echo "ok: $name: the gate says $got"
	else
		echo "FAILED: $name: the gate says $got, want $want; its output:" >&2
		sed 's/^/  /' "$work/$name.log" >&2
		failures=$((failures + 1))
	fi
}

# Each case changes what it needs in locals (bash's dynamic scope: build
# sees them), then asks the gate.
expect pass same
case_added_in_new_node() {
	local DECLS="$DECLS int t_new(void);" DEFS=$DEFS$'\nint t_new(void) { return 0; }'
	local SYM="$SYM T_1.1 { global: t_new; } T_1.0;"
	expect pass added-in-new-node
}
case_sized_struct_grown_at_end() {
	local GROWS='uint64_t a; uint64_t b; uint64_t c;'
	expect pass sized-struct-grown-at-end
}
case_added_to_old_node() {
	local DECLS="$DECLS int t_new(void);" DEFS=$DEFS$'\nint t_new(void) { return 0; }'
	local SYM='T_1.0 { global: t_get; t_fixed; t_plain; t_new; local: *; };'
	expect fail added-to-old-node
}
case_removed() {
	local DECLS='int t_get(struct grows *out, size_t size); int t_fixed(const struct fixed *f);'
	local DEFS='int t_get(struct grows *out, size_t size) { (void)out; return (int)size; }
int t_fixed(const struct fixed *f) { return f ? 1 : 0; }'
	local SYM='T_1.0 { global: t_get; t_fixed; local: *; };'
	expect fail removed
}
case_parameter_type_changed() {
	local DECLS=${DECLS/t_plain(int v)/t_plain(long v)}
	local DEFS=${DEFS/t_plain(int v) \{ return v;/t_plain(long v) \{ return (int)v;}
	expect fail parameter-type-changed
}
case_return_type_changed() {
	local DECLS=${DECLS/int t_plain/long t_plain}
	local DEFS=${DEFS/int t_plain/long t_plain}
	DECLS=${DECLS/; long/; T_API long}
	expect fail return-type-changed
}
case_sized_struct_member_inserted() {
	local GROWS='uint64_t a; uint64_t inserted; uint64_t b;'
	expect fail sized-struct-member-inserted
}
case_fixed_struct_grown() {
	local FIXED='uint32_t x; uint32_t y;'
	expect fail fixed-struct-grown
}
case_no_debug_info() {
	local NODEBUG=1
	expect fail no-debug-info
}
case_added_in_new_node
case_sized_struct_grown_at_end
case_added_to_old_node
case_removed
case_parameter_type_changed
case_return_type_changed
case_sized_struct_member_inserted
case_fixed_struct_grown
case_no_debug_info

if ((failures)); then
	echo "gate: $failures case(s) FAILED" >&2
	exit 1
fi
echo "gate: every case gave the expected verdict"
