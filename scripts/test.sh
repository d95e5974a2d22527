#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The whole test suite, as root on Debian 12, from the repository root:
#
#     bash scripts/test.sh
#
# Installs what is missing, then, each stage failing the run:
#   lint      cppcheck on the sources (scripts/lint.sh)
#   asan      build with AddressSanitizer + UndefinedBehaviorSanitizer, run
#             every test (unit, integration, CLI, hostile-input suite)
#   normal    the same with a normal build
#   abi       the normal build's library against the 1.0 baseline
#             (scripts/abi-check.sh)
#   consumer  install into a temporary prefix, then build and run a program
#             against it with pkg-config and with find_package, and the Go and
#             Python bindings' suites against it (scripts/consumer-test.sh)
#   go        the Go binding: gofmt, go vet, go test -race (scripts/go-test.sh)
#   python    the Python binding: mypy --strict, pytest (scripts/py-test.sh)
#   snapshotter  the containerd snapshotter: containerd's snapshotter suite
#             through the daemon, and end to end under a real containerd
#             (scripts/snapshotter-test.sh)
#   tsan      the tests again with ThreadSanitizer (tests/stress/ above all): any
#             report of a data race or a lock-order inversion fails
#   valgrind  the integration tests and the hostile suite of the normal
#             build under memcheck (scripts/valgrind.sh)
#   fuzz      each libFuzzer target for FUZZ_SECONDS, default 30
#             (scripts/fuzz.sh)
# The integration tests make their own loopback btrfs and need root; they
# skip without it, except with CI=true, where a test that cannot run fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$SECONDS
stage_start=$SECONDS
timings=()
stage_done() {
	timings+=("$1 $((SECONDS - stage_start))s")
	stage_start=$SECONDS
}

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
deps_install
stage_done deps

build_suite() {
	local dir=$1
	shift
	echo "test: building $dir/ $*"
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBTRFSLAYER_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
}

run_suite() {
	build_suite "$@"
	(cd "$1" && ctest --output-on-failure)
}

# TSan's runtime aborts ("unexpected memory mapping") under the large
# vm.mmap_rnd_bits of some 6.x kernels: run without address randomisation,
# for ctest and what it starts only, where personality(2) is allowed.
tsan_suite() {
	local norandom=()
	if setarch "$(uname -m)" -R true 2>/dev/null; then
		norandom=(setarch "$(uname -m)" -R)
	fi
	build_suite build-tsan -DBTRFSLAYER_TSAN=ON
	(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
		"${norandom[@]}" ctest --output-on-failure)
}

bash scripts/lint.sh
stage_done lint
run_suite build-asan -DBTRFSLAYER_SANITIZE=ON
stage_done asan
run_suite build
stage_done normal
bash scripts/abi-check.sh build
stage_done abi
bash scripts/consumer-test.sh
stage_done consumer
bash scripts/go-test.sh build
stage_done go
bash scripts/py-test.sh build
stage_done python
bash scripts/snapshotter-test.sh build
stage_done snapshotter
tsan_suite
stage_done tsan
bash scripts/valgrind.sh build
stage_done valgrind
bash scripts/fuzz.sh
stage_done fuzz

echo "test: all stages passed in $((SECONDS - start))s (${timings[*]})"
