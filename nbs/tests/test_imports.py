"""Import circles among ddnb modules (issue 23, point 1): walk ddnb/*.py imports with ast and list the cycles.

Every import counts, module level or inside a function (a deferred import still ties the two modules together).
The edges of today's cycles are pinned exactly: a new one fails this test, and so does one that is gone (then shorten
the list).
Run `python nbs/tests/test_imports.py` to print the graph's cycles.
"""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2]/'ddnb'

# The import edges that close a cycle today (both ends in one strongly connected component: modules that import each
# other, directly or not). Issue 23 asks for none; these are pinned so that no new one can appear.
#   batched -> evaluate -> batched;  dmgd -> samplers -> dmgd;  baselines -> samplers -> world -> evaluate -> baselines
KNOWN_EDGES = {
    ('batched', 'evaluate'), ('evaluate', 'batched'), ('dmgd', 'samplers'), ('samplers', 'dmgd'),
    ('evaluate', 'baselines'), ('baselines', 'samplers'), ('samplers', 'world'), ('world', 'evaluate'),
}

def import_graph(pkg=PKG):
    "{module: set of ddnb modules it imports}"
    mods = {p.stem for p in pkg.glob('*.py')}
    g = {}
    for p in sorted(pkg.glob('*.py')):
        deps = set()
        for n in ast.walk(ast.parse(p.read_text(encoding='utf-8'))):
            if isinstance(n, ast.ImportFrom):
                if n.level == 1 and n.module is None: names = [a.name for a in n.names]          # from . import x
                elif n.level == 1: names = [n.module.split('.')[0]]                              # from .x import y
                elif n.module and n.module.split('.')[0] == 'ddnb':
                    names = [n.module.split('.')[1]] if '.' in n.module else [a.name for a in n.names]
                else: names = []
            elif isinstance(n, ast.Import):
                names = [a.name.split('.')[1] for a in n.names if a.name.startswith('ddnb.')]
            else: continue
            deps |= {m for m in names if m in mods and m != p.stem}
        g[p.stem] = deps
    return g

def cycles(g):
    "Strongly connected components with more than one module (Tarjan), each a set"
    idx, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        idx[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in sorted(g[v]):
            if w not in idx: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = set()
            while True:
                w = stack.pop(); on.discard(w); comp.add(w)
                if w == v: break
            if len(comp) > 1: out.append(comp)
    for v in sorted(g):
        if v not in idx: visit(v)
    return sorted(out, key=lambda c: sorted(c))

def short_cycles(g, comp):
    "The elementary two-module cycles and one shortest cycle through each module of `comp`, as 'a -> b -> a' lines"
    from collections import deque
    lines = set()
    for s in sorted(comp):
        prev, q = {s: None}, deque([s])
        while q:                                        # BFS back to s inside comp
            v = q.popleft()
            for w in sorted(g[v] & comp):
                if w == s:
                    path = [v]
                    while prev[path[-1]] is not None: path.append(prev[path[-1]])
                    path = path[::-1]; i = path.index(min(path)); path = path[i:] + path[:i]
                    lines.add(' -> '.join(path + [path[0]])); q.clear(); break
                if w not in prev: prev[w] = v; q.append(w)
    return sorted(lines, key=lambda l: (l.count('->'), l))

def test_import_cycles_are_the_known_ones():
    g = import_graph()
    found = cycles(g)
    msg = '\n'.join('  ' + ' | '.join(short_cycles(g, c)) for c in found)
    edges = {(a, b) for c in found for a in c for b in g[a] if b in c}
    assert not edges - KNOWN_EDGES, f'new import edge(s) in a cycle among ddnb modules: {sorted(edges - KNOWN_EDGES)}; cycles:\n{msg}'
    assert not KNOWN_EDGES - edges, f'cycle edge(s) gone, remove them from KNOWN_EDGES in {__file__}: {sorted(KNOWN_EDGES - edges)}'

if __name__ == '__main__':
    g = import_graph()
    for c in cycles(g): print(sorted(c), *short_cycles(g, c), sep='\n  ')
