#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Go binding's stage (bindings/go), as root on Debian 12, from anywhere:
#
#     bash scripts/go-test.sh [BUILD_DIR]     against the in-tree build
#                                             (default build/, made if needed)
#     bash scripts/go-test.sh --installed     against the installed library
#                                             (pkg-config's own search path)
#     bash scripts/go-test.sh [...] --example HOME
#                                             build and run the README's
#                                             example on HOME instead (the
#                                             consumer test's check)
#
# Go modules cannot be downloaded here and the package needs none: it is
# built in GOPATH mode from a temporary GOPATH where its import path,
# libbtrfslayer.org/go/btrfslayer, is a symlink to bindings/go.  Runs gofmt,
# go vet, then go test -race -v (the race detector is kept where the Go
# toolchain has its runtime; GO_TEST_RACE=0 turns it off).  The tests make
# their own loopback btrfs: they need root, skip without it and fail without
# it under CI=true.  Extra arguments after -- go to go test (-run X).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

installed=false
build=$root/build
example_home=
while (($#)); do
	case $1 in
	--installed) installed=true ;;
	--example) example_home=${2:?--example needs a home}; shift ;;
	--) shift; break ;;
	*) build=$(realpath -m "$1") ;;
	esac
	shift
done

if ! command -v go >/dev/null; then
	echo "go-test: go is missing (bash scripts/deps.sh installs golang-go)" >&2
	exit 1
fi

gopath=$(mktemp -d /tmp/btrfslayer-gopath.XXXXXX)
trap 'rm -rf "$gopath"' EXIT
pkg=libbtrfslayer.org/go/btrfslayer
mkdir -p "$gopath/src/$(dirname "$pkg")" "$gopath/pc"
ln -s "$root/bindings/go" "$gopath/src/$pkg"

export GO111MODULE=off GOPATH=$gopath GOFLAGS= GOPROXY=off
export GOCACHE=${GOCACHE:-$gopath/cache}
# the shim's C code is held to the library's standard (cgo's own
# generated wrappers leave parameters unused)
export CGO_CFLAGS="-g -O2 -Wall -Wextra -Wno-unused-parameter -Werror"

if ! $installed; then
	if [[ ! -e $build/libbtrfslayer.so ]]; then
		echo "go-test: building the library in $build"
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
			-DBTRFSLAYER_WERROR=ON >/dev/null
		cmake --build "$build" -j"$(nproc)" --target btrfslayer >/dev/null
	fi
	# pkg-config picks NAME-uninstalled.pc over NAME.pc: the in-tree
	# header and library, whatever is installed
	cat >"$gopath/pc/libbtrfslayer-uninstalled.pc" <<-EOF
		Name: libbtrfslayer
		Description: libbtrfslayer, uninstalled build in $build
		Version: 0
		Libs: -L$build -lbtrfslayer
		Cflags: -I$root/include
	EOF
	export PKG_CONFIG_PATH=$gopath/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
	export LD_LIBRARY_PATH=$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
echo "go-test: $(go version), libbtrfslayer $("${PKG_CONFIG:-pkg-config}" --libs libbtrfslayer)"

unformatted=$(gofmt -l "$root/bindings/go")
if [[ -n $unformatted ]]; then
	echo "go-test: not gofmt'ed: $unformatted" >&2
	exit 1
fi
go vet "$pkg" "$pkg/example"
if [[ -n $example_home ]]; then
	go run "$pkg/example" "$example_home"
	exit
fi

race=()
if [[ ${GO_TEST_RACE:-1} != 0 ]] && go env GOROOT >/dev/null &&
	[[ -e "$(go env GOROOT)/src/runtime/race/race_$(go env GOOS)_$(go env GOARCH).syso" ]]; then
	race=(-race)
fi
# a test binary killed too hard to tear down its loopback btrfs leaves it
# to the safety net the C tests share (same directory layout)
status=0
echo "go-test: go test ${race[*]} -count=1 -v $pkg $*"
go test "${race[@]}" -count=1 -v "$pkg" "$@" || status=$?
bash "$root/tests/sweep-mounts.sh" || true
exit $status
