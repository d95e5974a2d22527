#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What building, testing and the demo need on Debian 12, and how to get it.
#   bash scripts/deps.sh             install whatever is missing
#   . scripts/deps.sh; deps_install  the same, from another script
# apt-get update runs only when something is missing, so a machine that has
# everything is never touched.

BTRFSLAYER_DEPS=(
	btrfs-progs		# mkfs.btrfs and btrfs(8), for the demo and tests
	libbtrfsutil-dev
	libmount-dev
	libselinux1-dev
	libarchive-dev		# OCI layer tars: apply and export
	libcmocka-dev		# unit tests
	libfuse3-dev		# tests/powercut: the disk recorder
	fuse3			# tests/powercut: fusermount3
	cmake
	pkg-config
	gcc
	make
	cppcheck		# scripts/lint.sh
	valgrind		# scripts/valgrind.sh
	abigail-tools		# scripts/abi-check.sh, abi-baseline.sh: abidiff, abidw
	groff-base		# scripts/consumer-test.sh: the man page formats without warnings
	golang-github-containerd-containerd-dev	# snapshotter/: containerd's API, storage, testsuite
	golang-google-grpc-dev	# snapshotter/: the gRPC server
	golang-github-burntsushi-toml-dev	# snapshotter/: its config file
	golang-github-sirupsen-logrus-dev	# snapshotter/: containerd's logger
	golang-github-containerd-btrfs-dev	# snapshotter/ benchmark: containerd's btrfs snapshotter
	libbtrfs-dev		# the same, its C headers
	containerd		# tests/snapshotter/e2e.sh: a real containerd
	runc			# tests/snapshotter/e2e.sh: its runtime
	busybox-static		# tests/snapshotter/e2e.sh: the image it builds
	clang			# scripts/fuzz.sh: libFuzzer targets
	libclang-rt-14-dev	# libFuzzer and clang's sanitizer runtimes
	python3-pytest		# scripts/py-test.sh: the Python binding's tests
	python3-setuptools	# pip install ./bindings/python, offline (--no-build-isolation)
	python3-pip		# scripts/py-test.sh: the binding as pip installs it
	mypy			# scripts/py-test.sh: the binding's type hints, --strict
	golang-go		# scripts/go-test.sh: the Go binding (bindings/go)
)

# Print the packages of BTRFSLAYER_DEPS that are not installed, one a line.
deps_missing() {
	local pkg
	for pkg in "${BTRFSLAYER_DEPS[@]}"; do
		if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
			printf '%s\n' "$pkg"
		fi
	done
}

deps_install() {
	local missing
	mapfile -t missing < <(deps_missing)
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	if ((EUID != 0)); then
		echo "deps: missing ${missing[*]}; run as root to install them" >&2
		return 1
	fi
	echo "deps: installing ${missing[*]}"
	# Recommends stay on: gcc needs libc6-dev, which is only a Recommends.
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# Run directly rather than sourced: install and report.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
	deps_install
fi
