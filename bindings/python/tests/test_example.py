# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README's Python example is examples/layers.py, and it runs."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import need

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "layers.py")
README = os.path.join(HERE, "..", "..", "..", "README.md")


def test_readme_shows_the_example():
    if not os.path.exists(README):
        return      # tests of an unpacked package, without the repository
    with open(EXAMPLE) as f:
        code = f.read()
    with open(README) as f:
        assert f"```python\n{code}```" in f.read()


def test_example_runs(home, lib):
    need(lib, "layer_info")
    env = dict(os.environ, BTRFSLAYER_LIBRARY=lib.path)
    out = subprocess.run([sys.executable, EXAMPLE, home], env=env, capture_output=True,
                         text=True, check=True).stdout
    info, usage = out.splitlines()
    assert info.startswith("LayerInfo(id='image'") and "read_only=True" in info
    assert "parent='base'" in info
    assert usage.startswith("Usage(") and "recorded_limit=0" in usage
    with __import__("btrfslayer").Handle(home, library=lib) as h:
        assert h.layers() == {}
