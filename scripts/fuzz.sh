#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and run
# each for FUZZ_SECONDS (default 30) from its seed corpus in fuzz/corpus/:
#
#     bash scripts/fuzz.sh                 every target
#     FUZZ_SECONDS=300 bash scripts/fuzz.sh size options
#
# The seeds are read only: what libFuzzer finds goes to a temporary corpus,
# and a crash's input to build-fuzz/artifacts/.  Fails on any crash, leak,
# timeout or sanitizer report, and prints the executions of each target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${FUZZ_SECONDS:-30}
targets=("$@")
if ((${#targets[@]} == 0)); then
	targets=(size options id quotafile sendstream apply)
fi

echo "fuzz: building build-fuzz/"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBTRFSLAYER_WERROR=ON -DBTRFSLAYER_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

work=$(mktemp -d /tmp/btrfslayer-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/artifacts
status=0
for t in "${targets[@]}"; do
	seeds=fuzz/corpus/$t
	[[ -d $seeds ]] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
	mkdir -p "$work/$t"
	log=build-fuzz/fuzz_$t.log
	# a layer tar needs room: headers and data come in 512-byte blocks
	max_len=8192
	[[ $t == apply ]] && max_len=65536
	# first corpus dir is the one libFuzzer writes to: the temporary one
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -print_final_stats=1 \
		-timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
		-artifact_prefix="build-fuzz/artifacts/$t-" \
		"$work/$t" "$seeds" >"$log" 2>&1; then
		rc=0
	else
		rc=$?
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	if ((rc != 0)) || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken' "$log"; then
		echo "fuzz: $t FAILED (exit $rc); see $log:" >&2
		grep -E 'ERROR|runtime error|invariant|Test unit written' "$log" | head -20 >&2 || true
		status=1
	else
		echo "fuzz: $t: ${execs:-?} executions in ${seconds}s, no crash or sanitizer report"
	fi
done
exit $status
