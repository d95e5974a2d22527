#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The whole test suite, as root on Debian 12, from the repository root:
#
#     bash scripts/test.sh
#
# Installs what is missing, builds with warnings as errors, and runs every
# test twice: a normal build, then one with AddressSanitizer and
# UndefinedBehaviorSanitizer.  The integration tests make their own loopback
# btrfs and need root; they skip without it, except with CI=true, where a
# test that cannot run fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
deps_install

run_suite() {
	local dir=$1
	shift
	echo "test: building $dir/ $*"
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBTRFSLAYER_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
	(cd "$dir" && ctest --output-on-failure)
}

run_suite build-asan -DBTRFSLAYER_SANITIZE=ON
run_suite build
