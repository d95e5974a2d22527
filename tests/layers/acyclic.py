#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The library's modules form layers: no two of them call each other's
functions, directly or round a circle.

Reads the object files of src/ (one per module) with nm: a module depends on
another when it uses a bl_ symbol the other defines.  Prints every cycle
(strongly connected set of modules, with the symbols that tie them) and
fails when there is one.

    python3 tests/layers/acyclic.py OBJECT.o...
"""
import collections
import os
import subprocess
import sys


def module(path):
    name = os.path.basename(path)
    for suffix in (".o", ".obj"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name[:-2] if name.endswith(".c") else name


def main(objects):
    if not objects:
        print("usage: acyclic.py OBJECT.o...", file=sys.stderr)
        return 2
    defined, used = {}, collections.defaultdict(set)
    for path in objects:
        m = module(path)
        out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] in "TDBR" and fields[2].startswith("bl_"):
                defined[fields[2]] = m
            elif len(fields) == 2 and fields[0] == "U" and fields[1].startswith("bl_"):
                used[m].add(fields[1])
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for m, symbols in used.items():
        for s in symbols:
            if s in defined and defined[s] != m:
                edges[m][defined[s]].add(s)

    # Tarjan's strongly connected components, iteratively
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    for root in sorted(set(edges) | set(defined.values())):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    modules = len(set(defined.values()) | set(used))
    if not cycles:
        print(f"layers: {modules} modules, no cycle")
        return 0
    for component in cycles:
        print("layers: FAIL: these modules call each other round a circle: "
              + ", ".join(component))
        for a in component:
            for b in component:
                if b in edges[a]:
                    print(f"  {a} -> {b}: {', '.join(sorted(edges[a][b]))}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
