#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# (Re)write the ABI baseline abi/libbtrfslayer.abi from the library of a
# normal build (built if missing), with libabigail's abidw.  Run it for the
# 1.0.0 release only: within 1.x the baseline never changes (README,
# "Stability"); scripts/abi-check.sh compares every later build with it.
#
#     bash scripts/abi-baseline.sh [BUILD_DIR]      (default: build)
#
# The baseline names no path of the machine it was made on (no corpus path,
# no compilation directory, file names without directories), so it is the
# same wherever it is made from the same library.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${1:-build}
out=abi/libbtrfslayer.abi
echo "abi-baseline: building $dir/"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBTRFSLAYER_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" --target btrfslayer >/dev/null
mkdir -p abi
abidw --headers-dir include --drop-private-types --no-corpus-path --no-comp-dir-path \
	--short-locs --out-file "$out.tmp" "$dir/libbtrfslayer.so"
mv "$out.tmp" "$out"
echo "abi-baseline: wrote $out: $(grep -c "<elf-symbol " "$out") symbols, from $(readelf -d "$dir/libbtrfslayer.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
