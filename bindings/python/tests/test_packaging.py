# SPDX-License-Identifier: LGPL-2.1-or-later
"""The package as pip installs it, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import btrfslayer
from conftest import unavailable

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_package_under_test_is_the_expected_one():
    want = os.environ.get("BTRFSLAYER_TEST_PACKAGE_DIR")
    if not want:
        pytest.skip("BTRFSLAYER_TEST_PACKAGE_DIR unset (scripts/py-test.sh sets it)")
    assert os.path.dirname(os.path.realpath(btrfslayer.__file__)) == os.path.realpath(want)


def test_pip_install_offline(tmp_path, lib):
    """pip install --no-build-isolation: the system's setuptools builds it,
    nothing is downloaded; the installed package loads the library and
    carries its type marker."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"],
                      capture_output=True).returncode != 0:
        unavailable("pip is missing (install python3-pip)")
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-index", "--no-deps", "--disable-pip-version-check",
                        "--target", str(site), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (site / "btrfslayer" / "py.typed").exists()
    assert not (site / "tests").exists()
    env = dict(os.environ, PYTHONPATH=str(site), BTRFSLAYER_LIBRARY=lib.path)
    out = subprocess.run([sys.executable, "-c",
                          "import btrfslayer; print(btrfslayer.__file__); print(btrfslayer.version())"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    where, version = out.stdout.split()
    assert where.startswith(str(site)) and version == lib.version()
