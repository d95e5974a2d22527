#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Python binding's stage (bindings/python), as root on Debian 12:
#
#     bash scripts/py-test.sh [BUILD_DIR]         the package from the source
#                                                 tree against the in-tree
#                                                 library (default build/,
#                                                 configured if missing,
#                                                 brought up to date)
#     bash scripts/py-test.sh --installed [LIBDIR]
#                                                 the package as pip installs
#                                                 it (offline, into a
#                                                 temporary directory) against
#                                                 the installed library (LIBDIR
#                                                 is searched first, if given)
#
# In-tree, mypy --strict checks the package's type hints first.  Arguments
# after -- go to pytest (-k NAME, -x).  The tests make their own
# loopback btrfs: they need root, skip saying why without it, and fail
# instead under CI=true.  pytest's exit status 5 ("no tests collected") is a
# failure here, not a pass.  The system's python3 (Debian's, with
# python3-pytest and python3-setuptools) runs them; PYTHON overrides it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-/usr/bin/python3}

installed=false
build=$root/build
libdir=''
while (($#)); do
	case $1 in
	--installed)
		installed=true
		if (($# > 1)) && [[ $2 != -- ]]; then
			libdir=$(realpath -m "$2")
			shift
		fi
		;;
	--) shift; break ;;
	*) build=$(realpath -m "$1") ;;
	esac
	shift
done

fail() { echo "py-test: FAILED: $*" >&2; exit 1; }

"$python" -c 'import pytest' 2>/dev/null ||
	fail "$python has no pytest (bash scripts/deps.sh installs python3-pytest)"

work=$(mktemp -d /tmp/btrfslayer-py.XXXXXX)
trap 'rm -rf "$work"' EXIT

# no bytecode or pytest cache left in the source tree
export PYTHONDONTWRITEBYTECODE=1
unset PYTHONPATH
if $installed; then
	unset BTRFSLAYER_LIBRARY
	# pip builds in the directory it is given: a copy keeps the tree clean
	cp -r "$root/bindings/python" "$work/src"
	rm -rf "$work/src/tests"
	"$python" -m pip install --quiet --no-build-isolation --no-index --no-deps \
		--disable-pip-version-check --root-user-action=ignore \
		--target "$work/site" "$work/src" >"$work/pip.log" 2>&1 ||
		{ cat "$work/pip.log" >&2; fail "pip install ./bindings/python"; }
	export PYTHONPATH=$work/site
	export BTRFSLAYER_TEST_PACKAGE_DIR=$work/site/btrfslayer
	if [[ -n $libdir ]]; then
		export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	fi
else
	if [[ ! -e $build/CMakeCache.txt ]]; then
		echo "py-test: configuring $build"
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
			-DBTRFSLAYER_WERROR=ON >/dev/null
	fi
	# a no-op when it is up to date; never a stale library under test
	cmake --build "$build" -j"$(nproc)" --target btrfslayer >"$work/build.log" 2>&1 ||
		{ tail -30 "$work/build.log" >&2; fail "building the library in $build"; }
	export PYTHONPATH=$root/bindings/python
	export BTRFSLAYER_TEST_PACKAGE_DIR=$root/bindings/python/btrfslayer
	export BTRFSLAYER_LIBRARY=$build/libbtrfslayer.so.1
fi

if ! $installed; then
	# the type hints are part of the API: checked, strictly
	command -v mypy >/dev/null || fail "mypy is missing (bash scripts/deps.sh installs it)"
	mypy --strict --no-error-summary --cache-dir "$work/mypy" "$root/bindings/python/btrfslayer" ||
		fail "mypy --strict bindings/python/btrfslayer"
	echo "py-test: mypy --strict: clean"
fi

# from a directory of its own: `python -m` puts the working directory first
# on sys.path, and it must not shadow the package under test
cd "$work"
"$python" -c 'import btrfslayer, sys
print("py-test: python", sys.version.split()[0], "package", btrfslayer.__file__)
lib = btrfslayer.load()
maps = {l.split()[-1] for l in open("/proc/self/maps") if "libbtrfslayer" in l}
print("py-test: library", lib.path, "=", *maps, lib.version())' ||
	fail "cannot import the package or load the library"
rc=0
"$python" -m pytest -p no:cacheprovider -ra "$root/bindings/python/tests" "$@" || rc=$?
case $rc in
0) echo "py-test: passed" ;;
5) fail "pytest collected no tests (exit status 5)" ;;
*) fail "pytest exit status $rc" ;;
esac
