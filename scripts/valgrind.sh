#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The integration tests of a normal (not sanitized) build under valgrind's
# memcheck: any memory error, or any definitely or indirectly lost byte,
# fails.  The programs they spawn (mkfs.btrfs, mount, losetup) are not
# traced.  Needs root, like the tests themselves.
#
#     bash scripts/valgrind.sh [BUILD_DIR]      (default: build, already built)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${1:-build}
tests=(tests/integration/integration_layers tests/integration/integration_quota
	tests/integration/integration_host tests/integration/integration_recovery
	tests/integration/integration_calls
	tests/hostile/hostile tests/oldkernel/oldkernel tests/names/names
	tests/integration/integration_modes tests/rootless/rootless
	tests/integration/integration_tar)
# integration_tar's random export/apply cases: fewer under memcheck
export TAR_CASES=${TAR_CASES:-8}
status=0
for t in "${tests[@]}"; do
	exe=$dir/$t
	name=$(basename "$t")
	log=$dir/valgrind-$name.log
	if [[ ! -x $exe ]]; then
		echo "valgrind: $exe is missing; build $dir/ first" >&2
		exit 1
	fi
	rc=0
	valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect --track-origins=yes \
		--trace-children=no --log-file="$log" \
		"$exe" >"$dir/valgrind-$name.out" 2>&1 || rc=$?
	errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n1)
	definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n1)
	indirect=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n1)
	summary="${errors:-?} errors, ${definite:-0} bytes definitely and ${indirect:-0} bytes indirectly lost"
	if ((rc == 77)); then
		echo "valgrind: $name skipped (it cannot run here; see $dir/valgrind-$name.out)"
	elif ((rc != 0)) || [[ $errors != 0 ]]; then
		echo "valgrind: $name FAILED (exit $rc): $summary; see $log" >&2
		grep -E '^==[0-9]+== +(Invalid|Conditional|Syscall param|Mismatched|[0-9,]+ .*bytes .* lost)' \
			"$log" | head -20 >&2 || true
		tail -5 "$dir/valgrind-$name.out" >&2
		status=1
	else
		echo "valgrind: $name: $summary"
	fi
done
bash tests/sweep-mounts.sh
exit $status
