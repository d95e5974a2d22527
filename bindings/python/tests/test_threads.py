# SPDX-License-Identifier: LGPL-2.1-or-later
"""One handle shared by many threads, and close() against running calls."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import btrfslayer
from conftest import need

THREADS = 32
ROUNDS = 4


def _together(n, fn):
    """fn(i) in n threads released at once; the exceptions they raised."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return fn(i)
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_threads_share_a_handle(quota_handle, lib):
    """32 threads, mixed calls on one handle: each sees its own results and
    its own error messages."""
    h = quota_handle
    h.create("shared-parent")
    with open(os.path.join(h.get("shared-parent"), "f"), "w") as f:
        f.write("parent")
    info = lib.has("layer_info")

    def work(i):
        won = 0
        for r in range(ROUNDS):
            mine, snap = f"t{i}-{r}", f"t{i}-{r}-snap"
            h.create(mine, "shared-parent", storage_opts={"size": "64M"})
            assert h.exists(mine)
            path = h.get(mine)
            with open(os.path.join(path, "f")) as f:
                assert f.read() == "parent"
            h.create(snap, mine, read_only=True)
            assert mine in h.layers()
            assert h.get_usage(mine).limit == 64 << 20
            h.set_quota(snap, (32 + i) << 20)
            assert h.get_usage(snap).recorded_limit == (32 + i) << 20
            if info:
                assert h.layer_info(snap).parent == mine
            h.status()
            # everyone races for one id: one wins, the others FileExistsError
            try:
                h.create(f"race-{r}")
                won += 1
            except FileExistsError as e:
                assert f"race-{r}" in str(e)
            # a failure's message is this call's, not a neighbour's
            with pytest.raises(FileNotFoundError) as e:
                h.remove(f"missing-{i}-{r}")
            assert f"missing-{i}-{r}" in str(e.value)
            assert not any(f"missing-{j}-" in str(e.value) for j in range(THREADS) if j != i)
            h.remove(snap)
            h.remove(mine)
            assert not h.exists(mine)
        return won

    wins = _together(THREADS, work)
    assert sum(wins) == ROUNDS      # each race-<r> made exactly once
    assert list(h.layers()) == sorted(["shared-parent"] + [f"race-{r}" for r in range(ROUNDS)])


def test_close_while_threads_call(home, lib):
    """close() from one thread while 16 others call: every call either
    completes or raises ValueError (closed); nothing else, no crash."""
    h = btrfslayer.Handle(home, library=lib)
    h.create("a")
    started = threading.Barrier(17)
    outcomes = []

    def caller():
        started.wait()
        ok = 0
        while True:
            try:
                assert h.exists("a")
                h.layers()
                ok += 1
            except ValueError as e:
                assert "closed" in str(e)
                outcomes.append(ok)
                return
    threads = [threading.Thread(target=caller) for _ in range(16)]
    for t in threads:
        t.start()
    started.wait()
    h.close()
    for t in threads:
        t.join()
    assert len(outcomes) == 16 and h.closed
    h.close()


def test_concurrent_closes(home, lib):
    h = btrfslayer.Handle(home, library=lib)
    _together(8, lambda i: h.close())
    assert h.closed


def test_close_waits_for_a_running_call(home, lib):
    """A call blocked in the library (apply reading an empty pipe) holds
    close() back until it returns."""
    need(lib, "apply")
    h = btrfslayer.Handle(home, library=lib)
    h.create("target")
    r, w = os.pipe()
    result = []

    def apply():
        try:
            result.append(h.apply("target", r))
        except OSError as e:
            result.append(e)
    caller = threading.Thread(target=apply)
    caller.start()
    closer = threading.Thread(target=h.close)
    try:
        # wait until apply is inside the library, i.e. counted as a user
        while True:
            with h._cond:
                if h._users:
                    break
            assert not result, f"apply returned before any data was written: {result}"
            threading.Event().wait(0.01)
        # the blocked call holds neither the GIL nor the handle: other
        # threads run Python and call the library meanwhile
        assert h.exists("target") and "target" in h.layers()
        closer.start()
        closer.join(0.5)
        assert closer.is_alive(), "close() returned while a call was running"
        with pytest.raises(ValueError):     # no new call once close began
            h.exists("target")
    finally:
        os.close(w)     # EOF: apply returns (an empty tar is applied or refused)
        caller.join()
        closer.join()
        os.close(r)
    assert h.closed and len(result) == 1


def test_close_from_a_callback_is_refused(handle, lib):
    """close() from a progress callback of a call on the same handle would
    wait for itself: RuntimeError, raised once the call returned."""
    need(lib, "apply")
    handle.create("big")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo("blob")
        info.size = 4 << 20
        t.addfile(info, io.BytesIO(os.urandom(info.size)))
    raw.seek(0)
    with pytest.raises(RuntimeError, match="inside a call"):
        handle.apply("big", raw, progress=lambda d, t: handle.close())
    assert not handle.closed


def test_one_handle_per_thread_on_one_home(home, lib):
    btrfslayer.Handle(home, library=lib).close()     # make the home once

    def work(i):
        with btrfslayer.Handle(home, library=lib) as h:
            h.create(f"own-{i}")
            try:
                h.create("contended")
                return 1
            except FileExistsError:
                return 0
    assert sum(_together(16, work)) == 1
    with btrfslayer.Handle(home, library=lib) as h:
        assert len(h.layers()) == 17
