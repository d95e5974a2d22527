#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Static analysis with cppcheck of the library, the CLI, the tests and the
# fuzz targets; fails on any finding.  Suppressions, each with its reason,
# are in .cppcheck-suppressions.
#
#     bash scripts/lint.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "lint: cppcheck $(cppcheck --version | sed 's/^Cppcheck //') on src tools tests fuzz"
cppcheck --enable=warning,style,performance,portability --std=c11 \
	--library=posix --error-exitcode=1 --quiet --inline-suppr \
	--suppressions-list=.cppcheck-suppressions \
	-D__GNUC__ -D__linux__ -D_GNU_SOURCE \
	-I include -I src -I tests/integration -I fuzz \
	src tools tests fuzz
echo "lint: clean"
